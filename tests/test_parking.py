"""Idle connections give up their reader task and lose nothing by it (anychat.parking).

A reader quiet for ``park_after_seconds`` parks: its task ends and its socket is watched without
one (asyncio's event loop with a callback; on trio, one task for all of them through a selector of
the server's own). These tests park connections of every line protocol on every backend, then
check that they still hear the room, wake on their own input, and are ended properly while parked
(a ping timeout, their own hang-up, shutdown).
"""

from __future__ import annotations

import asyncio
import json
from typing import Any

import anyio

import anychat
from anychat.connection import EARLY_PARKS
from anychat.idle import parking_for
from anychat.parking import Parking
from anychat.parking_selector import SelectorParking

from .helpers import LineClient
from .webclient import http_get

FAST: dict[str, Any] = {"database_url": "memory://", "park_after_seconds": 0.2, "flood_rate": 0}


async def _parked(port: int) -> int:
    body = (await http_get(port, "/metrics")).body.decode()
    line = next(x for x in body.splitlines() if x.startswith("anychat_parked_connections "))
    return int(line.split()[1])


async def _until_parked(port: int, count: int) -> None:
    """Wait until ``count`` connections are parked."""
    # The count lives in the server; /metrics is its only window, so this asks until it shows
    # (each turn a real request; the sleep paces the asking, it orders nothing).
    while await _parked(port) != count:  # noqa: ASYNC110
        await anyio.sleep(0.05)


def _backend(anyio_backend: object) -> str:
    return anyio_backend[0] if isinstance(anyio_backend, tuple) else str(anyio_backend)


async def _json(port: int, nick: str) -> LineClient:
    client = await LineClient.open(port)
    await client.send_json(type="hello", nick=nick)
    await client.json_event("members")
    return client


async def _irc(port: int, nick: str, room: str) -> LineClient:
    irc = await LineClient.open(port)
    await irc.send(f"NICK {nick}\r\nUSER u 0 * :U\r\nJOIN {room}\r\n".encode())
    await irc.line_containing(b" 366 ")
    return irc


async def test_parked_connections_hear_the_room_and_wake_on_input(anyio_backend: object) -> None:
    async with anychat.serve(port=0, **FAST) as server:
        with anyio.fail_after(20):
            js = await _json(server.port, "js")
            irc = await _irc(server.port, "ircer", "#general")
            text = await LineClient.open(server.port)
            await text.line_containing(b"Welcome")
            await text.send(b"/nick texter\n")
            await text.line_containing(b"texter")
            await _until_parked(server.port, 3)

            # Parked readers: the room still reaches them (output needs no task).
            speaker = await _json(server.port, "speaker")
            await speaker.send_json(type="say", to="#general", text="to the parked", ref="1")
            assert (await speaker.json_event("ack"))["ref"] == "1"
            said = await js.json_event("message")
            assert said["text"] == "to the parked"
            assert b"PRIVMSG #general :to the parked" in await irc.line_containing(b"PRIVMSG")
            assert b"to the parked" in await text.line_containing(b"to the parked")

            # Their own input wakes them, commands are answered, nothing is lost.
            await js.send_json(type="say", to="#general", text="js is back", ref="2")
            assert (await js.json_event("ack"))["ref"] == "2"
            await irc.send(b"PRIVMSG #general :irc is back\r\n")
            await text.send(b"text is back\n")
            seen: set[str] = set()
            while len(seen) < 3:
                event = await speaker.json_event("message")
                seen.add(event["text"])
            assert seen == {"js is back", "irc is back", "text is back"}

            # Several batches in a row after waking, then quiet and parked again.
            for i in range(20):
                await irc.send(f"PRIVMSG #general :burst {i}\r\n".encode())
            for i in range(20):
                assert (await speaker.json_event("message"))["text"] == f"burst {i}"
            await _until_parked(server.port, 4)
            await irc.send(b"PRIVMSG #general :woken twice\r\n")
            assert (await speaker.json_event("message"))["text"] == "woken twice"
        for client in (js, irc, text, speaker):
            await client.aclose()


async def test_a_client_parks_at_its_first_quiet_moments_once_registered(
    anyio_backend: object,
) -> None:
    """A reader parks at its client's first few quiet moments once it has a nick
    (``EARLY_PARKS``), long before ``park_after_seconds``; one still registering keeps its
    reader (the idle watcher times its registration out); a parked client's lines wake it, and
    after those few it keeps its reader until the idle watcher asks."""
    settings = FAST | {"park_after_seconds": 3600.0}
    async with anychat.serve(port=0, **settings) as server:
        with anyio.fail_after(20):
            halfway = await LineClient.open(server.port)
            await halfway.send(b"NICK halfway\r\n")  # no USER yet: not registered
            irc = await _irc(server.port, "ircer", "#general")  # registers and joins at once
            js = await _json(server.port, "js")
            await _until_parked(server.port, 2)
            for turn in range(EARLY_PARKS):
                await js.send_json(type="say", to="#general", text=f"js {turn}", ref=str(turn))
                assert (await js.json_event("ack"))["ref"] == str(turn)
                assert f":js {turn}".encode() in await irc.line_containing(b"PRIVMSG")
                await irc.send(f"PRIVMSG #general :irc {turn}\r\n".encode())
                assert (await js.json_event("message"))["text"] == f"irc {turn}"
                if turn < EARLY_PARKS - 1:
                    await _until_parked(server.port, 2)  # both again, at once
            # Woken after their last early park, both keep their readers now.
            await halfway.send(b"USER h 0 * :H\r\n")
            await halfway.line_containing(b" 001 ")
            await _until_parked(server.port, 1)  # only the newly registered one
        for client in (halfway, irc, js):
            await client.aclose()


async def test_a_parked_client_that_hangs_up_is_announced(anyio_backend: object) -> None:
    async with anychat.serve(port=0, **FAST) as server:
        with anyio.fail_after(20):
            stay = await _json(server.port, "stay")
            leaver = await _irc(server.port, "leaver", "#general")
            await stay.json_event("joined")
            await _until_parked(server.port, 2)
            await leaver.aclose()
            gone = await stay.json_event("quit")
            assert gone["nick"] == "leaver"
            await _until_parked(server.port, 1)
        await stay.aclose()


async def test_parked_client_pinged_and_timed_out(anyio_backend: object) -> None:
    """The idle watcher still pings a parked IRC client and ends it when no PONG comes."""
    settings = FAST | {"idle_ping_seconds": 0.5, "idle_timeout_seconds": 0.5}
    async with anychat.serve(port=0, **settings) as server:
        with anyio.fail_after(20):
            silent = await _irc(server.port, "silent", "#general")
            watcher = await _irc(server.port, "watcher", "#general")
            await silent.line_containing(b"JOIN")  # the watcher's join
            assert (await silent.line_containing(b"PING")).startswith(b"PING")
            # The watcher answers its pings; the silent one does not.
            while True:
                line = await watcher.line()
                if line.startswith(b"PING"):
                    await watcher.send(b"PONG" + line[4:])
                elif b"QUIT" in line:
                    assert line.startswith(b":silent!") and b"ping timeout" in line.lower()
                    break
            assert b"ping timeout" in (await silent.read_to_eof()).lower()
            assert await _parked(server.port) <= 1  # the watcher may be parked
        await watcher.aclose()
        await silent.aclose()


async def test_shutdown_says_goodbye_to_parked_clients(anyio_backend: object) -> None:
    async with anychat.serve(port=0, **FAST) as server:
        with anyio.fail_after(20):
            js = await _json(server.port, "js")
            irc = await _irc(server.port, "ircer", "#general")
            await _until_parked(server.port, 2)
    with anyio.fail_after(10):
        rest = await js.read_to_eof()
        bye = [json.loads(x) for x in rest.splitlines() if b'"bye"' in x]
        assert bye and bye[-1]["code"] == "shutdown"
        assert b"server shutting down" in await irc.read_to_eof()
    await js.aclose()
    await irc.aclose()


async def test_parking_only_where_the_loop_watches_sockets(anyio_backend: object) -> None:
    """asyncio and uvloop park with the loop's callbacks, trio through a selector of its own
    (whose watching task ends with the task group); 0 turns parking off."""
    async with anyio.create_task_group() as tg:
        assert parking_for(tg, 0) is None
        made = parking_for(tg, 1.0)
        expected = SelectorParking if _backend(anyio_backend) == "trio" else Parking
        assert type(made) is expected
        assert parking_for(None, 1.0) is None
        tg.cancel_scope.cancel()


def test_a_parked_connection_ends_cleanly_under_a_plain_asyncio_run() -> None:
    """An embedder's ``asyncio.run`` (no ``anyio.run``): a parked client that times out is
    cleaned up by the event loop without an error (the socket closed by it, not by the
    garbage collector later)."""
    errors: list[dict[str, Any]] = []

    async def scenario() -> None:
        asyncio.get_running_loop().set_exception_handler(
            lambda loop, context: errors.append(context)
        )
        settings = FAST | {"idle_ping_seconds": 0.3, "idle_timeout_seconds": 0.3}
        async with anychat.serve(port=0, **settings) as server:
            with anyio.fail_after(20):
                talker = await _json(server.port, "talker")
                silent = await _irc(server.port, "silent", "#general")
                await _until_parked(server.port, 2)
                await talker.send_json(type="say", target="#general", text="awake", ref=1)
                assert (await talker.json_event("ack"))["ref"] == 1  # woken by its input
                assert b"ping timeout" in (await silent.read_to_eof()).lower()
            await silent.aclose()
            await talker.aclose()

    asyncio.run(scenario())
    assert errors == []
