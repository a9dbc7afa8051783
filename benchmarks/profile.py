"""Where a server's time goes under the closed-loop load: py-spy samples, summed per function.

    python benchmarks/profile.py anychat-asyncio-jsonl-memory --clients 50 --seconds 8

Prints the functions with the most samples on top of the stack (self time) and in the stack
(inclusive time). Needs py-spy (``pip install py-spy``; root or ptrace permission).
"""

from __future__ import annotations

import argparse
import os
import subprocess
import sys
import tempfile
import threading
from pathlib import Path

from loadgen import LoadGen
from servers import RunningServer, all_servers
from spystacks import spy_counts


def main() -> int:
    parser = argparse.ArgumentParser()
    parser.add_argument("server")
    parser.add_argument("--clients", type=int, default=50)
    parser.add_argument("--senders", type=int, default=5)
    parser.add_argument("--window", type=int, default=256)
    parser.add_argument("--seconds", type=float, default=8.0)
    parser.add_argument("--top", type=int, default=25)
    args = parser.parse_args()
    spec = next((s for s in all_servers() if s.name == args.server), None)
    if spec is None:
        parser.error("server names: " + ", ".join(s.name for s in all_servers()))
    if (os.cpu_count() or 1) >= 2:
        os.sched_setaffinity(0, {1})
    server = RunningServer(spec, pin=True)
    out = Path(tempfile.mkdtemp()) / "stacks.txt"
    gen = LoadGen(server.port, spec.adapter, args.clients, args.senders)
    try:
        gen.connect()
        gen.barrier()
        spy = subprocess.Popen(
            [
                "py-spy",
                "record",
                "--pid",
                str(server.pid),
                "--format",
                "raw",
                "--rate",
                "500",
                "--duration",
                str(int(args.seconds)),
                "--output",
                str(out),
                "--nonblocking",
            ],
            stdout=subprocess.DEVNULL,
            stderr=subprocess.DEVNULL,
        )
        waiter = threading.Thread(target=spy.wait)
        waiter.start()
        m = gen.run(warmup=0.5, duration=args.seconds + 0.5, window=args.window)
        waiter.join()
        print(f"{spec.name}: {m.deliveries / m.elapsed:,.0f} deliveries/s while sampled")
    finally:
        gen.close()
        server.stop()
    selfs, incl, total = spy_counts(out)
    print(f"{total} samples\n\nself time:")
    for f, n in selfs.most_common(args.top):
        print(f"  {n / total:6.1%}  {f}")
    print("\ninclusive:")
    for f, n in incl.most_common(args.top):
        print(f"  {n / total:6.1%}  {f}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
