"""A real third-party IRC client (the ``irc`` package from PyPI) against the server.

The ``irc`` client is blocking and threaded, so each peer's reactor runs in a worker thread
(:func:`anyio.to_thread.run_sync`) only while a test waits for something, and processes input
until the expected event arrives or a deadline passes. The server runs on the test's backend.
"""

from __future__ import annotations

import threading
import time
from collections.abc import AsyncIterator, Callable
from contextlib import asynccontextmanager
from typing import Any

import anyio
import irc.client
import pytest

import anychat
from anychat import model as m

pytestmark = pytest.mark.timeout(30)

DEADLINE = 5.0


class IrcPeer:
    """One ``irc.client`` connection, recording every event it sees."""

    def __init__(self, reactor: irc.client.Reactor, conn: irc.client.ServerConnection) -> None:
        self.reactor = reactor
        self.conn = conn
        self.events: list[irc.client.Event] = []
        self._seen = 0
        self._lock = threading.Lock()
        reactor.add_global_handler("all_events", self._record, -100)

    def _record(self, conn: object, event: irc.client.Event) -> None:
        self.events.append(event)

    def _pump(self, match: Callable[[irc.client.Event], bool]) -> irc.client.Event:
        deadline = time.monotonic() + DEADLINE
        with self._lock:
            while True:
                while self._seen < len(self.events):
                    event = self.events[self._seen]
                    self._seen += 1
                    if match(event):
                        return event
                if time.monotonic() > deadline:
                    seen = [(e.type, e.source, e.target, e.arguments) for e in self.events]
                    raise TimeoutError(f"expected event never came; saw {seen}")
                self.reactor.process_once(0.02)

    async def wait_for(
        self, kind: str, predicate: Callable[[irc.client.Event], bool] = lambda e: True
    ) -> irc.client.Event:
        """The next event of type ``kind`` (skipping others) that satisfies ``predicate``."""
        return await anyio.to_thread.run_sync(self._pump, lambda e: e.type == kind and predicate(e))

    async def call(self, method: str, *args: Any) -> None:
        await anyio.to_thread.run_sync(lambda: getattr(self.conn, method)(*args))


@asynccontextmanager
async def irc_peer(port: int, nick: str, **kwargs: Any) -> AsyncIterator[IrcPeer]:
    reactor = irc.client.Reactor()

    def connect() -> irc.client.ServerConnection:
        return reactor.server().connect("127.0.0.1", port, nick, **kwargs)

    conn = await anyio.to_thread.run_sync(connect)
    peer = IrcPeer(reactor, conn)
    try:
        yield peer
    finally:
        await anyio.to_thread.run_sync(conn.close)


@pytest.fixture
async def irc_server() -> AsyncIterator[anychat.Server]:
    async with anychat.serve(port=0, irc_port=0) as srv:
        yield srv


@pytest.fixture(params=["main", "irc"])
def irc_port(request: pytest.FixtureRequest, irc_server: anychat.Server) -> int:
    """IRC clients are recognised on the main port and served on the dedicated one."""
    port = irc_server.irc_port if request.param == "irc" else irc_server.port
    assert port is not None
    return port


async def test_registration_welcomes_with_server_name_and_isupport(irc_port: int) -> None:
    async with irc_peer(irc_port, "ada") as ada:
        welcome = await ada.wait_for("welcome")
        assert welcome.target == "ada"
        assert welcome.source == "anychat"
        await ada.wait_for("nomotd")
        assert ada.conn.features.network == "anychat"
        assert list(ada.conn.features.chantypes) == ["#"]
        assert ada.conn.features.nicklen == m.MAX_NICK_LENGTH
        assert dict(ada.conn.features.prefix) == {"@": "o", "+": "v"}


async def test_irc_and_json_users_talk_in_one_room(
    irc_server: anychat.Server, irc_port: int
) -> None:
    async with (
        irc_peer(irc_port, "ada") as ada,
        anychat.connect("127.0.0.1", irc_server.port, nick="bob") as bob,
    ):
        await ada.wait_for("welcome")
        await ada.call("join", "#lab")
        await ada.wait_for("endofnames")
        await bob.join("#lab")
        joined = await ada.wait_for("join", lambda e: e.source.nick == "bob")
        assert joined.target == "#lab"

        await ada.call("privmsg", "#lab", "hello from irc")
        with anyio.fail_after(DEADLINE):
            msg = await bob.wait_for(m.Message)
        assert (msg.sender, msg.target, msg.text) == ("ada", "#lab", "hello from irc")

        await bob.send("#lab", "hello from json")
        pub = await ada.wait_for("pubmsg")
        assert pub.source.nick == "bob"
        assert pub.target == "#lab"
        assert pub.arguments == ["hello from json"]

        await bob.action("#lab", "waves")
        action = await ada.wait_for("action")
        assert (action.source.nick, action.arguments) == ("bob", ["waves"])
        await ada.call("action", "#lab", "bows")
        with anyio.fail_after(DEADLINE):
            act = await bob.wait_for(m.Message, lambda e: e.kind is m.Kind.ACTION)
        assert act.text == "bows"

        await bob.send("ada", "psst")
        private = await ada.wait_for("privmsg")
        assert (private.source.nick, private.target, private.arguments) == ("bob", "ada", ["psst"])


async def test_irc_users_see_each_other(irc_port: int) -> None:
    async with irc_peer(irc_port, "ada") as ada, irc_peer(irc_port, "cy") as cy:
        for peer in (ada, cy):
            await peer.wait_for("welcome")
            await peer.call("join", "#a,#b")
            await peer.wait_for("endofnames", lambda e: e.arguments[0] == "#b")
        await cy.call("privmsg", "#b", "hi ada")
        pub = await ada.wait_for("pubmsg")
        assert (pub.source.nick, pub.target, pub.arguments) == ("cy", "#b", ["hi ada"])
        await cy.call("notice", "ada", "quiet word")
        notice = await ada.wait_for("privnotice")
        assert notice.arguments == ["quiet word"]
        # irc.client's part() sends the reason without ':', so only its first word would count.
        await cy.call("send_raw", "PART #a :tidying up")
        part = await ada.wait_for("part")
        assert (part.source.nick, part.target, part.arguments) == ("cy", "#a", ["tidying up"])
        await ada.call("mode", "#b", "+o cy")  # #b is +t: only its operators set the topic
        await cy.wait_for("mode")
        await cy.call("topic", "#b", "plans")
        topic = await ada.wait_for("topic")
        assert (topic.source.nick, topic.target, topic.arguments) == ("cy", "#b", ["plans"])


async def test_nick_change_is_seen_by_every_codec(
    irc_server: anychat.Server, irc_port: int
) -> None:
    async with (
        irc_peer(irc_port, "ada") as ada,
        irc_peer(irc_port, "cy") as cy,
        anychat.connect("127.0.0.1", irc_server.port, nick="bob") as bob,
    ):
        for peer in (ada, cy):
            await peer.wait_for("welcome")
            await peer.call("join", "#lab")
            await peer.wait_for("endofnames")
        await bob.join("#lab")
        await ada.call("nick", "ada2")
        own = await ada.wait_for("nick")
        assert (own.source.nick, own.target) == ("ada", "ada2")
        assert ada.conn.get_nickname() == "ada2"
        seen = await cy.wait_for("nick")
        assert (seen.source.nick, seen.target) == ("ada", "ada2")
        with anyio.fail_after(DEADLINE):
            changed = await bob.wait_for(m.NickChanged)
        assert (changed.old, changed.new) == ("ada", "ada2")

        await bob.set_nick("bobby")
        seen = await ada.wait_for("nick")
        assert (seen.source.nick, seen.target) == ("bob", "bobby")


async def test_a_nick_taken_on_one_codec_is_taken_on_all(
    irc_server: anychat.Server, irc_port: int
) -> None:
    async with (
        anychat.connect("127.0.0.1", irc_server.port, nick="Bob") as bob,
        irc_peer(irc_port, "bob") as ada,
    ):
        refused = await ada.wait_for("nicknameinuse")
        assert refused.arguments[0] == "bob"
        await ada.call("nick", "ada")
        welcome = await ada.wait_for("welcome")
        assert welcome.target == "ada"
        with pytest.raises(anychat.ChatError):
            await bob.set_nick("ADA")
        await ada.call("nick", "BOB")
        taken = await ada.wait_for("nicknameinuse")
        assert taken.arguments[0] == "BOB"


async def test_quit_is_seen_with_its_reason(irc_server: anychat.Server, irc_port: int) -> None:
    async with (
        anychat.connect("127.0.0.1", irc_server.port, nick="bob") as bob,
        irc_peer(irc_port, "ada") as ada,
    ):
        await ada.wait_for("welcome")
        await ada.call("join", "#lab")
        await ada.wait_for("endofnames")
        await bob.join("#lab")
        await ada.call("quit", "off to lunch")
        with anyio.fail_after(DEADLINE):
            quitted = await bob.wait_for(m.Quitted)
        assert (quitted.nick, quitted.reason) == ("ada", "off to lunch")
        await ada.wait_for("disconnect")


async def test_echo_message_and_server_time(irc_port: int) -> None:
    async with irc_peer(irc_port, "ada") as ada, irc_peer(irc_port, "cy") as cy:
        await ada.wait_for("welcome")
        await ada.call("cap", "REQ", "echo-message", "server-time")
        ack = await ada.wait_for("cap", lambda e: e.arguments[0] == "ACK")
        assert ack.arguments[1].split() == ["echo-message", "server-time"]
        await cy.wait_for("welcome")
        for peer in (ada, cy):
            await peer.call("join", "#lab")
            await peer.wait_for("endofnames")
        await ada.call("privmsg", "#lab", "echoed")
        echo = await ada.wait_for("pubmsg")
        assert (echo.source.nick, echo.arguments) == ("ada", ["echoed"])
        assert any(tag["key"] == "time" for tag in echo.tags)
        plain = await cy.wait_for("pubmsg")
        assert plain.arguments == ["echoed"]
        assert not plain.tags  # cy did not ask for server-time
