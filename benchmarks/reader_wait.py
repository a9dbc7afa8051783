"""CPU per readiness wait of a reader: AnyIO's plain ``wait_readable`` against parking's wait.

    python benchmarks/reader_wait.py                  # asyncio and trio, 20,000 waits, best of 5
    taskset -c 1 python benchmarks/reader_wait.py --waits 50000

Every reader whose socket is empty waits for input, so at one message in flight (a ping-pong)
each message costs one such wait. Parking needs a wait that the idle watcher can end (to ask the
reader to park): on asyncio a future of its own (the socket stays watched between waits), on trio
a plain wait that ``notify_closing`` ends (``anychat.parking_selector``). This times each wait
alone: one socket pair, one byte sent before each wait (so every wait goes once through the
event loop and returns), the process CPU time per wait, the minimum over ``--repeat`` runs
(noise only adds). Compare versions with ``PYTHONPATH=/other/checkout/src``.
"""

from __future__ import annotations

import argparse
import socket
import time
from collections.abc import Awaitable, Callable

import anyio

from anychat.idle import parking_for
from anychat.transport import TcpTransport


class _Waiting:
    """The parts of a connection a parking wait touches."""

    def __init__(self, sock: socket.socket) -> None:
        self.transport = TcpTransport(sock, ("127.0.0.1", 0))
        self.waiter: object = None
        self.writing = False


async def _time(
    waits: int, wait: Callable[[], Awaitable[object]], a: socket.socket, b: socket.socket
) -> float:
    start = time.process_time()
    for _ in range(waits):
        a.send(b"x")
        await wait()
        b.recv(16)
    return (time.process_time() - start) / waits


async def _measure(waits: int, repeat: int) -> dict[str, float]:
    a, b = socket.socketpair()
    a.setblocking(False)
    b.setblocking(False)
    best = {"anyio.wait_readable": float("inf"), "parking's wait": float("inf")}
    async with anyio.create_task_group() as tg:
        parking = parking_for(tg, 10.0)
        assert parking is not None
        conn = _Waiting(b)

        def plain() -> Awaitable[None]:
            return anyio.wait_readable(b)

        def parked() -> Awaitable[bool]:
            return parking.wait_readable(conn)  # type: ignore[arg-type]  # a stand-in

        for _ in range(repeat):
            for name, wait in (("anyio.wait_readable", plain), ("parking's wait", parked)):
                best[name] = min(best[name], await _time(waits, wait, a, b))
                # (asyncio: parking keeps its watch between waits, and AnyIO's wait would
                # take the socket's one reader callback over from it)
                conn.transport.unwatch()
        tg.cancel_scope.cancel()
    a.close()
    b.close()
    return best


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n", 1)[0])
    parser.add_argument("--waits", type=int, default=20_000)
    parser.add_argument("--repeat", type=int, default=5)
    parser.add_argument("--backend", choices=["asyncio", "trio", "both"], default="both")
    args = parser.parse_args()
    backends = ["asyncio", "trio"] if args.backend == "both" else [args.backend]
    print(f"{args.waits:,} waits, best of {args.repeat}, µs of CPU per wait")
    for backend in backends:
        best = anyio.run(_measure, args.waits, args.repeat, backend=backend)
        row = "   ".join(f"{name} {cost * 1e6:6.2f}" for name, cost in best.items())
        print(f"{backend:8} {row}")


if __name__ == "__main__":
    main()
