"""CPU per store call handed off the event loop: ``anyio.to_thread`` against ``StoreThread``.

    python benchmarks/store_hop.py                  # asyncio and trio, 20,000 calls, best of 5

Every SQLite and PostgreSQL store call (each commit, so each message on an idle server) runs in
a thread so that the event loop never blocks. This times the hand-off alone, with a call that
does nothing: the process CPU time (both threads) and the wall time per call, for the way the
stores used to do it (``anyio.to_thread.run_sync`` under a ``CapacityLimiter(1)``), for
:class:`anychat.store.worker.StoreThread` awaited (every store call but the committer's), and
for its ``submitter`` (the committer's appends: a callback on the loop, nothing awaited), in
the same run, the best of ``--repeat`` tries. Pin it to one core (``taskset -c 0``) to see
what ``benchmarks/run.py``'s pinned server pays.
"""

from __future__ import annotations

import argparse
import sys
import time
from collections.abc import Awaitable, Callable

import anyio

from anychat.store.worker import StoreThread


def _nothing() -> None:
    return None


async def _per_call(calls: int, hop: Callable[[], Awaitable[None]]) -> tuple[float, float]:
    for _ in range(100):  # warm-up: threads started, caches warm
        await hop()
    cpu, wall = time.process_time(), time.perf_counter()
    for _ in range(calls):
        await hop()
    return (time.process_time() - cpu) / calls, (time.perf_counter() - wall) / calls


async def _to_thread(calls: int) -> tuple[float, float]:
    limiter = anyio.CapacityLimiter(1)

    async def hop() -> None:
        await anyio.to_thread.run_sync(_nothing, limiter=limiter)

    return await _per_call(calls, hop)


async def _store_thread(calls: int) -> tuple[float, float]:
    worker = StoreThread("bench")

    async def hop() -> None:
        await worker.run(_nothing)

    try:
        return await _per_call(calls, hop)
    finally:
        worker.close()


async def _submitted(calls: int) -> tuple[float, float]:
    """Calls handed over with :meth:`StoreThread.submitter`, each one's callback (on the loop)
    handing over the next: how the committer writes with SQLite and PostgreSQL."""
    worker = StoreThread("bench")
    submit = worker.submitter()

    async def chain(count: int) -> None:
        finished = anyio.Event()
        left = count

        def landed(_result: object, error: BaseException | None) -> None:
            nonlocal left
            assert error is None
            left -= 1
            if left:
                submit(_nothing, landed)
            else:
                finished.set()

        submit(_nothing, landed)
        await finished.wait()

    try:
        await chain(100)  # warm-up
        cpu, wall = time.process_time(), time.perf_counter()
        await chain(calls)
        return (time.process_time() - cpu) / calls, (time.perf_counter() - wall) / calls
    finally:
        worker.close()


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--calls", type=int, default=20_000)
    parser.add_argument("--repeat", type=int, default=5)
    args = parser.parse_args()
    print(f"{args.calls} calls, best of {args.repeat} (Python {sys.version.split()[0]})")
    for backend in ("asyncio", "trio"):
        for name, how in (
            ("anyio.to_thread", _to_thread),
            ("StoreThread", _store_thread),
            ("submitter", _submitted),
        ):
            runs = [anyio.run(how, args.calls, backend=backend) for _ in range(args.repeat)]
            cpu = min(r[0] for r in runs)
            wall = min(r[1] for r in runs)
            print(f"{backend:8} {name:16} CPU {cpu * 1e6:6.1f} µs   wall {wall * 1e6:6.1f} µs")
    return 0


if __name__ == "__main__":
    sys.exit(main())
