"""One room over several nodes vs one node: deliveries/s, CPU per delivery, latency.

Starts its own ``redis-server`` (a free port, no persistence) and the anychat nodes as
subprocesses (``anychat serve --cluster-url ...``, memory stores), then drives one room of
``--clients`` JSON-lines clients spread evenly over the nodes from this process:

- *closed loop*: ``--senders`` clients each keep ``--window`` messages unacked, for
  ``--seconds``: deliveries/s, and server CPU (nodes + Redis, from /proc) per delivery;
- *fixed rate*: ``--rate`` messages/s in total; each text carries its send time, each
  receiver measures the delay: p50/p99 end to end, and the same split for cross-node receivers.

Rows: one node without a bus (the baseline), one node with the bus, and ``--nodes`` nodes.
On a 2-core machine every node, Redis and this load generator share the cores: the figures
measure the bus's overhead, not scaling (docs/scaling.md has the arithmetic for that).

    python benchmarks/cluster.py --nodes 2 --clients 50
"""

from __future__ import annotations

import argparse
import json
import os
import re
import socket
import subprocess
import sys
import tempfile
import time
from collections.abc import Iterator
from contextlib import ExitStack, contextmanager
from typing import Any

import anyio
from anyio.abc import SocketStream

LISTENING = re.compile(rb"listening on 127\.0\.0\.1:(\d+)")
TICKS = os.sysconf("SC_CLK_TCK")


def _free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


def _cpu_seconds(pid: int) -> float:
    with open(f"/proc/{pid}/stat") as f:
        fields = f.read().rpartition(")")[2].split()
    return (int(fields[11]) + int(fields[12])) / TICKS  # utime + stime


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
                time.sleep(0.02)
        yield f"redis://127.0.0.1:{port}/0", proc
    finally:
        proc.terminate()
        proc.wait()


@contextmanager
def _node(cluster_url: str | None, uvloop: bool) -> Iterator[tuple[int, subprocess.Popen[bytes]]]:
    args = [sys.executable, "-m", "anychat", "serve", "--port", "0", "--database-url",
            "memory://", "--history-length", "0"]  # fmt: skip
    if cluster_url:
        args += ["--cluster-url", cluster_url]
    if uvloop:
        args.append("--uvloop")
    proc = subprocess.Popen(args, stdout=subprocess.PIPE)
    try:
        assert proc.stdout is not None
        match = LISTENING.search(proc.stdout.readline())
        assert match, "the node did not start"
        yield int(match.group(1)), proc
    finally:
        proc.terminate()
        proc.wait()


class Peer:
    def __init__(self, stream: SocketStream, nick: str, node: int) -> None:
        self.stream, self.nick, self.node = stream, nick, node
        self.buffer = b""

    async def events(self) -> Any:
        while True:
            while b"\n" not in self.buffer:
                self.buffer += await self.stream.receive()
            line, _, self.buffer = self.buffer.partition(b"\n")
            yield json.loads(line)

    async def send(self, obj: dict[str, Any]) -> None:
        await self.stream.send(json.dumps(obj).encode() + b"\n")


async def _connect(ports: list[int], clients: int) -> list[Peer]:
    peers = []
    for i in range(clients):
        node = i % len(ports)
        stream = await anyio.connect_tcp("127.0.0.1", ports[node])
        peer = Peer(stream, f"u{i}", node)
        await peer.send({"type": "hello", "nick": peer.nick})
        async for event in peer.events():
            if event["type"] == "members":
                break
        peers.append(peer)
    return peers


async def _run(ports: list[int], pids: list[int], args: argparse.Namespace) -> dict[str, Any]:
    peers = await _connect(ports, args.clients)
    senders = peers[: args.senders]
    counts = {"deliveries": 0}
    latencies: list[float] = []
    remote_latencies: list[float] = []
    measuring = {"on": False}

    async def receive(peer: Peer) -> None:
        async for event in peer.events():
            if event["type"] == "message":
                counts["deliveries"] += 1
                text = event["text"]
                if measuring["on"] and text.startswith("t"):
                    sent_ns, _, node = text[1:].partition(":")
                    delay = (time.perf_counter_ns() - int(sent_ns)) / 1e6
                    latencies.append(delay)
                    if int(node) != peer.node:
                        remote_latencies.append(delay)
            elif event["type"] == "ack" and peer in windows:
                windows[peer].release()

    windows = {p: anyio.Semaphore(args.window) for p in senders}

    async def closed_loop(peer: Peer, until: float) -> None:
        while time.monotonic() < until:
            await windows[peer].acquire()
            await peer.send({"type": "say", "to": "#general", "text": "x" * args.text_bytes})

    async def fixed_rate(peer: Peer, index: int, until: float) -> None:
        interval = len(senders) / args.rate
        next_at = time.monotonic() + index * interval / len(senders)
        while next_at < until:
            await anyio.sleep(max(0.0, next_at - time.monotonic()))
            text = f"t{time.perf_counter_ns()}:{peer.node}"
            await peer.send({"type": "say", "to": "#general", "text": text})
            next_at += interval

    result: dict[str, Any] = {}
    async with anyio.create_task_group() as tg:
        for peer in peers:
            tg.start_soon(receive, peer)
        # Warm-up: every sender's message reaches every member (all joins have spread).
        with anyio.fail_after(30):
            while True:
                counts["deliveries"] = 0
                for peer in senders:
                    await peer.send({"type": "say", "to": "#general", "text": "warm-up"})
                await anyio.sleep(0.5)
                if counts["deliveries"] == len(senders) * (len(peers) - 1):
                    break
        # Closed loop.
        cpu0 = sum(_cpu_seconds(p) for p in pids)
        counts["deliveries"] = 0
        start = time.monotonic()
        async with anyio.create_task_group() as load:
            for peer in senders:
                load.start_soon(closed_loop, peer, start + args.seconds)
        await anyio.sleep(0.5)  # the last windows drain
        elapsed = time.monotonic() - start
        cpu = sum(_cpu_seconds(p) for p in pids) - cpu0
        delivered = counts["deliveries"]
        result["deliveries_per_s"] = delivered / elapsed
        result["cpu_us_per_delivery"] = cpu / max(delivered, 1) * 1e6
        # Fixed rate.
        measuring["on"] = True
        start = time.monotonic()
        async with anyio.create_task_group() as load:
            for index, peer in enumerate(senders):
                load.start_soon(fixed_rate, peer, index, start + args.seconds)
        await anyio.sleep(0.5)
        measuring["on"] = False
        for name, values in (("all", latencies), ("cross_node", remote_latencies)):
            values.sort()
            if values:
                result[f"p50_ms_{name}"] = values[len(values) // 2]
                result[f"p99_ms_{name}"] = values[int(len(values) * 0.99)]
        tg.cancel_scope.cancel()
    for peer in peers:
        await peer.stream.aclose()
    return result


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--nodes", type=int, default=2)
    parser.add_argument("--clients", type=int, default=50)
    parser.add_argument("--senders", type=int, default=5)
    parser.add_argument("--window", type=int, default=64)
    parser.add_argument("--rate", type=float, default=1000)
    parser.add_argument("--seconds", type=float, default=5)
    parser.add_argument("--text-bytes", type=int, default=64)
    parser.add_argument("--uvloop", action="store_true")
    args = parser.parse_args()
    rows = []
    with tempfile.TemporaryDirectory() as scratch, _redis(scratch) as (url, redis_proc):
        for label, count, cluster in (
            ("1 node, no bus", 1, None),
            ("1 node + Redis bus", 1, url),
            (f"{args.nodes} nodes + Redis bus", args.nodes, url),
        ):
            with ExitStack() as stack:
                started = [stack.enter_context(_node(cluster, args.uvloop)) for _ in range(count)]
                ports = [port for port, _ in started]
                pids = [proc.pid for _, proc in started]
                if cluster:
                    pids.append(redis_proc.pid)
                print(f"running: {label}", file=sys.stderr)
                rows.append((label, anyio.run(_run, ports, pids, args)))
    print(f"one room of {args.clients}, {args.senders} senders; fixed rate {args.rate:g} msg/s")
    for label, row in rows:
        shown = ", ".join(f"{k} {v:.3g}" for k, v in row.items())
        print(f"{label:>24}: {shown}")


if __name__ == "__main__":
    main()
