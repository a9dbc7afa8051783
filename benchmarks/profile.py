"""Where a server's time goes under the closed-loop load: py-spy samples, summed per function.

    python benchmarks/profile.py anychat-asyncio-jsonl-memory --clients 50 --seconds 8
    python benchmarks/profile.py anychat-asyncio-irc-sqlite --gil   # GIL holders, per thread

Prints the functions with the most samples on top of the stack (self time) and in the stack
(inclusive time). Needs py-spy (``pip install py-spy``; root or ptrace permission).
"""

from __future__ import annotations

import argparse
import collections
import os
import subprocess
import sys
import tempfile
import threading
from pathlib import Path

from loadgen import LoadGen
from servers import RunningServer, all_servers
from spystacks import spy_counts


def print_threads(path: Path, top: int) -> None:
    """With ``--gil --threads``: each thread's share of the GIL and its own top self frames,
    so the store thread's work (which holds up the event loop whenever it holds the GIL) shows
    apart from the loop's."""
    threads: dict[str, collections.Counter[str]] = collections.defaultdict(collections.Counter)
    total = 0
    for line in path.read_text().splitlines():
        stack, _, count = line.rpartition(" ")
        frames = stack.split(";")
        n = int(count)
        total += n
        threads[frames[0]][frames[-1].split(" (")[0]] += n
    for name, frames in sorted(threads.items(), key=lambda t: -t[1].total()):
        print(f"{name}: {frames.total() / total:.1%} of the GIL-held samples")
        for f, n in frames.most_common(top // 3):
            print(f"  {n / total:6.1%}  {f}")
    print()


def thread_cpu(pid: int) -> dict[str, float]:
    """CPU seconds (user + system) of each of a process's threads: the main thread (the event
    loop) and the others by thread id (Python does not name its threads for the kernel)."""
    tick = os.sysconf("SC_CLK_TCK")
    seconds: dict[str, float] = collections.Counter()
    for task in Path(f"/proc/{pid}/task").iterdir():
        try:
            stat = (task / "stat").read_text()
        except OSError:
            continue
        name = "main" if task.name == str(pid) else f"tid {task.name}"
        fields = stat[stat.rindex(")") + 2 :].split()
        seconds[name] += (int(fields[11]) + int(fields[12])) / tick
    return seconds


def main() -> int:
    parser = argparse.ArgumentParser()
    parser.add_argument("server")
    parser.add_argument("--clients", type=int, default=50)
    parser.add_argument("--senders", type=int, default=5)
    parser.add_argument("--window", type=int, default=256)
    parser.add_argument("--seconds", type=float, default=8.0)
    parser.add_argument("--top", type=int, default=25)
    parser.add_argument(
        "--raw", type=Path, help="keep py-spy's raw stacks (with line numbers) here"
    )
    parser.add_argument(
        "--gil",
        action="store_true",
        help="sample only threads holding the GIL (where the store's thread competes)",
    )
    args = parser.parse_args()
    spec = next((s for s in all_servers() if s.name == args.server), None)
    if spec is None:
        parser.error("server names: " + ", ".join(s.name for s in all_servers()))
    if (os.cpu_count() or 1) >= 2:
        os.sched_setaffinity(0, {1})
    server = RunningServer(spec, pin=True)
    out = args.raw or Path(tempfile.mkdtemp()) / "stacks.txt"
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
                *(["--gil", "--threads"] if args.gil else []),
            ],
            stdout=subprocess.DEVNULL,
            stderr=subprocess.DEVNULL,
        )
        waiter = threading.Thread(target=spy.wait)
        waiter.start()
        cpu: list[dict[str, float]] = []
        commits: list[float] = []

        def on_window(_: bool) -> None:
            cpu.append(thread_cpu(server.pid))
            if spec.name.startswith("anychat") and "sqlite" in spec.name:
                commits.append(server.metric("anychat_store_commit_seconds_count") or 0.0)

        m = gen.run(
            warmup=0.5, duration=args.seconds + 0.5, window=args.window, on_window=on_window
        )
        before, after = cpu
        waiter.join()
        print(f"{spec.name}: {m.deliveries / m.elapsed:,.0f} deliveries/s while sampled")
        if commits:
            said = m.deliveries / (args.clients - 1)
            print(f"  {said / (commits[1] - commits[0]):.1f} messages per store commit")
        for name in sorted(after, key=lambda n: before.get(n, 0.0) - after[n]):
            used = after[name] - before.get(name, 0.0)
            print(f"  thread {name}: {used / m.elapsed:.1%} of a core")
    finally:
        gen.close()
        server.stop()
    if args.gil:
        print_threads(out, args.top)
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
