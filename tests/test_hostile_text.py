"""Text that is not text: lone UTF-16 surrogates and recursion bombs sent as JSON.

JSON can spell one half of a surrogate pair on its own (``"\\ud800"``); Python decodes that to a
``str`` that no UTF-8 encoder accepts. Before the codec refused such lines, one ``quit`` with
such a reason ended the whole server, and one ``say`` failed other people's commits. These tests
send the exact lines over real sockets and check that everyone else is untouched.
"""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import anychat

from .helpers import LineClient

SURROGATE = "\\ud800"  # JSON's spelling of a lone high surrogate, as a client would send it


async def _hello(port: int, nick: str) -> LineClient:
    client = await LineClient.open(port)
    await client.send_json(type="hello", nick=nick)
    await client.json_event("welcome")
    return client


async def test_lone_surrogate_quit_reason_does_not_stop_the_server() -> None:
    async with anychat.serve(port=0, database_url="memory://") as server:
        port = server.port
        async with await _hello(port, "bob") as bob, await _hello(port, "alice") as alice:
            await alice.send(b'{"type":"quit","reason":"' + SURROGATE.encode() + b'"}\n')
            # alice is refused the line (or leaves); either way bob hears a clean quit and the
            # server keeps serving: a new client can still chat with bob.
            error = await alice.json_event("error")
            assert error["code"] == "invalid_utf8"
            await alice.send_json(type="quit", reason="bye")
            quitted = await bob.json_event("quit")
            assert quitted["nick"] == "alice"
            async with await _hello(port, "carol") as carol:
                await carol.send_json(type="say", to="#general", text="still here", ref=1)
                assert (await carol.json_event("ack"))["ref"] == 1
                assert (await bob.json_event("message"))["text"] == "still here"


async def test_lone_surrogate_message_costs_nobody_else_anything(tmp_path: Path) -> None:
    url = f"sqlite:///{tmp_path / 'chat.db'}"
    async with anychat.serve(port=0, database_url=url) as server:
        port = server.port
        async with await _hello(port, "bob") as bob, await _hello(port, "mallory") as mallory:
            await bob.send_json(type="say", to="#general", text="before", ref="b1")
            bad = b'{"type":"say","to":"#general","text":"X' + SURROGATE.encode() + b'Y","ref":"s"}'
            await mallory.send(bad + b"\n")
            await bob.send_json(type="say", to="#general", text="after", ref="b2")
            assert (await bob.json_event("ack"))["ref"] == "b1"
            assert (await bob.json_event("ack"))["ref"] == "b2"
            # mallory is still connected: refused her line, heard both of bob's messages.
            seen: list[dict[str, Any]] = []
            while len(seen) < 3:
                event = json.loads(await mallory.line())
                if event["type"] in ("error", "message"):
                    seen.append(event)
            assert [e.get("text") for e in seen if e["type"] == "message"] == ["before", "after"]
            (error,) = [e for e in seen if e["type"] == "error"]
            assert error["code"] == "invalid_utf8" and "surrogate" in error["text"]
            # A newcomer to the room gets the replay without being disconnected.
            async with await _hello(port, "dave") as dave:
                replayed = [(await dave.json_event("message"))["text"] for _ in range(2)]
                assert replayed == ["before", "after"]
                await dave.send_json(type="history", to="#general", ref="h")
                page = await dave.json_event("history")
                assert [msg["text"] for msg in page["messages"]] == ["before", "after"]


async def test_surrogates_in_topic_away_and_part_reason_are_refused() -> None:
    async with anychat.serve(port=0, database_url="memory://") as server:
        async with await _hello(server.port, "eve") as eve, await _hello(server.port, "bob") as bob:
            for line in (
                b'{"type":"topic","room":"#general","text":"' + SURROGATE.encode() + b'"}',
                b'{"type":"away","text":"' + SURROGATE.encode() + b'"}',
                b'{"type":"part","room":"#general","reason":"' + SURROGATE.encode() + b'"}',
                b'{"type":"hello","nick":"x","\\udfff":1}',
            ):
                await eve.send(line + b"\n")
                assert (await eve.json_event("error"))["code"] == "invalid_utf8"
            await eve.send_json(type="say", to="#general", text="fine", ref=7)
            assert (await eve.json_event("ack"))["ref"] == 7
            assert (await bob.json_event("message"))["text"] == "fine"


async def test_valid_surrogate_pairs_are_ordinary_text() -> None:
    async with anychat.serve(port=0, database_url="memory://") as server:
        async with await _hello(server.port, "ann") as ann, await _hello(server.port, "bob") as bob:
            await ann.send(b'{"type":"say","to":"#general","text":"\\ud83d\\ude00","ref":1}\n')
            assert (await ann.json_event("ack"))["ref"] == 1
            assert (await bob.json_event("message"))["text"] == "\U0001f600"


async def test_deeply_nested_json_is_an_error_not_a_disconnect() -> None:
    async with anychat.serve(port=0, database_url="memory://") as server:
        async with await _hello(server.port, "ann") as ann:
            await ann.send(b"[" * 1100 + b"\n")
            error = await ann.json_event("error")
            assert error["code"] == "bad_command"
            await ann.send_json(type="ping", ref="p")
            assert (await ann.json_event("pong"))["ref"] == "p"
