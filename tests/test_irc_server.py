"""IRC through the real server with a raw socket: timers, bad input, and the other codecs."""

from __future__ import annotations

from collections.abc import AsyncIterator
from contextlib import asynccontextmanager

import anyio
import pytest
from anyio.abc import SocketStream

import anychat
from anychat import model as m

pytestmark = pytest.mark.timeout(30)


class Raw:
    """A hand-driven IRC connection that reads whole lines."""

    def __init__(self, stream: SocketStream) -> None:
        self.stream = stream
        self.buffer = b""

    async def send(self, *lines: str | bytes) -> None:
        data = b"".join((ln.encode() if isinstance(ln, str) else ln) + b"\r\n" for ln in lines)
        await self.stream.send(data)

    async def line(self) -> str:
        while b"\r\n" not in self.buffer:
            self.buffer += await self.stream.receive()
        line, _, self.buffer = self.buffer.partition(b"\r\n")
        return line.decode()

    async def until(self, needle: str) -> str:
        """Read lines until one contains ``needle``; returns that line."""
        with anyio.fail_after(5):
            while True:
                line = await self.line()
                if needle in line:
                    return line

    async def closed(self) -> None:
        """Read until the server closes the connection."""
        with anyio.fail_after(5):
            try:
                while True:
                    self.buffer += await self.stream.receive()
            except (anyio.EndOfStream, anyio.BrokenResourceError):
                return


@asynccontextmanager
async def raw(port: int, nick: str | None = None) -> AsyncIterator[Raw]:
    async with await anyio.connect_tcp("127.0.0.1", port) as stream:
        peer = Raw(stream)
        if nick is not None:
            await peer.send(f"NICK {nick}", f"USER {nick} 0 * :{nick}")
            await peer.until(f" 001 {nick} ")
        yield peer


async def test_quiet_clients_are_pinged_and_silent_ones_dropped() -> None:
    async with (
        anychat.serve(port=0, idle_ping_seconds=0.2, idle_timeout_seconds=0.3) as srv,
        raw(srv.port, "ada") as ada,
        raw(srv.port, "bob") as bob,
    ):
        await ada.send("JOIN #a")
        await bob.send("JOIN #a")
        await ada.until("366 ada")
        # bob answers every PING; ada answers none. bob sees her dropped and is pinged again.
        pings, quits = 0, list[str]()
        with anyio.fail_after(5):
            while pings < 2 or not quits:
                line = await bob.line()
                if line == "PING :anychat":
                    pings += 1
                    await bob.send("PONG :anychat")
                elif " QUIT " in line:
                    quits.append(line)
        assert len(quits) == 1
        assert quits[0].startswith(":ada!~ada@anychat QUIT :ping timeout: ")
        await ada.until("ERROR :Closing Link: ada (ping timeout")
        await ada.closed()


async def test_unregistered_connections_time_out() -> None:
    async with (
        anychat.serve(port=0, registration_timeout_seconds=0.2) as srv,
        raw(srv.port) as peer,
    ):
        await peer.send("NICK ada")
        await peer.until("ERROR :Closing Link: * (registration timed out)")
        await peer.closed()


async def test_lowercase_registration_is_sniffed_and_autojoins_nothing(
    server: anychat.Server,
) -> None:
    async with raw(server.port) as peer:
        await peer.send("cap ls 302", "nick ada", "user a 0 * :A", "cap end", "LIST")
        await peer.until(" 001 ada ")
        assert (await peer.until(" 32")).split()[1] == "321"
        assert (await peer.line()).split()[1] == "323"  # no rooms: nothing was joined


async def test_bad_input_is_answered_and_the_connection_lives_on(server: anychat.Server) -> None:
    async with raw(server.port, "ada") as ada:
        await ada.send(b"PRIVMSG #a :" + b"x" * 600, b"\xff\xfe\x00garbage", b"\x01\x02 \x03")
        assert (await ada.until(" 417 ")).endswith(":Input line was too long")
        await ada.send(b"PRIVMSG #nowhere :caf\xe9", b"PRIVMSG #a :nul\x00here", b"JOIN #a")
        assert " 421 ada " in await ada.line()
        assert " 421 ada " in await ada.line()
        assert " 401 ada #nowhere " in await ada.line()
        assert (
            await ada.line()
        ) == ":anychat NOTICE ada :message may not contain line breaks or NUL"
        assert (await ada.line()) == ":ada!~ada@anychat JOIN #a"
        await ada.send(b"PING :still-here")
        await ada.until("PONG anychat still-here")


async def test_topics_and_away_cross_codecs(server: anychat.Server) -> None:
    async with (
        raw(server.port, "ada") as ada,
        anychat.connect("127.0.0.1", server.port, nick="bob") as bob,
    ):
        await ada.send("JOIN #lab")
        await ada.until("366 ada #lab")
        await bob.join("#lab")
        await ada.send("TOPIC #lab :plans for today")
        await ada.until("TOPIC #lab :plans for today")
        with anyio.fail_after(5):
            topic = await bob.wait_for(m.RoomTopic)
        assert (topic.room, topic.text, topic.setter) == ("#lab", "plans for today", "ada")
        await ada.send("AWAY :lunch", "WHOIS bob", "WHO ada", "LIST #lab")
        await ada.until(" 306 ada ")
        assert (await ada.until(" 319 ada bob ")).endswith(
            ":#general #lab"
        )  # the lobby has no operator
        assert (await ada.until(" 352 ")).split()[8] == "G"
        assert (await ada.until(" 322 ")).endswith("#lab 2 :plans for today")


async def test_a_json_client_quit_reaches_irc_with_its_reason(server: anychat.Server) -> None:
    async with raw(server.port, "ada") as ada:
        await ada.send("JOIN #general")
        await ada.until("366 ada #general")
        async with anychat.connect("127.0.0.1", server.port, nick="bob") as bob:
            await ada.until(":bob!~bob@anychat JOIN #general")
            await bob.aclose("see you")
        assert (await ada.until("QUIT")) == ":bob!~bob@anychat QUIT :see you"
