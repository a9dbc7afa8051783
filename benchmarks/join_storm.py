"""A join storm: N plain-text guests connect at once and land in the default room.

Prints how long until every one of them is in (answered ``/ping``), the server's CPU time for
it, and the bytes the server sent all of them, so the cost of announcing each join to every
member is visible (it grows with the square of N when every join is announced). Figures only;
nothing is asserted.

    python benchmarks/join_storm.py --connections 2000 [--backend asyncio]
"""

from __future__ import annotations

import argparse
import asyncio
import resource
import sys
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent))

from servers import RAW, RunningServer, ServerSpec


async def _guest(port: int, counts: list[int], ready: asyncio.Event, started: list[int]) -> None:
    reader, writer = await asyncio.open_connection("127.0.0.1", port)
    try:
        writer.write(b"/ping\n")
        seen = b""
        while b"pong" not in seen:
            chunk = await reader.read(65536)
            if not chunk:
                raise ConnectionError("closed before pong")
            counts[0] += len(chunk)
            seen = seen[-8:] + chunk
        started[0] += 1
        await ready.wait()  # stay connected (reading) until every guest is in
        while True:
            chunk = await asyncio.wait_for(reader.read(65536), 0.5)
            if not chunk:
                break
            counts[0] += len(chunk)
    except TimeoutError:
        pass
    finally:
        writer.close()


async def storm(port: int, connections: int) -> tuple[float, int]:
    counts = [0]
    started = [0]
    ready = asyncio.Event()
    begin = time.perf_counter()
    tasks = [asyncio.create_task(_guest(port, counts, ready, started)) for _ in range(connections)]
    while started[0] < connections:
        done = [t for t in tasks if t.done() and t.exception() is not None]
        if done:
            raise SystemExit(f"a guest failed: {done[0].exception()!r}")
        await asyncio.sleep(0.05)
    elapsed = time.perf_counter() - begin
    ready.set()  # drain what is still on its way, then close
    await asyncio.gather(*tasks, return_exceptions=True)
    return elapsed, counts[0]


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--connections", type=int, default=2000)
    parser.add_argument("--backend", default="asyncio")
    args = parser.parse_args()
    soft, hard = resource.getrlimit(resource.RLIMIT_NOFILE)
    resource.setrlimit(resource.RLIMIT_NOFILE, (max(soft, min(hard, args.connections + 500)), hard))
    spec = ServerSpec(
        f"anychat-{args.backend}", RAW, "anychat", backend=args.backend, store="memory"
    )
    server = RunningServer(spec, pin=False, max_connections=args.connections + 100)
    try:
        before = server.cpu_seconds()
        elapsed, received = asyncio.run(storm(server.port, args.connections))
        cpu = server.cpu_seconds() - before
        print(
            f"{args.connections} text guests joined in {elapsed:.1f} s; server CPU {cpu:.1f} s; "
            f"{received / 1e6:.1f} MB sent to them ({received / args.connections / 1e3:.1f} kB "
            f"each); peak RSS {server.memory_kib() / 1024:.0f} MiB"
        )
    finally:
        server.stop()


if __name__ == "__main__":
    main()
