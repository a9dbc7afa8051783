"""A join storm: N plain-text guests connect at once and land in the default room.

Prints how long until every one of them is in (answered ``/ping``), the server's CPU time for
it, and the bytes the server sent all of them, so the cost of announcing each join to every
member is visible (it grows with the square of N when every join is announced), and the cost
of the member list each newcomer gets. Meanwhile two real clients (JSON lines, in a process of
their own) keep chatting in the same room, each saying a line every ``--chat-interval``
seconds, and the delivery latency of their lines during the storm is printed (p50, p99, max).
The per-address connection limits are lifted (``--max-connections-per-address 0``; loopback
is exempt from them anyway). Figures only; nothing is asserted.

    python benchmarks/join_storm.py --connections 2000 [--backend asyncio] [--py-spy]
"""

from __future__ import annotations

import argparse
import asyncio
import json
import multiprocessing
import os
import resource
import selectors
import signal
import socket
import subprocess
import sys
import tempfile
import time
from collections.abc import Callable
from multiprocessing.connection import Connection
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent))

from servers import RAW, RunningServer, ServerSpec
from spystacks import summarise


async def _guest(
    sock: socket.socket, port: int, counts: list[int], ready: asyncio.Event, started: list[int]
) -> None:
    """One guest: connected (``sock`` is connecting already), ``/ping``, in once it has the
    pong. A connection the kernel resets before that is opened again, as a client would (with
    the accept queue full, a SYN cookie can fail: counted in ``counts[1]``)."""
    while True:
        try:
            await asyncio.get_running_loop().sock_connect(sock, ("127.0.0.1", port))
            reader, writer = await asyncio.open_connection(sock=sock)
            writer.write(b"/ping\n")
            seen = b""
            while b"pong" not in seen:
                chunk = await reader.read(65536)
                if not chunk:
                    raise ConnectionResetError("closed before pong")
                counts[0] += len(chunk)
                seen = seen[-8:] + chunk
            break
        except (ConnectionResetError, ConnectionRefusedError, BrokenPipeError):
            sock.close()
            counts[1] += 1
            sock = socket.socket()
            sock.setblocking(False)
            sock.connect_ex(("127.0.0.1", port))
    try:
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


async def storm(
    port: int,
    connections: int,
    give_up: float,
    on_served: Callable[[], None],
    linger: float = 0.0,
) -> tuple[float, int, int, int]:
    """(seconds until all were served or ``give_up`` passed, guests served, bytes received,
    connections reset and opened again); ``on_served`` runs ``linger`` seconds after that
    moment (the guests stay, quiet: with the server's ``--park-after`` below ``linger``,
    the chat is timed while they park)."""
    counts = [0, 0]
    started = [0]
    ready = asyncio.Event()
    begin = time.perf_counter()
    socks = []
    for _ in range(connections):  # every SYN sent within a moment, before any task starts
        sock = socket.socket()
        sock.setblocking(False)
        sock.connect_ex(("127.0.0.1", port))
        socks.append(sock)
    print(f"  {time.perf_counter() - begin:5.1f} s: {connections} connecting", flush=True)
    tasks = [asyncio.create_task(_guest(s, port, counts, ready, started)) for s in socks]
    report = begin + 5
    while started[0] < connections:
        done = [t for t in tasks if t.done() and t.exception() is not None]
        if done:
            raise SystemExit(f"a guest failed: {done[0].exception()!r}")
        now = time.perf_counter()
        if now >= report:
            print(f"  {now - begin:5.1f} s: {started[0]} served", flush=True)
            report += 5
        if now - begin > give_up:
            break
        await asyncio.sleep(0.05)
    elapsed = time.perf_counter() - begin
    served = started[0]
    if linger:
        print(f"  {elapsed:5.1f} s: all served; the guests stay {linger:.0f} s more", flush=True)
        await asyncio.sleep(linger)
    on_served()
    ready.set()  # drain what is still on its way, then close
    if served < connections:
        for task in tasks:
            task.cancel()
    await asyncio.gather(*tasks, return_exceptions=True)
    return elapsed, served, counts[0], counts[1]


def _chat(port: int, room: str, interval: float, pipe: Connection) -> None:
    """Two JSON-lines clients in ``room`` saying a line in turn every ``interval`` s until told
    to stop; sends back (when sent, latency) in seconds for each line delivered, and how many
    were said."""
    socks = [socket.create_connection(("127.0.0.1", port)) for _ in range(2)]
    buffers = [b"", b""]
    for n, sock in enumerate(socks):
        hello = {"type": "hello", "nick": f"chatter{n}", "autojoin": False}
        sock.sendall(json.dumps(hello).encode() + b"\n")
        sock.sendall(json.dumps({"type": "join", "room": room}).encode() + b"\n")
        while b'"members"' not in buffers[n]:
            buffers[n] += sock.recv(65536)
        buffers[n] = buffers[n].rpartition(b"\n")[2]
        sock.setblocking(False)
    selector = selectors.DefaultSelector()
    for n, sock in enumerate(socks):
        selector.register(sock, selectors.EVENT_READ, n)
    pipe.send("ready")
    latencies: list[tuple[float, float]] = []
    said = 0
    next_say = time.perf_counter()
    while not pipe.poll():
        now = time.perf_counter()
        if now >= next_say:
            line = {"type": "say", "to": room, "text": f"t {time.perf_counter_ns()}"}
            socks[said % 2].sendall(json.dumps(line).encode() + b"\n")
            said += 1
            next_say += interval
        for key, _ in selector.select(max(0.0, next_say - time.perf_counter())):
            n = key.data
            data = buffers[n] + socks[n].recv(1 << 20)
            *lines, buffers[n] = data.split(b"\n")
            arrived = time.perf_counter_ns()
            for raw in lines:
                if b'"message"' in raw:
                    text = json.loads(raw)["text"]
                    sent = int(text.split()[1])
                    latencies.append((sent / 1e9, (arrived - sent) / 1e9))
    pipe.send((latencies, said))
    for sock in socks:
        sock.close()


def _percentile(values: list[float], q: float) -> float:
    ordered = sorted(values)
    return ordered[min(len(ordered) - 1, int(q * len(ordered)))] if ordered else float("nan")


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--connections", type=int, default=2000)
    parser.add_argument("--backend", default="asyncio", choices=["asyncio", "trio"])
    parser.add_argument("--chatters", action=argparse.BooleanOptionalAction, default=True)
    parser.add_argument("--chat-interval", type=float, default=0.05, help="seconds between lines")
    parser.add_argument(
        "--chat-room",
        default="#chat",
        help="where the two chatters talk (#general: among the guests, every line to all)",
    )
    parser.add_argument("--give-up", type=float, default=120.0, help="seconds; then report")
    parser.add_argument("--py-spy", action="store_true", help="profile the server meanwhile")
    parser.add_argument(
        "--linger",
        type=float,
        default=0.0,
        help="seconds the quiet guests stay after the storm, the chat still timed (CPU too)",
    )
    parser.add_argument("--serve-args", default="", help="more `anychat serve` options")
    args = parser.parse_args()
    soft, hard = resource.getrlimit(resource.RLIMIT_NOFILE)
    want = min(hard, 2 * args.connections + 500)  # the guests' ends here, the server's there
    resource.setrlimit(resource.RLIMIT_NOFILE, (max(soft, want), hard))
    extra = ("--max-connections-per-address", "0", *args.serve_args.split())
    spec = ServerSpec(
        f"anychat-{args.backend}",
        RAW,
        "anychat",
        backend=args.backend,
        store="memory",
        extra_args=extra,
    )
    server = RunningServer(spec, pin=False, max_connections=args.connections + 100)
    chat: multiprocessing.process.BaseProcess | None = None
    spy: subprocess.Popen[bytes] | None = None
    stacks = Path(tempfile.mkdtemp()) / "stacks.txt"
    try:
        if args.chatters:
            ours, theirs = multiprocessing.get_context("fork").Pipe()
            chat = multiprocessing.get_context("fork").Process(
                target=_chat,
                args=(server.port, args.chat_room, args.chat_interval, theirs),
                daemon=True,
            )
            chat.start()
            ours.recv()  # both chatters are in the room
        if args.py_spy:
            cmd = ["py-spy", "record", "--pid", str(server.pid), "--format", "raw"]
            cmd += ["--rate", "200", "--nonblocking", "--output", str(stacks)]
            spy = subprocess.Popen(cmd, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
            time.sleep(1)  # let it attach
        load = os.getloadavg()
        before = server.cpu_seconds()
        gen_before = time.process_time()
        marks: list[float] = []

        def served() -> None:  # the storm is over: stop the chat and the clocks
            marks.extend((server.cpu_seconds(), time.process_time()))
            if chat is not None:
                ours.send("stop")
            if spy is not None:
                spy.send_signal(signal.SIGINT)

        elapsed, count, received, resets = asyncio.run(
            storm(server.port, args.connections, args.give_up, served, args.linger)
        )
        cpu = marks[0] - before
        gen_cpu = marks[1] - gen_before
        chat_line = ""
        if chat is not None:
            timed, said = ours.recv()
            latencies = [latency for _, latency in timed]
            if timed:  # the worst line of each second: a steady lag or a few stalls?
                first = timed[0][0]
                worst: dict[int, float] = {}
                for sent, latency in timed:
                    second = int(sent - first)
                    worst[second] = max(worst.get(second, 0.0), latency)
                print(
                    "  worst chat line per second (ms):",
                    " ".join(f"{worst[s] * 1e3:.0f}" for s in sorted(worst)),
                )
            chat.join(5)
            chat_line = (
                f"; the two chatters in {args.chat_room}: {len(latencies)} of {said} lines delivered, "
                f"p50 {_percentile(latencies, 0.5) * 1e3:.1f} ms, "
                f"p99 {_percentile(latencies, 0.99) * 1e3:.1f} ms, "
                f"max {max(latencies, default=float('nan')) * 1e3:.1f} ms"
            )
        if spy is not None:
            spy.wait(30)
        print(
            f"{args.backend}: {count} of {args.connections} text guests in after "
            f"{elapsed:.1f} s ({resets} reset by the kernel and opened again); server CPU {cpu:.1f} s; generator CPU "
            f"{gen_cpu:.1f} s; {received / 1e6:.1f} MB sent to them "
            f"({received / max(count, 1) / 1e3:.1f} kB each); peak RSS "
            f"{server.memory_kib() / 1024:.0f} MiB{chat_line}; load average before "
            f"{load[0]:.2f} {load[1]:.2f} {load[2]:.2f}"
        )
        if spy is not None and stacks.exists():
            summarise(stacks)
    except SystemExit:
        print(f"server log:\n{server.log_tail()}")
        raise
    finally:
        if chat is not None and chat.is_alive():
            chat.kill()
        server.stop()


if __name__ == "__main__":
    main()
