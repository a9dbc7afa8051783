"""Messages per second through a real server: SQLite durability on vs the memory store.

Both runs use the same load, one after the other, each against a fresh ``anychat serve``
subprocess (so the load generator does not share the server's event loop):

- ``--listeners`` JSON-lines clients sit in ``#bench`` and count the messages they receive;
- ``--senders`` clients each send ``--messages`` lines to ``#bench``, keeping up to ``--window``
  unacknowledged at a time (an ack means "stored", so with SQLite every ack waited for an fsync);
- the clock stops when every sender has all its acks and every listener has every message.

Usage: python benchmarks/store_bench.py [--backend asyncio|trio] [--messages 2000] ...
"""

from __future__ import annotations

import argparse
import os
import sys
import tempfile
import time
from pathlib import Path

import anyio
from anyio.abc import SocketStream

HELLO = b'{"type":"hello","nick":"%s","autojoin":false}\n{"type":"join","room":"#bench"}\n'


async def _connect(port: int, nick: str) -> SocketStream:
    stream = await anyio.connect_tcp("127.0.0.1", port)
    await stream.send(HELLO % nick.encode())
    seen = b""
    while b'"type":"members"' not in seen:
        seen += await stream.receive()
    return stream


async def _listen(stream: SocketStream, expected: int, done: anyio.Event) -> None:
    count = 0
    tail = b""
    while count < expected:
        data = tail + await stream.receive()
        count += data.count(b'"type":"message"')
        tail = data[-20:]
        count -= tail.count(b'"type":"message"')
    done.set()


async def _send(stream: SocketStream, messages: int, window: int, nick: str) -> int:
    line = b'{"type":"say","to":"#bench","text":"%s %d"}\n'
    sent = acked = errors = 0
    tail = b""
    while acked + errors < messages:
        burst = b"".join(
            line % (nick.encode(), sent + i)
            for i in range(min(window - (sent - acked - errors), messages - sent))
        )
        if burst:
            sent += burst.count(b"\n")
            await stream.send(burst)
        data = tail + await stream.receive()
        tail = data[-12:]
        acked += data.count(b'"type":"ack"') - tail.count(b'"type":"ack"')
        errors += data.count(b'"type":"error"') - tail.count(b'"type":"error"')
    return errors


async def _run_load(port: int, args: argparse.Namespace) -> tuple[float, int]:
    total = args.senders * args.messages
    listeners = [await _connect(port, f"l{i}") for i in range(args.listeners)]
    senders = [await _connect(port, f"s{i}") for i in range(args.senders)]
    # Every listener hears every message; a sender hears the others' messages too.
    dones = [anyio.Event() for _ in listeners]
    errors: list[int] = []
    start = time.perf_counter()
    async with anyio.create_task_group() as tg:
        for stream, done in zip(listeners, dones, strict=True):
            tg.start_soon(_listen, stream, total, done)

        async def sender(stream: SocketStream, nick: str) -> None:
            errors.append(await _send(stream, args.messages, args.window, nick))

        async with anyio.create_task_group() as senders_tg:
            for i, stream in enumerate(senders):
                senders_tg.start_soon(sender, stream, f"s{i}")
        for done in dones:
            await done.wait()
    elapsed = time.perf_counter() - start
    for stream in listeners + senders:
        await stream.aclose()
    return total / elapsed, sum(errors)


async def _measure(url: str, args: argparse.Namespace) -> tuple[float, int]:
    env = {**os.environ, "ANYCHAT_SECRET": "b" * 40}
    proc = await anyio.open_process(
        [
            sys.executable,
            "-m",
            "anychat",
            "serve",
            "--port",
            "0",
            "--database-url",
            url,
            "--flood-rate",
            "0",
            "--history-length",
            "0",
            "--log-level",
            "warning",
            "--backend",
            args.backend,
        ],
        env=env,
    )
    try:
        assert proc.stdout is not None
        out = b""
        while b"listening on" not in out or not out.endswith(b"\n"):
            out += await proc.stdout.receive()
        line = next(x for x in out.decode().splitlines() if "listening on" in x)
        port = int(line.split("listening on ")[1].split()[0].rsplit(":", 1)[1])
        with anyio.fail_after(600):
            return await _run_load(port, args)
    finally:
        proc.terminate()
        await proc.wait()
        await proc.aclose()


async def main(args: argparse.Namespace) -> None:
    with tempfile.TemporaryDirectory() as tmp:
        db = Path(tmp) / "bench.db"
        results = {}
        for name, url in (("memory", "memory://"), ("sqlite", f"sqlite:///{db}")):
            rate, errors = await _measure(url, args)
            results[name] = rate
            print(f"{name:>7}: {rate:10,.0f} messages/s ({errors} errors)")
        print(f" ratio: sqlite/memory = {results['sqlite'] / results['memory']:.2f}")
    print(
        f"(backend {args.backend}; {args.senders} senders x {args.messages} messages, window "
        f"{args.window}; {args.listeners} listeners; SQLite WAL, synchronous=FULL)"
    )


if __name__ == "__main__":
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--backend", default="asyncio", choices=["asyncio", "trio"])
    parser.add_argument("--senders", type=int, default=5)
    parser.add_argument("--listeners", type=int, default=50)
    parser.add_argument("--messages", type=int, default=2000, help="per sender")
    parser.add_argument("--window", type=int, default=50, help="unacked messages per sender")
    anyio.run(main, parser.parse_args())
