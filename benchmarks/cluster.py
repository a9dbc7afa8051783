"""One room over several nodes vs one node: CPU per message and delivery, latency at a fixed rate.

Starts its own ``redis-server`` (a free port, no persistence) and the anychat nodes as
subprocesses (``anychat serve --cluster-url ...``, memory stores, flood control off), then
drives one room of ``--clients`` JSON-lines clients spread evenly over the nodes:

- the ``--senders`` send from a process of their own (rate-limited or windowed), so sending and
  receiving do not compete for one event loop; the receivers are in this process, and only
  ``--measured`` of them per node look inside what they receive (the others count messages
  with one ``bytes.count`` per read, no JSON decode);
- *closed loop*: each sender keeps ``--window`` messages unacked for ``--seconds``:
  deliveries/s, and server CPU (nodes + Redis, from /proc) per delivery;
- *fixed rate*: ``--rate`` messages/s in total, each text carrying its send time
  (``CLOCK_MONOTONIC``, shared by both processes); each measured receiver takes the delay:
  p50/p99 end to end, and the same for receivers on another node than the sender's; server CPU
  per message at that rate.

Every phase prints the generator's CPU (both processes) beside the server's, so a saturated
generator shows. Rows: one node without a bus (the baseline), one node with the bus, and
``--nodes`` nodes; ``--compare-src DIR`` adds the bus rows once more with the nodes importing
anychat from ``DIR`` (another checkout's ``src``), measured in the same run.
On a 2-core machine every node, Redis and the generator share the cores: the figures measure
the bus's overhead, not scaling (docs/scaling.md has the arithmetic for that).

    python benchmarks/cluster.py --nodes 2 --clients 50 --rate 1000
"""

from __future__ import annotations

import argparse
import asyncio
import json
import os
import re
import resource
import socket
import subprocess
import sys
import tempfile
import time
from collections.abc import Iterator
from contextlib import ExitStack, contextmanager
from pathlib import Path
from typing import Any

sys.path.insert(0, str(Path(__file__).resolve().parent))

from spystacks import summarise

LISTENING = re.compile(rb"listening on 127\.0\.0\.1:(\d+)")
TICKS = os.sysconf("SC_CLK_TCK")
MESSAGE = b'"type":"message"'
STAMP = re.compile(rb'"text":"t(\d+):(\d+)"')
SRC = str(Path(__file__).resolve().parent.parent / "src")


def _free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


def _cpu_seconds(pid: int) -> float:
    with open(f"/proc/{pid}/stat") as f:
        fields = f.read().rpartition(")")[2].split()
    return (int(fields[11]) + int(fields[12])) / TICKS  # utime + stime


def _own_cpu() -> float:
    usage = resource.getrusage(resource.RUSAGE_SELF)
    return usage.ru_utime + usage.ru_stime


@contextmanager
def _redis(directory: str) -> Iterator[tuple[str, subprocess.Popen[bytes]]]:
    port = _free_port()
    proc = subprocess.Popen(
        ["redis-server", "--port", str(port), "--bind", "127.0.0.1", "--save", "",
         "--appendonly", "no", "--dir", directory],
        stdout=subprocess.DEVNULL,
    )  # fmt: skip
    try:
        deadline = time.monotonic() + 10
        while True:
            try:
                socket.create_connection(("127.0.0.1", port), timeout=1).close()
                break
            except OSError:
                if time.monotonic() > deadline:
                    raise
                time.sleep(0.02)  # polling a starting process, bounded by the deadline
        yield f"redis://127.0.0.1:{port}/0", proc
    finally:
        proc.terminate()
        proc.wait()


@contextmanager
def _node(
    cluster_url: str | None, uvloop: bool, src: str
) -> Iterator[tuple[int, subprocess.Popen[bytes]]]:
    # Flood control off: at its default (50 commands/s per client) it, not the bus, would
    # set the pace of a few fast senders (it did in earlier runs of this benchmark).
    args = [sys.executable, "-m", "anychat", "serve", "--port", "0", "--database-url",
            "memory://", "--history-length", "0", "--flood-rate", "0"]  # fmt: skip
    if cluster_url:
        args += ["--cluster-url", cluster_url]
    if uvloop:
        args.append("--uvloop")
    env = {**os.environ, "PYTHONPATH": src}
    proc = subprocess.Popen(args, stdout=subprocess.PIPE, env=env)
    try:
        assert proc.stdout is not None
        match = LISTENING.search(proc.stdout.readline())
        assert match, "the node did not start"
        yield int(match.group(1)), proc
    finally:
        proc.terminate()
        proc.wait()


async def _hello(port: int, nick: str) -> tuple[asyncio.StreamReader, asyncio.StreamWriter]:
    reader, writer = await asyncio.open_connection("127.0.0.1", port)
    writer.write(json.dumps({"type": "hello", "nick": nick}).encode() + b"\n")
    while b'"type":"members"' not in await reader.readline():
        pass
    return reader, writer


def _say(text: str) -> bytes:
    return b'{"type":"say","to":"#general","text":"' + text.encode() + b'"}\n'


# ---------------------------------------------------------------------------- sender process


async def _sender_main(ports: list[int], senders: int, window: int, text_bytes: int) -> None:
    """The senders, driven by commands on stdin; each answers one JSON line on stdout."""
    loop = asyncio.get_running_loop()
    stdin = asyncio.StreamReader()
    await loop.connect_read_pipe(lambda: asyncio.StreamReaderProtocol(stdin), sys.stdin)
    conns = [await _hello(ports[i % len(ports)], f"s{i}") for i in range(senders)]
    counts = {"deliveries": 0, "sent": 0}
    credit = [asyncio.Semaphore(window) for _ in conns]
    windowed = {"on": False}

    async def drain(index: int, reader: asyncio.StreamReader) -> None:
        while chunk := await reader.read(262144):
            counts["deliveries"] += chunk.count(MESSAGE)
            if windowed["on"]:
                for _ in range(chunk.count(b'"type":"ack"')):
                    credit[index].release()

    drains = [asyncio.create_task(drain(i, r)) for i, (r, _) in enumerate(conns)]
    filler = "x" * text_bytes

    async def closed_loop(index: int, until: float) -> None:
        writer = conns[index][1]
        line = _say(filler)
        while time.monotonic() < until:
            await credit[index].acquire()
            writer.write(line)
            counts["sent"] += 1
            if writer.transport.get_write_buffer_size() > 65536:
                await writer.drain()

    async def fixed_rate(rate: float, until: float) -> None:
        """One schedule for all senders, round-robin: what is due is sent at each wake-up."""
        interval = 1 / rate
        next_at = time.monotonic()
        i = 0
        while next_at < until:
            now = time.monotonic()
            while next_at <= now:
                index = i % len(conns)
                node = index % len(ports)
                conns[index][1].write(_say(f"t{time.monotonic_ns()}:{node}"))
                counts["sent"] += 1
                i += 1
                next_at += interval
            await asyncio.sleep(max(0.0, next_at - time.monotonic()))

    print(json.dumps({"ready": True}), flush=True)
    while line := await stdin.readline():
        cmd = json.loads(line)
        counts["deliveries"] = counts["sent"] = 0
        cpu0, began = _own_cpu(), time.monotonic()
        sending = 0.0
        if cmd["do"] == "warm":
            for _, writer in conns:
                writer.write(_say("warm-up"))
        elif cmd["do"] == "closed":
            windowed["on"] = True
            until = time.monotonic() + cmd["seconds"]
            await asyncio.gather(*(closed_loop(i, until) for i in range(len(conns))))
            sending = time.monotonic() - began
            await asyncio.sleep(0.5)  # the last windows drain
            windowed["on"] = False
            credit[:] = [asyncio.Semaphore(window) for _ in conns]
        elif cmd["do"] == "rate":
            await fixed_rate(cmd["rate"], time.monotonic() + cmd["seconds"])
            sending = time.monotonic() - began
            await asyncio.sleep(0.5)  # the last messages arrive
        print(json.dumps({**counts, "cpu": _own_cpu() - cpu0, "sending": sending}), flush=True)
    for task in drains:
        task.cancel()


# ---------------------------------------------------------------------------- receivers


class Receivers:
    """Every receiving client of the room, in this process: counts, and a few measure."""

    def __init__(self) -> None:
        self.deliveries = 0
        self.measuring = False
        self.latencies: list[float] = []
        self.cross_node: list[float] = []

    async def run(self, reader: asyncio.StreamReader, node: int, measured: bool) -> None:
        rest = b""
        while chunk := await reader.read(262144):
            self.deliveries += chunk.count(MESSAGE)  # (a marker split by reads: rare, ignored)
            if not measured:
                continue
            block = rest + chunk
            cut = block.rfind(b"\n") + 1
            block, rest = block[:cut], block[cut:]
            if self.measuring and block:
                now = time.monotonic_ns()
                for sent_ns, sender_node in STAMP.findall(block):
                    delay = (now - int(sent_ns)) / 1e6
                    self.latencies.append(delay)
                    if int(sender_node) != node:
                        self.cross_node.append(delay)


async def _row(
    ports: list[int], pids: list[int], args: argparse.Namespace, src: str
) -> dict[str, Any]:
    receivers = Receivers()
    tasks = []
    writers = []
    per_node: dict[int, int] = {}
    for i in range(args.clients - args.senders):
        node = i % len(ports)
        reader, writer = await _hello(ports[node], f"r{i}")
        writers.append(writer)
        per_node[node] = per_node.get(node, 0) + 1
        measured = per_node[node] <= args.measured
        tasks.append(asyncio.create_task(receivers.run(reader, node, measured)))
    child = await asyncio.create_subprocess_exec(
        sys.executable, __file__, "--sender-process",
        "--ports", ",".join(map(str, ports)), "--senders", str(args.senders),
        "--window", str(args.window), "--text-bytes", str(args.text_bytes),
        stdin=subprocess.PIPE, stdout=subprocess.PIPE, env={**os.environ, "PYTHONPATH": src},
    )  # fmt: skip
    assert child.stdin is not None and child.stdout is not None

    async def ask(**cmd: Any) -> dict[str, Any]:
        assert child.stdin is not None and child.stdout is not None
        child.stdin.write(json.dumps(cmd).encode() + b"\n")
        return dict(json.loads(await child.stdout.readline()))

    assert json.loads(await child.stdout.readline())["ready"]
    expected = args.senders * (args.clients - args.senders)
    deadline = time.monotonic() + 30
    while True:  # warm-up: every sender's message reaches every receiver (joins have spread)
        receivers.deliveries = 0
        await ask(do="warm")
        await asyncio.sleep(0.5)
        if receivers.deliveries >= expected:
            break
        if time.monotonic() > deadline:
            raise SystemExit(f"warm-up: {receivers.deliveries} of {expected} deliveries")

    def phase_start() -> tuple[float, float, float]:
        return time.monotonic(), sum(_cpu_seconds(p) for p in pids), _own_cpu()

    def phase_end(
        start: tuple[float, float, float], sent: dict[str, Any]
    ) -> tuple[float, float, float]:
        elapsed = time.monotonic() - start[0]
        server = sum(_cpu_seconds(p) for p in pids) - start[1]
        generator = _own_cpu() - start[2] + sent["cpu"]
        return elapsed, server, generator

    result: dict[str, Any] = {}
    receivers.deliveries = 0
    start = phase_start()
    sent = await ask(do="closed", seconds=args.seconds)
    elapsed, server, generator = phase_end(start, sent)
    delivered = receivers.deliveries + sent["deliveries"]
    result["closed: msg/s"] = sent["sent"] / sent["sending"]
    result["deliveries/s"] = delivered / elapsed
    result["server µs/delivery"] = server / max(delivered, 1) * 1e6
    result["server µs/msg"] = server / max(sent["sent"], 1) * 1e6
    result["server CPU %"] = server / elapsed * 100
    result["generator CPU %"] = generator / elapsed * 100

    receivers.deliveries = 0
    receivers.measuring = True
    spies = _spy_on(pids[: len(ports)], args) if args.py_spy else []
    start = phase_start()
    sent = await ask(do="rate", rate=args.rate, seconds=args.seconds)
    elapsed, server, generator = phase_end(start, sent)
    for spy, stacks in spies:
        spy.wait()
        print(f"node {spy.args[3]} at the fixed rate:")
        summarise(stacks, top=25)
    receivers.measuring = False
    result[f"rate {args.rate:g}: msg/s"] = sent["sent"] / sent["sending"]
    result["server µs/msg "] = server / max(sent["sent"], 1) * 1e6
    result["server CPU % "] = server / elapsed * 100
    result["generator CPU % "] = generator / elapsed * 100
    for name, values in (("all", receivers.latencies), ("cross-node", receivers.cross_node)):
        values.sort()
        if values:
            result[f"p50 ms {name}"] = values[len(values) // 2]
            result[f"p99 ms {name}"] = values[int(len(values) * 0.99)]
    child.stdin.close()
    await child.wait()
    for writer in writers:
        writer.close()
    for task in tasks:
        task.cancel()
    return result


def _spy_on(
    pids: list[int], args: argparse.Namespace
) -> list[tuple[subprocess.Popen[bytes], Path]]:
    """py-spy on each node for the fixed-rate phase (it pauses the nodes to sample them: a
    profile, not a latency figure)."""
    spies = []
    for pid in pids:
        stacks = Path(tempfile.mkdtemp()) / f"node-{pid}.txt"
        cmd = ["py-spy", "record", "--pid", str(pid), "--format", "raw", "--rate", "250"]
        cmd += ["--duration", str(int(args.seconds)), "--output", str(stacks)]
        spies.append(
            (subprocess.Popen(cmd, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL), stacks)
        )
    return spies


def _uptime() -> str:
    return subprocess.run(["uptime"], capture_output=True, text=True).stdout.strip()


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--nodes", type=int, default=2)
    parser.add_argument("--clients", type=int, default=50)
    parser.add_argument("--senders", type=int, default=5)
    parser.add_argument("--measured", type=int, default=3, help="latency receivers per node")
    parser.add_argument("--window", type=int, default=64)
    parser.add_argument("--rate", type=float, default=1000)
    parser.add_argument("--seconds", type=float, default=5)
    parser.add_argument("--text-bytes", type=int, default=64)
    parser.add_argument("--uvloop", action="store_true", help="the nodes run on uvloop")
    parser.add_argument("--compare-src", help="also run the bus rows with anychat from here")
    parser.add_argument("--only-bus", action="store_true", help="skip the no-bus row")
    parser.add_argument(
        "--py-spy", action="store_true", help="profile the nodes at the fixed rate (slows them)"
    )
    parser.add_argument("--sender-process", action="store_true", help=argparse.SUPPRESS)
    parser.add_argument("--ports", help=argparse.SUPPRESS)
    args = parser.parse_args()
    if args.sender_process:
        ports = [int(p) for p in args.ports.split(",")]
        asyncio.run(_sender_main(ports, args.senders, args.window, args.text_bytes))
        return
    print(f"before: {_uptime()}", flush=True)
    plan: list[tuple[str, int, bool, str]] = []
    if not args.only_bus:
        plan.append(("1 node, no bus", 1, False, SRC))
    for label, src in (("", SRC), (" [compare]", args.compare_src)):
        if src:
            plan.append((f"1 node + Redis bus{label}", 1, True, src))
            plan.append((f"{args.nodes} nodes + Redis bus{label}", args.nodes, True, src))
    rows = []
    with tempfile.TemporaryDirectory() as scratch, _redis(scratch) as (url, redis_proc):
        for label, count, bus, src in plan:
            with ExitStack() as stack:
                started = [
                    stack.enter_context(_node(url if bus else None, args.uvloop, src))
                    for _ in range(count)
                ]
                ports = [port for port, _ in started]
                pids = [proc.pid for _, proc in started]
                if bus:
                    pids.append(redis_proc.pid)
                print(f"running: {label}", file=sys.stderr, flush=True)
                rows.append((label, asyncio.run(_row(ports, pids, args, src))))
    print(f"after: {_uptime()}")
    print(
        f"one room of {args.clients} ({args.senders} senders in their own process), "
        f"window {args.window}; fixed rate {args.rate:g} msg/s for {args.seconds:g} s"
    )
    for label, row in rows:
        shown = ", ".join(f"{k.strip()} {v:.3g}" for k, v in row.items())
        print(f"{label}:\n    {shown}")


if __name__ == "__main__":
    main()
