"""IRCv3 presence through the real server: away-notify, account-notify, account-tag, setname,
invite-notify and MONITOR, numeric by numeric with raw sockets, and with the ``irc`` package."""

from __future__ import annotations

from collections.abc import AsyncIterator
from contextlib import asynccontextmanager

import anyio
import pytest

import anychat
from anychat import model as m

from .helpers import LineClient
from .test_irc_channels import lines_until_pong
from .test_irc_interop import irc_peer
from .test_irc_server import Raw, raw

pytestmark = pytest.mark.timeout(30)


@asynccontextmanager
async def capped(port: int, nick: str, caps: str) -> AsyncIterator[Raw]:
    """A registered client that negotiated ``caps`` (space-separated)."""
    async with raw(port) as peer:
        await peer.send("CAP LS 302", f"CAP REQ :{caps}", f"NICK {nick}", f"USER {nick} 0 * :R")
        assert await peer.until(" ACK ") == f":anychat CAP * ACK :{caps}"
        await peer.send("CAP END")
        await peer.until(f" 001 {nick} ")
        await peer.until(f" 422 {nick} ")  # the end of the welcome
        yield peer


async def joined(peer: Raw, nick: str, room: str = "#a") -> None:
    await peer.send(f"JOIN {room}")
    await peer.until(f"366 {nick} {room}")


async def test_the_capabilities_are_offered(server: anychat.Server) -> None:
    async with raw(server.port) as peer:
        await peer.send("CAP LS 302")
        offered = (await peer.until(" LS ")).split(" :", 1)[1].split()
        for cap in ("away-notify", "account-notify", "account-tag", "invite-notify", "setname"):
            assert cap in offered


async def test_away_notify_tells_members_who_asked(server: anychat.Server) -> None:
    async with (
        capped(server.port, "ada", "away-notify") as ada,
        raw(server.port, "bob") as bob,
        raw(server.port, "cy") as cy,
    ):
        for peer, nick in ((ada, "ada"), (bob, "bob"), (cy, "cy")):
            await joined(peer, nick)
        await bob.send("AWAY :out for lunch")
        assert await bob.until(" 306 ") == ":anychat 306 bob :You have been marked as being away"
        assert await ada.until(" AWAY") == ":bob!~bob@anychat AWAY :out for lunch"
        await bob.send("AWAY")
        assert await ada.until(" AWAY") == ":bob!~bob@anychat AWAY"
        assert [ln for ln in await lines_until_pong(cy) if " AWAY" in ln] == []  # never asked
        assert [ln for ln in await lines_until_pong(bob) if " AWAY" in ln] == []  # 305/306 only
        # Joining while away: JOIN, then AWAY, to clients with away-notify.
        await cy.send("AWAY :zzz", "JOIN #b")
        await cy.until("366 cy #b")
        await ada.send("JOIN #b")
        await ada.until("366 ada #b")
        await cy.send("PART #b")
        await ada.until(" PART #b")
        await cy.send("JOIN #b")
        assert await ada.until(" JOIN #b") == ":cy!~cy@anychat JOIN #b"
        assert await ada.line() == ":cy!~cy@anychat AWAY :zzz"


async def test_away_news_reaches_json_and_text_users(server: anychat.Server) -> None:
    async with (
        anychat.connect("127.0.0.1", server.port, nick="js") as js,
        await LineClient.open(server.port) as nc,
        raw(server.port, "bob") as bob,
    ):
        await nc.line_containing(b"Welcome")
        await joined(bob, "bob", "#general")
        await bob.send("AWAY :back soon")
        with anyio.fail_after(5):
            news = await js.wait_for(m.AwayChanged)
        assert (news.nick, news.text) == ("bob", "back soon")
        assert await nc.line_containing(b"away") == b"* bob is away: back soon"
        await bob.send("AWAY")
        assert await nc.line_containing(b"bob is") == b"* bob is back"


@pytest.fixture
async def accounts() -> AsyncIterator[anychat.Server]:
    async with anychat.serve(port=0, database_url="memory://", login_delay_seconds=0) as srv:
        async with anychat.connect("127.0.0.1", srv.port, nick="bob") as bob:
            await bob.register("a long enough password")
        yield srv


def plain(nick: str, password: str) -> str:
    import base64

    return base64.b64encode(f"{nick}\0{nick}\0{password}".encode()).decode()


async def test_account_notify_and_account_tag(accounts: anychat.Server) -> None:
    port = accounts.port
    async with (
        capped(port, "ada", "account-notify account-tag") as ada,
        raw(port, "plainy") as plainy,
        raw(port) as bob,
    ):
        await joined(ada, "ada")
        await joined(plainy, "plainy")
        await bob.send("CAP REQ :sasl", "NICK guestb", "USER b 0 * :B", "CAP END")
        await bob.until(" 001 guestb ")
        await joined(bob, "guestb")
        await bob.send("PRIVMSG #a :as a guest")
        assert await ada.until("PRIVMSG") == ":guestb!~b@anychat PRIVMSG #a :as a guest"
        await bob.send("AUTHENTICATE PLAIN")
        await bob.until("AUTHENTICATE +")
        await bob.send("AUTHENTICATE " + plain("bob", "a long enough password"))
        await bob.until(" 903 ")
        assert await ada.until(" NICK ") == ":guestb!~b@anychat NICK :bob"
        assert await ada.line() == ":bob!~b@anychat ACCOUNT bob"
        await bob.send("PRIVMSG #a :logged in")
        assert await ada.until("PRIVMSG") == "@account=bob :bob!~b@anychat PRIVMSG #a :logged in"
        assert await plainy.until("logged in") == ":bob!~b@anychat PRIVMSG #a :logged in"
        assert [ln for ln in await lines_until_pong(plainy) if "ACCOUNT" in ln] == []


async def test_setname(server: anychat.Server) -> None:
    async with (
        capped(server.port, "ada", "setname") as ada,
        capped(server.port, "bob", "setname") as bob,
        raw(server.port, "cy") as cy,
    ):
        for peer, nick in ((ada, "ada"), (bob, "bob"), (cy, "cy")):
            await joined(peer, nick)
        await bob.send("SETNAME :Robert the Second")
        assert await bob.until("SETNAME") == ":bob!~bob@anychat SETNAME :Robert the Second"
        assert await ada.until("SETNAME") == ":bob!~bob@anychat SETNAME :Robert the Second"
        await cy.send("WHOIS bob")
        assert await cy.until(" 311 ") == ":anychat 311 cy bob ~bob anychat * :Robert the Second"
        assert [ln for ln in await lines_until_pong(cy) if "SETNAME" in ln] == []
        await bob.send("SETNAME")
        assert await bob.line() == ":anychat 461 bob SETNAME :Not enough parameters"
        await bob.send("SETNAME :" + "x" * 101)
        refusal = await bob.line()
        assert refusal.startswith(":anychat FAIL SETNAME INVALID_REALNAME :")


async def test_invite_notify(server: anychat.Server) -> None:
    async with (
        raw(server.port, "ada") as ada,
        capped(server.port, "bob", "invite-notify") as bob,
        raw(server.port, "cy") as cy,
        raw(server.port, "dan") as dan,
    ):
        for peer, nick in ((ada, "ada"), (bob, "bob"), (cy, "cy")):
            await joined(peer, nick)
        await ada.send("INVITE dan #a")
        assert await ada.until(" 341 ") == ":anychat 341 ada dan #a"
        assert await dan.until("INVITE") == ":ada!~ada@anychat INVITE dan #a"
        assert await bob.until("INVITE") == ":ada!~ada@anychat INVITE dan #a"
        assert [ln for ln in await lines_until_pong(cy) if "INVITE" in ln] == []
        assert [ln for ln in await lines_until_pong(ada) if "INVITE" in ln] == []


async def test_monitor(server: anychat.Server) -> None:
    async with raw(server.port) as ada, raw(server.port, "bob") as bob:
        await ada.send("NICK ada", "USER ada 0 * :A")
        assert f"MONITOR={m.MAX_WATCHED}" in await ada.until("MONITOR=")
        await ada.until(" 422 ")
        await ada.send("MONITOR + Bob,cy")
        assert await ada.line() == ":anychat 730 ada :bob!~bob@anychat"
        assert await ada.line() == ":anychat 731 ada :cy"
        async with raw(server.port, "cy"):
            assert await ada.line() == ":anychat 730 ada :cy!~cy@anychat"
        assert await ada.line() == ":anychat 731 ada :cy"
        await bob.send("NICK bobby")
        assert await ada.line() == ":anychat 731 ada :bob"
        await bob.send("NICK bob")
        assert await ada.line() == ":anychat 730 ada :bob!~bob@anychat"
        await ada.send("MONITOR L")
        assert await ada.line() == ":anychat 732 ada :Bob,cy"
        assert await ada.line() == ":anychat 733 ada :End of MONITOR list"
        await ada.send("MONITOR S")
        assert await ada.line() == ":anychat 730 ada :bob!~bob@anychat"
        assert await ada.line() == ":anychat 731 ada :cy"
        await ada.send("MONITOR - bob", "MONITOR L")
        assert await ada.line() == ":anychat 732 ada :cy"
        assert await ada.line() == ":anychat 733 ada :End of MONITOR list"
        await bob.send("QUIT")
        await ada.send("MONITOR C", "MONITOR L")
        assert await ada.line() == ":anychat 733 ada :End of MONITOR list"  # bob's quit: unseen
        await ada.send("MONITOR", "MONITOR +", "MONITOR X")
        assert await ada.line() == ":anychat 461 ada MONITOR :Not enough parameters"
        assert await ada.line() == ":anychat 461 ada MONITOR :Not enough parameters"
        assert (
            await ada.line() == ":anychat FAIL MONITOR INVALID_PARAMS X :Unknown MONITOR subcommand"
        )


async def test_a_full_monitor_list_is_734(server: anychat.Server) -> None:
    async with raw(server.port, "ada") as ada:
        first = ",".join(f"n{i}" for i in range(m.MAX_WATCHED - 1))
        await ada.send(f"MONITOR + {first}")
        offline: list[str] = []
        while len(offline) < m.MAX_WATCHED - 1:
            line = await ada.until(" 731 ")
            assert len(line.encode()) <= 510  # split into lines that fit
            offline += line.split(" :", 1)[1].split(",")
        assert offline == first.split(",")
        await ada.send("MONITOR + last,over1,over2")
        assert await ada.line() == ":anychat 731 ada :last"
        assert await ada.line() == (
            f":anychat 734 ada {m.MAX_WATCHED} over1,over2 :Monitor list is full"
        )


async def test_monitor_and_away_notify_with_the_irc_package(server: anychat.Server) -> None:
    async with irc_peer(server.port, "ada") as ada, irc_peer(server.port, "bob") as bob:
        await ada.wait_for("welcome")
        await bob.wait_for("welcome")
        await ada.call("send_raw", "MONITOR + bob,nobody")
        online = await ada.wait_for("730")
        assert online.arguments == ["bob!~bob@anychat"]
        offline = await ada.wait_for("731")
        assert offline.arguments == ["nobody"]
        await ada.call("cap", "REQ", "away-notify")
        await ada.wait_for("cap")
        await ada.call("join", "#a")
        await ada.wait_for("endofnames")
        await bob.call("join", "#a")
        await ada.wait_for("join", lambda e: e.source.nick == "bob")
        await bob.call("send_raw", "AWAY :brb")
        away = await ada.wait_for("away")
        # The package takes a command's first parameter as its target.
        assert (away.source.nick, away.target) == ("bob", "brb")
        await bob.call("quit", "bye")
        gone = await ada.wait_for("731")
        assert gone.arguments == ["bob"]
