"""Soak: many connections with churn for a while, printing the server's RSS and open fds.

Keeps ``--connections`` clients connected to an ``anychat serve`` subprocess (half people on nc,
half JSON-lines guests, all in ``#general``), closes ``--churn`` of them a second (some saying
goodbye, some just hanging up) and opens as many new ones, while a few say something now and
then, for ``--seconds``. Every ``--every`` seconds it prints the server's resident memory, its
open file descriptors, its CPU use and the connection counts, so a leak shows as a column that
keeps growing while the load stays the same. Figures only; nothing is asserted.

    python benchmarks/soak.py --connections 2000 --seconds 60 [--churn 50] [--backend trio]
"""

from __future__ import annotations

import argparse
import asyncio
import os
import random
import resource
import sys
import time
from dataclasses import dataclass
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent))

from servers import RAW, RunningServer, ServerSpec

_TEXT_HELLO = b"/ping\n"
_JSON_HELLO = b'{"type":"hello","nick":null}\n'


@dataclass
class Tally:
    opened: int = 0
    closed: int = 0
    failed: int = 0
    said: int = 0
    received: int = 0


class Peer:
    """One client connection: reads (and drops) everything, says a line when asked."""

    def __init__(self, json: bool) -> None:
        self.json = json
        self.writer: asyncio.StreamWriter | None = None
        self.task: asyncio.Task[None] | None = None

    async def run(self, port: int, tally: Tally, ready: asyncio.Event) -> None:
        try:
            reader, self.writer = await asyncio.open_connection("127.0.0.1", port)
            self.writer.write(_JSON_HELLO if self.json else _TEXT_HELLO)
            tally.opened += 1
            while chunk := await reader.read(65536):
                tally.received += len(chunk)
                ready.set()  # served: the server has answered
        except OSError:
            tally.failed += 1
            ready.set()
        finally:
            ready.set()  # closed without a word counts as answered
            if self.writer is not None:
                self.writer.close()

    def say(self, n: int) -> None:
        if self.writer is None or self.writer.is_closing():
            return
        if self.json:
            self.writer.write(b'{"type":"say","to":"#general","text":"soak %d"}\n' % n)
        else:
            self.writer.write(b"soak %d\n" % n)

    def leave(self, politely: bool) -> None:
        if self.writer is None:
            return
        if politely:
            self.writer.write(b'{"type":"quit"}\n' if self.json else b"/quit\n")
            self.writer.close()
        else:
            self.writer.transport.abort()  # hang up without a word


def server_figures(server: RunningServer) -> tuple[int, int]:
    """Resident memory (KiB) and open file descriptors of the server."""
    return server.memory_kib("VmRSS"), len(os.listdir(f"/proc/{server.pid}/fd"))


async def soak(server: RunningServer, args: argparse.Namespace) -> None:
    tally = Tally()
    peers: list[Peer] = []
    rng = random.Random(1)
    count = 0

    async def open_one() -> None:
        nonlocal count
        count += 1
        peer = Peer(json=count % 2 == 0)
        ready = asyncio.Event()
        peer.task = asyncio.create_task(peer.run(server.port, tally, ready))
        peers.append(peer)
        await ready.wait()

    _, idle_fds = server_figures(server)
    start = time.monotonic()
    for batch in range(0, args.connections, 200):  # the first crowd, in batches
        await asyncio.gather(*(open_one() for _ in range(min(200, args.connections - batch))))
    for _ in range(600):  # up to 60 s, polling /proc: until the server holds them all
        if server_figures(server)[1] >= idle_fds + args.connections - tally.failed:
            break
        await asyncio.sleep(0.1)
    ramp = time.monotonic() - start
    print(f"{args.connections} connections served in {ramp:.1f} s; soaking for {args.seconds} s")
    print(
        f"{'t (s)':>6} {'RSS MiB':>8} {'fds':>6} {'CPU %':>6} {'open':>6} "
        f"{'opened':>8} {'closed':>8} {'failed':>6} {'said':>6}"
    )
    samples: list[tuple[float, int, int]] = []
    cpu_before, clock_before = server.cpu_seconds(), time.monotonic()
    begin = time.monotonic()
    next_sample = begin
    tick = 0
    while (now := time.monotonic()) - begin < args.seconds:
        tick += 1
        for _ in range(args.churn):  # churn: some leave, as many arrive
            peer = peers.pop(rng.randrange(len(peers)))
            peer.leave(politely=rng.random() < 0.5)
            tally.closed += 1
        await asyncio.gather(*(open_one() for _ in range(args.churn)))
        for _ in range(args.messages):
            tally.said += 1
            peers[rng.randrange(len(peers))].say(tally.said)
        if now >= next_sample:
            rss, fds = server_figures(server)
            cpu_now, clock_now = server.cpu_seconds(), time.monotonic()
            cpu = 100 * (cpu_now - cpu_before) / max(clock_now - clock_before, 1e-9)
            cpu_before, clock_before = cpu_now, clock_now
            samples.append((now - begin, rss, fds))
            print(
                f"{now - begin:6.0f} {rss / 1024:8.1f} {fds:6d} {cpu:6.0f} {len(peers):6d} "
                f"{tally.opened:8d} {tally.closed:8d} {tally.failed:6d} {tally.said:6d}",
                flush=True,
            )
            next_sample += args.every
        await asyncio.sleep(max(0.0, begin + tick - time.monotonic()))  # one round a second
    for peer in peers:
        peer.leave(politely=False)
    await asyncio.gather(*(p.task for p in peers if p.task), return_exceptions=True)
    left = time.monotonic()
    last, unchanged = -1, 0
    for n in range(int(args.drain * 10)):  # polling /proc: until the count stays put for 3 s
        fds = server_figures(server)[1]
        if n % 10 == 0:
            print(f"{n / 10:6.0f} s after everyone left: {fds} fds", flush=True)
        unchanged = unchanged + 1 if fds == last else 0
        if unchanged >= 30:
            break
        last = fds
        await asyncio.sleep(0.1)
    drained = time.monotonic() - left
    rss, fds = server_figures(server)
    first, last = samples[0], samples[-1]
    peak = max(s[1] for s in samples)
    print(
        f"summary: {tally.opened} connections opened, {tally.closed} closed during the soak, "
        f"{tally.failed} failed; server RSS {first[1] / 1024:.1f} MiB at the start, "
        f"{last[1] / 1024:.1f} at the end (peak {peak / 1024:.1f}); fds {first[2]} -> {last[2]}; "
        f"settled {drained:.0f} s after everyone left: RSS {rss / 1024:.1f} MiB, {fds} fds ({idle_fds} before anyone came)"
    )


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--connections", type=int, default=2000, help="kept open at once")
    parser.add_argument("--seconds", type=float, default=60.0)
    parser.add_argument("--churn", type=int, default=50, help="replaced per second")
    parser.add_argument("--messages", type=int, default=5, help="said per second in all")
    parser.add_argument("--every", type=float, default=5.0, help="seconds between samples")
    parser.add_argument("--drain", type=float, default=30.0, help="seconds to wait at the end")
    parser.add_argument("--log", type=int, default=0, help="print this many server log lines")
    parser.add_argument("--backend", default="asyncio", choices=["asyncio", "trio"])
    args = parser.parse_args()
    soft, hard = resource.getrlimit(resource.RLIMIT_NOFILE)
    want = min(hard, args.connections * 2 + 1000)
    resource.setrlimit(resource.RLIMIT_NOFILE, (max(soft, want), hard))
    spec = ServerSpec(
        f"anychat-{args.backend}", RAW, "anychat", backend=args.backend, store="memory"
    )
    server = RunningServer(spec, pin=False, max_connections=args.connections * 2 + 100)
    try:
        asyncio.run(soak(server, args))
        if args.log:
            print(server.log_tail(args.log))
    finally:
        server.stop()


if __name__ == "__main__":
    main()
