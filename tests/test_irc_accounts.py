"""Registered users from IRC clients: SASL PLAIN and PASS against the accounts store.

The peer is the real ``irc`` package (its ``connect(..., sasl_login=...)`` performs SASL PLAIN;
``password=`` alone sends PASS), driven in a worker thread as in test_irc_interop.py.
"""

from __future__ import annotations

import base64
import logging
from collections.abc import AsyncIterator
from pathlib import Path

import anyio
import pytest

import anychat
from anychat import model as m

from .helpers import LineClient
from .test_irc_interop import DEADLINE, IrcPeer, irc_peer

pytestmark = pytest.mark.timeout(30)

PASSWORD = "correct horse battery"
WRONG = "wrong horse battery"


@pytest.fixture(params=["memory", "sqlite"])
async def accounts_server(
    request: pytest.FixtureRequest, tmp_path: Path
) -> AsyncIterator[anychat.Server]:
    """A server whose store holds the account ``ada`` (created by a JSON client's register)."""
    url = "memory://" if request.param == "memory" else f"sqlite:///{tmp_path / 'chat.db'}"
    async with anychat.serve(port=0, irc_port=0, database_url=url, login_delay_seconds=0) as srv:
        async with anychat.connect("127.0.0.1", srv.port, nick="ada") as ada:
            await ada.register(PASSWORD)
        yield srv


def irc_port(srv: anychat.Server) -> int:
    assert srv.irc_port is not None
    return srv.irc_port


def server_log(caplog: pytest.LogCaptureFixture) -> str:
    """What the server logged (the ``irc`` client logs its own lines, password included)."""
    records = [r for r in caplog.records if r.name.startswith("anychat")]
    assert records  # the server did log the failed login
    return "\n".join(r.getMessage() for r in records)


def transcript(peer: IrcPeer) -> str:
    return "\n".join(f"{e.type} {e.source} {e.target} {e.arguments}" for e in peer.events)


async def chat_with_json_user(srv: anychat.Server, peer: IrcPeer) -> None:
    async with anychat.connect("127.0.0.1", srv.port, nick="bob") as bob:
        await peer.call("join", "#lab")
        await peer.wait_for("endofnames")
        await bob.join("#lab")
        await peer.wait_for("join", lambda e: e.source.nick == "bob")
        await peer.call("privmsg", "#lab", "logged in from irc")
        with anyio.fail_after(DEADLINE):
            msg = await bob.wait_for(m.Message)
        assert (msg.sender, msg.text) == ("ada", "logged in from irc")
        await bob.send("#lab", "hello ada")
        pub = await peer.wait_for("pubmsg")
        assert (pub.source.nick, pub.arguments) == ("bob", ["hello ada"])


async def test_registered_user_logs_in_with_sasl_and_chats(
    accounts_server: anychat.Server,
) -> None:
    async with irc_peer(
        irc_port(accounts_server), "ada", sasl_login="ada", password=PASSWORD
    ) as ada:
        logged = await ada.wait_for("loggedin")
        assert logged.arguments[:2] == ["ada!~ada@anychat", "ada"]
        await ada.wait_for("saslsuccess")
        welcome = await ada.wait_for("welcome")
        assert welcome.target == "ada"
        await chat_with_json_user(accounts_server, ada)
        # Logged in: a second SASL attempt is refused as servers do.
        await ada.call("send_raw", "AUTHENTICATE PLAIN")
        await ada.wait_for("saslalready")


@pytest.mark.parametrize("port", ["main", "irc"])
async def test_registered_user_logs_in_with_pass_and_chats(
    accounts_server: anychat.Server, port: str
) -> None:
    number = accounts_server.port if port == "main" else irc_port(accounts_server)
    async with irc_peer(number, "ada", password=PASSWORD) as ada:
        logged = await ada.wait_for("loggedin")
        assert logged.arguments[1] == "ada"
        welcome = await ada.wait_for("welcome")
        assert welcome.target == "ada"
        await chat_with_json_user(accounts_server, ada)


@pytest.mark.parametrize("login", ["ada", "nobody"])
async def test_failed_sasl_is_904_for_any_cause_and_leaks_nothing(
    accounts_server: anychat.Server, login: str, caplog: pytest.LogCaptureFixture
) -> None:
    caplog.set_level(logging.DEBUG, logger="anychat")
    async with irc_peer(irc_port(accounts_server), "ada", sasl_login=login, password=WRONG) as ada:
        failed = await ada.wait_for("saslfail")
        assert failed.arguments == ["SASL authentication failed"]
        # The client ends CAP and registers as a guest: ada is taken by its account.
        refused = await ada.wait_for("nicknameinuse")
        assert refused.arguments[0] == "ada"
        notice = await ada.wait_for("privnotice")
        assert "registered nick: log in" in notice.arguments[0]
        assert "SASL" in notice.arguments[0]
        await ada.call("nick", "ada_guest")
        welcome = await ada.wait_for("welcome")
        assert welcome.target == "ada_guest"
        assert not any(e.type == "loggedin" for e in ada.events)
        seen = transcript(ada)
    assert WRONG not in seen and PASSWORD not in seen
    assert "horse" not in server_log(caplog)


async def test_wrong_pass_is_464_and_the_connection_closes(
    accounts_server: anychat.Server, caplog: pytest.LogCaptureFixture
) -> None:
    caplog.set_level(logging.DEBUG, logger="anychat")
    async with irc_peer(irc_port(accounts_server), "ada", password=WRONG) as ada:
        mismatch = await ada.wait_for("passwdmismatch")
        assert mismatch.arguments == ["Password incorrect"]
        error = await ada.wait_for("error")
        assert "bad password" in error.target
        await ada.wait_for("disconnect")
        assert not any(e.type in ("welcome", "loggedin") for e in ada.events)
        seen = transcript(ada)
    assert WRONG not in seen
    assert "horse" not in server_log(caplog)


async def test_guest_cannot_take_a_registered_nick(accounts_server: anychat.Server) -> None:
    async with irc_peer(irc_port(accounts_server), "ADA") as guest:
        refused = await guest.wait_for("nicknameinuse")
        assert refused.arguments[0] == "ADA"
        notice = await guest.wait_for("privnotice")
        assert notice.arguments[0].startswith("ADA is a registered nick: log in")
        await guest.call("nick", "visitor")
        welcome = await guest.wait_for("welcome")
        assert welcome.target == "visitor"
        # Registered, a guest still cannot change to the account's nick.
        await guest.call("nick", "ada")
        taken = await guest.wait_for("nicknameinuse")
        assert taken.arguments[0] == "ada"
        await guest.wait_for("privnotice", lambda e: "registered nick" in e.arguments[0])


async def test_require_login_refuses_guests_and_admits_accounts(tmp_path: Path) -> None:
    url = f"sqlite:///{tmp_path / 'chat.db'}"
    async with anychat.serve(port=0, irc_port=0, database_url=url, login_delay_seconds=0) as srv:
        async with anychat.connect("127.0.0.1", srv.port, nick="ada") as ada:
            await ada.register(PASSWORD)
    async with anychat.serve(
        port=0, irc_port=0, database_url=url, login_delay_seconds=0, require_login=True
    ) as srv:
        port = irc_port(srv)
        async with irc_peer(port, "visitor") as guest:
            notice = await guest.wait_for("privnotice")
            assert "admits only registered users" in notice.arguments[0]
            await guest.wait_for("passwdmismatch")
            await guest.wait_for("error")
            await guest.wait_for("disconnect")
            assert not any(e.type == "welcome" for e in guest.events)
        async with irc_peer(port, "ada", sasl_login="ada", password=PASSWORD) as ada_sasl:
            await ada_sasl.wait_for("saslsuccess")
            welcome = await ada_sasl.wait_for("welcome")
            assert welcome.target == "ada"
        async with irc_peer(port, "ada", password=PASSWORD) as ada_pass:
            welcome = await ada_pass.wait_for("welcome")
            assert welcome.target == "ada"


async def test_sasl_after_registration_takes_the_account_nick(
    accounts_server: anychat.Server,
) -> None:
    async with (
        anychat.connect("127.0.0.1", accounts_server.port, nick="bob") as bob,
        irc_peer(irc_port(accounts_server), "visitor") as peer,
    ):
        await peer.wait_for("welcome")
        await peer.call("join", "#lab")
        await peer.wait_for("endofnames")
        await bob.join("#lab")
        await peer.wait_for("join", lambda e: e.source.nick == "bob")
        await peer.call("send_raw", "AUTHENTICATE PLAIN")
        await peer.wait_for("authenticate", lambda e: e.target == "+")
        await peer.call("send_raw", f"AUTHENTICATE {plain_payload('ada', PASSWORD)}")
        logged = await peer.wait_for("loggedin")
        assert logged.arguments[:2] == ["visitor!~visitor@anychat", "ada"]
        await peer.wait_for("saslsuccess")
        own = await peer.wait_for("nick")
        assert (own.source.nick, own.target) == ("visitor", "ada")
        assert peer.conn.get_nickname() == "ada"
        with anyio.fail_after(DEADLINE):
            changed = await bob.wait_for(m.NickChanged)
        assert (changed.old, changed.new) == ("visitor", "ada")
        # Logged in, the nick is the account's.
        await peer.call("nick", "someone")
        refused = await peer.wait_for("nicknameinuse")
        assert refused.arguments[0] == "someone"
        notice = await peer.wait_for("privnotice")
        assert "logged in as ada" in notice.arguments[0]


def plain_payload(authcid: str, password: str) -> str:
    return base64.b64encode(f"\0{authcid}\0{password}".encode()).decode()


async def test_sasl_login_replaces_the_accounts_ghost(accounts_server: anychat.Server) -> None:
    async with anychat.connect(
        "127.0.0.1", accounts_server.port, nick="ada", password=PASSWORD
    ) as ghost:
        async with irc_peer(
            irc_port(accounts_server), "ada", sasl_login="ada", password=PASSWORD
        ) as ada:
            welcome = await ada.wait_for("welcome")
            assert welcome.target == "ada"
            with anyio.fail_after(DEADLINE):
                bye = await ghost.wait_for(m.Bye)
            assert bye.code is m.ErrorCode.LOGGED_IN_ELSEWHERE


async def test_client_vanishing_during_the_password_check_harms_nothing(
    accounts_server: anychat.Server, caplog: pytest.LogCaptureFixture
) -> None:
    caplog.set_level(logging.INFO, logger="anychat")
    port = irc_port(accounts_server)
    async with await LineClient.open(port) as raw:
        await raw.send(
            b"CAP LS 302\r\nNICK ada\r\nUSER a 0 * :a\r\nCAP REQ sasl\r\nAUTHENTICATE PLAIN\r\n"
        )
        await raw.line_containing(b"AUTHENTICATE +")
        await raw.send(f"AUTHENTICATE {plain_payload('ada', PASSWORD)}\r\n".encode())
    # Gone before (or while) the password was checked: the next login is not disturbed.
    async with irc_peer(port, "ada", sasl_login="ada", password=PASSWORD) as ada:
        welcome = await ada.wait_for("welcome")
        assert welcome.target == "ada"
    assert not [r for r in caplog.records if r.levelno >= logging.ERROR]
