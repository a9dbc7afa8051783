"""Socket-level fuzzing: hostile connections throw random and mutated bytes at a live server
while two real clients chat, and the chat loses nothing.

Each hostile connection picks a protocol's real lines (JSON, IRC, plain text), mutates some
bytes, mixes in random garbage, sends it in random pieces, and then hangs up politely, abruptly
or half-way. Meanwhile ann sends a numbered series of messages that bob must receive complete and
in order, and bob answers. Afterwards nothing may have been logged as an error while serving a
connection (a codec exception would be), and the server still welcomes a newcomer.
"""

from __future__ import annotations

import logging
import os
import random
import socket
from pathlib import Path

import anyio
import pytest

import anychat
from anychat import model as m

SEEDS = Path(__file__).parent / "fuzz" / "seeds"
MESSAGES = 40
HOSTILE = 8


def _lines() -> list[list[bytes]]:
    out = []
    for name in ("text", "jsonl", "irc"):
        raw = (SEEDS / f"{name}.txt").read_bytes()[2:]  # the first two bytes seed a split
        out.append([line for line in raw.splitlines(keepends=True) if line.strip()])
    return out


def _mutate(rng: random.Random, line: bytes) -> bytes:
    data = bytearray(line)
    for _ in range(rng.randrange(0, 4)):
        at = rng.randrange(len(data) + 1)
        roll = rng.random()
        if roll < 0.4 and data:
            data[min(at, len(data) - 1)] = rng.randrange(256)
        elif roll < 0.7:
            data[at:at] = rng.choice(
                [b"\x00", b"\xff", b"\xc2\xb2", b"\\ud800", b"[" * 50, b"\xe2\x80\xae", b"\r"]
            )
        else:
            del data[at : at + rng.randrange(1, 6)]
    return bytes(data)


def _payload(rng: random.Random, protocols: list[list[bytes]]) -> bytes:
    lines = rng.choice(protocols)
    parts = [lines[0]] if rng.random() < 0.7 else []  # usually start like a real client
    for _ in range(rng.randrange(1, 12)):
        if rng.random() < 0.15:
            parts.append(os.urandom(rng.randrange(1, 300)))
        else:
            parts.append(_mutate(rng, rng.choice(lines)))
    return b"".join(parts)


async def _hostile(port: int, seed: int, protocols: list[list[bytes]], stop: anyio.Event) -> None:
    rng = random.Random(seed)
    while not stop.is_set():
        try:
            stream = await anyio.connect_tcp("127.0.0.1", port)
        except OSError:
            continue
        async with stream:
            # Taken now: once the server has closed its side, the stream may no longer have it.
            sock = stream.extra(anyio.abc.SocketAttribute.raw_socket)
            data = _payload(rng, protocols)
            try:
                while data:
                    cut = rng.choice((1, 3, 17, 200, 4096))
                    await stream.send(data[:cut])
                    data = data[cut:]
                    if rng.random() < 0.1:
                        await anyio.lowlevel.checkpoint()
                ending = rng.random()
                if ending < 0.3:
                    await stream.send_eof()  # half-closed: keep reading what comes back
                    with anyio.move_on_after(0.2):
                        async for _ in stream:
                            pass
                elif ending < 0.5:
                    sock.setsockopt(socket.SOL_SOCKET, socket.SO_LINGER, b"\x01\0\0\0\0\0\0\0")
                else:
                    # Read a little of what came back before hanging up. (Floods of fresh
                    # connections are another matter, with limits of their own; this test is
                    # about what the bytes do, so the hostiles pace themselves by reading.)
                    with anyio.move_on_after(0.05):
                        async for _ in stream:
                            pass
            except (anyio.BrokenResourceError, anyio.EndOfStream, OSError):
                pass


@pytest.mark.timeout(300)
async def test_hostile_bytes_never_cost_a_real_chat_anything(
    caplog: pytest.LogCaptureFixture,
) -> None:
    protocols = _lines()
    seed = random.randrange(1 << 30)
    caplog.set_level(logging.INFO)
    async with anychat.serve(port=0, database_url="memory://", sniff_seconds=0.05) as srv:
        port = srv.port
        stop = anyio.Event()
        with anyio.fail_after(240):
            async with (
                anychat.connect("127.0.0.1", port, nick="ann", timeout=60) as ann,
                anychat.connect("127.0.0.1", port, nick="bob", timeout=60) as bob,
            ):
                async with anyio.create_task_group() as tg:
                    for i in range(HOSTILE):
                        tg.start_soon(_hostile, port, seed + i, protocols, stop)

                    async def ann_sends() -> None:
                        for i in range(MESSAGES):
                            await ann.send("#general", f"ann {i}")

                    async def ann_reads() -> None:
                        # Hostile guests come and go in #general: an application that stopped
                        # reading would stop its client (the event queue is bounded).
                        async for _ in ann:
                            pass

                    tg.start_soon(ann_sends)
                    tg.start_soon(ann_reads)
                    got: list[str] = []
                    while len(got) < MESSAGES:
                        event = await bob.receive()
                        if isinstance(event, m.Message) and event.sender == "ann":
                            got.append(event.text)
                            if len(got) % 10 == 0:
                                await bob.send("#general", f"bob saw {len(got)}")
                    stop.set()
                    tg.cancel_scope.cancel()
                assert got == [f"ann {i}" for i in range(MESSAGES)], f"seed {seed}"
                await ann.send("bob", "private, after the storm")
                private = await bob.wait_for(m.Message, lambda e: e.sender == "ann")
                assert private.text == "private, after the storm"
        async with anychat.connect("127.0.0.1", port, nick="newcomer") as newcomer:
            assert await newcomer.ping() >= 0
    errors = [r for r in caplog.records if r.levelno >= logging.ERROR]
    assert not errors, (seed, [r.getMessage() for r in errors][:5])
