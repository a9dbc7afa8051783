"""Live Python heap per idle connection, by allocation site: what an idle connection holds.

    python benchmarks/conn_heap.py --protocol irc --backend asyncio --clients 1000
    python benchmarks/conn_heap.py --protocol jsonl --backend trio --top 30

The RSS figure of the ``idle`` rows (run.py) moves by more than a few hundred bytes from run to
run, as the allocator keeps freed memory by timing; this one does not. The server runs in a
child process under ``tracemalloc`` (``memory://``, flood control off, parking after 2 s); this
process connects the clients (registered, in rooms of 100), waits until the server has parked
every reader, and the child prints the heap that grew between the empty server (after two
clients came and went) and the held one, per connection and by the lines that allocated it.
Both snapshots follow a full collection, which also empties the interpreter's free lists
(tuples, dicts and frames kept for reuse are live blocks to tracemalloc: about 250 B per
connection at 1,000 without it, none of it the connections'). The figures are Python objects
only (no kernel socket buffers, no allocator slack), which is what the code decides.
"""

from __future__ import annotations

import argparse
import gc
import json
import subprocess
import sys
import time

from loadgen import LoadGen
from servers import PROTOCOLS, metric

ROOM_SIZE = 100


def serve(backend: str, top: int, park_after: float, frames: int) -> None:
    """The child: a server under tracemalloc, driven by lines on stdin (``base``, ``held``)."""
    import tracemalloc

    import anyio

    import anychat

    tracemalloc.start(frames)

    async def main() -> None:
        async with anychat.serve(
            port=0,
            database_url="memory://",
            flood_rate=0,
            max_connections=100_000,
            park_after_seconds=park_after,
            default_rooms=(),
        ) as server:
            print(json.dumps({"port": server.port}), flush=True)
            base = None
            while line := (await anyio.to_thread.run_sync(sys.stdin.readline)).strip():
                if line == "base":
                    gc.collect()  # empties the free lists, which tracemalloc counts as live
                    base = tracemalloc.take_snapshot()
                    print(json.dumps({"ok": True}), flush=True)
                elif line.startswith("held") and base is not None:
                    clients = int(line.split()[1])
                    gc.collect()
                    held = tracemalloc.take_snapshot()
                    stats = held.compare_to(base, "traceback" if frames > 1 else "lineno")
                    grown = sum(s.size_diff for s in stats)
                    sites = [
                        (
                            s.size_diff / clients,
                            s.count_diff / clients,
                            " <- ".join(str(f) for f in s.traceback),
                        )
                        for s in sorted(stats, key=lambda s: -s.size_diff)[:top]
                    ]
                    print(json.dumps({"per_connection": grown / clients, "sites": sites}))
                    return

    anyio.run(main, backend=backend.replace("uvloop", "asyncio"), **_options(backend))


def _options(backend: str) -> dict[str, object]:
    if backend == "uvloop":
        import uvloop

        return {"backend_options": {"loop_factory": uvloop.new_event_loop}}
    return {}


def parked(port: int) -> int:
    return int(metric(port, "anychat_parked_connections") or 0)


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--protocol", choices=["irc", "jsonl", "websocket"], default="irc")
    parser.add_argument("--backend", choices=["asyncio", "uvloop", "trio"], default="asyncio")
    parser.add_argument("--clients", type=int, default=1000)
    parser.add_argument("--top", type=int, default=15, help="allocation sites to list")
    parser.add_argument("--park-after", type=float, default=2.0)
    parser.add_argument("--frames", type=int, default=1, help="traceback depth per site")
    parser.add_argument("--serve", action="store_true", help=argparse.SUPPRESS)
    args = parser.parse_args()
    if args.serve:
        serve(args.backend, args.top, args.park_after, args.frames)
        return 0
    command = [sys.executable, __file__, "--serve", "--backend", args.backend]
    command += ["--top", str(args.top), "--park-after", str(args.park_after)]
    command += ["--frames", str(args.frames)]
    child = subprocess.Popen(
        command,
        stdin=subprocess.PIPE,
        stdout=subprocess.PIPE,
        text=True,
    )
    assert child.stdin is not None and child.stdout is not None

    def ask(line: str) -> dict[str, object]:
        assert child.stdin is not None and child.stdout is not None
        child.stdin.write(line + "\n")
        child.stdin.flush()
        return json.loads(child.stdout.readline())

    try:
        port = int(json.loads(child.stdout.readline())["port"])
        adapter = PROTOCOLS[args.protocol]
        warm = LoadGen(port, adapter, 2, 1)
        warm.connect()
        warm.barrier()
        warm.close()
        deadline = time.monotonic() + 10
        while parked(port) and time.monotonic() < deadline:
            time.sleep(0.1)
        ask("base")
        gen = LoadGen(port, adapter, args.clients, 1)
        try:
            gen.connect(timeout=600, room_of=lambda i: f"#m{i // ROOM_SIZE}")
            deadline = time.monotonic() + args.park_after + 60
            while (count := parked(port)) < args.clients and time.monotonic() < deadline:
                time.sleep(0.25)
            report = ask(f"held {args.clients}")
        finally:
            gen.close()
    finally:
        child.kill()
        child.wait()
    print(
        f"{args.protocol} on {args.backend}: {report['per_connection']:,.0f} B of Python heap "
        f"per idle connection ({count:,} of {args.clients:,} parked)"
    )
    print("by allocation site (bytes and blocks per connection):")
    for size, blocks, where in report["sites"]:  # type: ignore[attr-defined]
        print(f"  {size:8.1f} B {blocks:6.2f}  {where}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
