"""IRC fan-out: R raw IRC receivers in one channel, S senders, N messages each.

    python benchmarks/irc_fanout.py                      # embedded anychat server, asyncio
    python benchmarks/irc_fanout.py --backend trio
    python benchmarks/irc_fanout.py --port 6667          # any IRC server already running

Prints deliveries per second (messages times receivers, over the time from the first send to
the last delivery). Senders do not read: their kernel buffers absorb what they are sent.
Servers with flood penalties (ngircd, most networks) throttle the senders, so compare those with
care.
"""

from __future__ import annotations

import argparse
import time

import anyio
from anyio.abc import SocketStream

import anychat


async def _register(port: int, nick: str, room: str) -> SocketStream:
    stream = await anyio.connect_tcp("127.0.0.1", port)
    await stream.send(f"NICK {nick}\r\nUSER {nick} 0 * :{nick}\r\nJOIN {room}\r\n".encode())
    buffer = b""
    while f" 366 {nick} ".encode() not in buffer:
        buffer += await stream.receive()
    return stream


async def _count(stream: SocketStream, expected: int, done: list[float]) -> None:
    seen, tail = 0, b""
    while seen < expected:
        data = tail + await stream.receive()
        seen += data.count(b" PRIVMSG ")
        tail = data[data.rfind(b"\n") + 1 :]
        seen -= tail.count(b" PRIVMSG ")
    done.append(time.perf_counter())


async def bench(port: int, receivers: int, senders: int, messages: int) -> float:
    room = "#bench"
    clients = [await _register(port, f"r{i}", room) for i in range(receivers)]
    talkers = [await _register(port, f"s{i}", room) for i in range(senders)]
    done: list[float] = []
    line = b"PRIVMSG #bench :" + b"x" * 60 + b"\r\n"
    start = time.perf_counter()
    async with anyio.create_task_group() as tg:
        for client in clients:
            tg.start_soon(_count, client, senders * messages, done)
        for talker in talkers:
            for _ in range(0, messages, 100):
                await talker.send(line * 100)
    elapsed = max(done) - start
    for stream in clients + talkers:
        await stream.aclose()
    return senders * messages * receivers / elapsed


async def main(args: argparse.Namespace) -> None:
    if args.port:
        rate = await bench(args.port, args.receivers, args.senders, args.messages)
    else:
        async with anychat.serve(port=0, flood_rate=0) as server:
            rate = await bench(server.port, args.receivers, args.senders, args.messages)
    print(f"{rate:,.0f} deliveries/s")


if __name__ == "__main__":
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--port", type=int, default=0)
    parser.add_argument("--backend", default="asyncio")
    parser.add_argument("--receivers", type=int, default=50)
    parser.add_argument("--senders", type=int, default=5)
    parser.add_argument("--messages", type=int, default=2000)
    arguments = parser.parse_args()
    anyio.run(main, arguments, backend=arguments.backend)
