"""TLS handshakes in a burst while a room chats: does the handshake work stall everyone else?

    python benchmarks/tls_handshakes.py                    # ECDSA and RSA certificates, asyncio
    python benchmarks/tls_handshakes.py --backend trio --handshakes 500 --key rsa

The server runs as a subprocess (``anychat serve`` with a trustme certificate, pinned to core 0
when ``taskset`` exists). This process keeps a room of plaintext JSON clients chatting at a fixed
rate and measures each message's latency (send to arrival at every member). After a quiet
window, a second process opens N TLS connections at once (each a full handshake, then closes);
the room keeps chatting through the burst and for a while after. Printed per certificate type:
the room's latency percentiles before, during and after the burst; handshakes per second over
the burst; and the server's CPU time per handshake (its CPU over the burst minus what chatting
alone costs per second).

The machine may be shared: the figures say how the three windows compare within one run more
than what the hardware can do. Run it a few times and look at the spread.
"""

from __future__ import annotations

import argparse
import os
import shutil
import subprocess
import sys
import tempfile
import time
from collections import Counter
from functools import partial
from pathlib import Path
from typing import Any

import anyio

CLOCK_TICKS = os.sysconf("SC_CLK_TCK")
SRC = str(Path(__file__).resolve().parent.parent / "src")


def cpu_seconds(pid: int) -> float:
    fields = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()
    return (int(fields[11]) + int(fields[12])) / CLOCK_TICKS


def percentile(values: list[float], q: float) -> float:
    if not values:
        return float("nan")
    ordered = sorted(values)
    return ordered[min(len(ordered) - 1, int(q * len(ordered)))]


def free_port() -> int:
    import socket

    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


def start_server(
    cert: Path, key: Path, backend: str, tls_port: int
) -> tuple[subprocess.Popen[str], int]:
    command = [sys.executable, "-m", "anychat", "serve", "--port", "0", "--backend", backend]
    command += ["--tls-port", str(tls_port)]
    command += ["--database-url", "memory://", "--flood-rate", "0", "--log-level", "warning"]
    command += ["--tls-cert", str(cert), "--tls-key", str(key), "--history-length", "0"]
    if shutil.which("taskset"):
        command = ["taskset", "-c", "0", *command]
    env = {**os.environ, "PYTHONPATH": SRC}
    server = subprocess.Popen(command, stdout=subprocess.PIPE, text=True, env=env)
    assert server.stdout is not None
    for line in server.stdout:
        if " listening on " in line:
            return server, int(line.split(" listening on ", 1)[1].split()[0].rsplit(":", 1)[1])
    raise SystemExit("the server did not start")


# ------------------------------------------------------------------ one handshake's computing


def handshake_cpu_ms(cert: Path, key: Path, ca_file: Path, count: int = 200) -> tuple[float, float]:
    """Mean and largest thread CPU time of the server's ``do_handshake`` calls, in memory.

    CPU time of this thread alone, so other processes on a shared machine do not count: it is
    how long one handshake step would hold the event loop if it ran there.
    """
    import ssl

    sys.path.insert(0, SRC)
    from anychat.tlsconfig import server_context

    server_ctx = server_context(cert, key)
    client_ctx = ssl.create_default_context(cafile=str(ca_file))
    steps: list[float] = []
    per_handshake: list[float] = []
    for _ in range(count):
        c_in, c_out, s_in, s_out = (ssl.MemoryBIO() for _ in range(4))
        client = client_ctx.wrap_bio(c_in, c_out, server_hostname="localhost")
        server = server_ctx.wrap_bio(s_in, s_out, server_side=True)
        total = 0.0
        client_done = server_done = False
        while not (client_done and server_done):
            if not client_done:
                try:
                    client.do_handshake()
                    client_done = True
                except ssl.SSLWantReadError:
                    pass
            s_in.write(c_out.read())
            if not server_done:
                start = time.thread_time()
                try:
                    server.do_handshake()
                    server_done = True
                except ssl.SSLWantReadError:
                    pass
                spent = time.thread_time() - start
                steps.append(spent)
                total += spent
            c_in.write(s_out.read())
        per_handshake.append(total)
    return sum(per_handshake) / len(per_handshake) * 1000, max(steps) * 1000


# ------------------------------------------------------------------ the burst (its own process)


def burst(port: int, ca_file: str, count: int) -> None:
    import ssl

    context = ssl.create_default_context(cafile=ca_file)
    done, failed, start, end, why = handshake_burst(port, context, count)
    print(f"{done} {failed} {start:.6f} {end:.6f}", flush=True)
    for reason, times in why.most_common(3):
        print(f"  {times} failed: {reason}", file=sys.stderr)


def handshake_burst(
    port: int, context: Any, count: int
) -> tuple[int, int, float, float, Counter[str]]:
    """``count`` TLS connections opened at once, each a full handshake and then closed:
    (completed, failed, start, end, why they failed). ``run.py`` calls it too.

    Raw sockets, ``ssl.SSLObject`` and one selector, and every ClientHello is sent the moment
    its connection is open: a generator that sent them late (an event loop busy with the
    other connections' handshakes) would have the server's main port, which greets a client
    silent for ``sniff_seconds`` as a person on nc, see silent clients that are not there."""
    import selectors
    import socket
    import ssl

    sel = selectors.DefaultSelector()
    why: Counter[str] = Counter()
    done = failed = 0
    # CLOCK_MONOTONIC is system-wide on Linux: the room's process compares these with its own.
    start = time.monotonic()
    for _ in range(count):
        incoming, outgoing = ssl.MemoryBIO(), ssl.MemoryBIO()
        tls = context.wrap_bio(incoming, outgoing, server_hostname="localhost")
        try:
            tls.do_handshake()
        except ssl.SSLWantReadError:
            pass
        try:
            sock = socket.create_connection(("127.0.0.1", port), timeout=10)
            sock.sendall(outgoing.read())  # the ClientHello, at once
        except OSError as exc:
            failed += 1
            why[f"{type(exc).__name__}: {str(exc)[:80]}"] += 1
            continue
        sock.setblocking(False)
        sel.register(sock, selectors.EVENT_READ, (tls, incoming, outgoing))
    deadline = time.monotonic() + 30
    while sel.get_map() and time.monotonic() < deadline:
        for key, _ in sel.select(1.0):
            sock = key.fileobj
            assert isinstance(sock, socket.socket)
            tls, incoming, outgoing = key.data
            finished = False
            try:
                data = sock.recv(65536)
                if not data:
                    raise ConnectionError("the server closed the connection mid-handshake")
                incoming.write(data)
                try:
                    tls.do_handshake()
                    finished = True
                    tls.unwrap()  # our close_notify; the server's answer is not awaited
                except (ssl.SSLWantReadError, ssl.SSLZeroReturnError):
                    pass
                sock.setblocking(True)
                sock.sendall(outgoing.read())
                sock.setblocking(False)
            except BlockingIOError:
                continue
            except (OSError, ssl.SSLError) as exc:
                failed += 1
                why[f"{type(exc).__name__}: {str(exc)[:80]}"] += 1
                finished = False
                sel.unregister(sock)
                sock.close()
                continue
            if finished:
                done += 1
                sel.unregister(sock)
                sock.close()
    for key in list(sel.get_map().values()):
        failed += 1
        why["no answer within 30 s"] += 1
        key.fileobj.close()  # type: ignore[union-attr]
    sel.close()
    return done, failed, start, time.monotonic(), why


# ------------------------------------------------------------------ the room (this process)


async def measure(
    port: int, burst_port: int, ca_file: Path, args: argparse.Namespace, pid: int
) -> dict[str, Any]:
    import anychat

    latencies: list[tuple[float, float]] = []  # (sent at, latency)
    sent_at: dict[str, float] = {}
    windows: dict[str, tuple[float, float]] = {}
    figures: dict[str, Any] = {}

    async def listen(client: anychat.Client) -> None:
        async for event in client:
            if isinstance(event, anychat.Message) and event.text in sent_at:
                at = sent_at[event.text]
                latencies.append((at, time.monotonic() - at))

    async def chat(sender: anychat.Client, stop: anyio.Event) -> None:
        interval = 1 / args.rate
        next_at = time.monotonic()
        seq = 0
        while not stop.is_set():
            seq += 1
            text = f"m{seq}"
            sent_at[text] = time.monotonic()
            await sender.send("#general", text)
            next_at += interval
            await anyio.sleep(max(0.0, next_at - time.monotonic()))

    async def run_burst() -> None:
        command = [sys.executable, __file__, "--burst", str(burst_port), str(ca_file)]
        command += ["--handshakes", str(args.handshakes)]
        if shutil.which("taskset"):
            command = ["taskset", "-c", "1", *command]
        cpu_before = cpu_seconds(pid)
        spawned = time.monotonic()
        result = await anyio.run_process(command, env={**os.environ, "PYTHONPATH": SRC})
        ended = time.monotonic()
        cpu_during = cpu_seconds(pid) - cpu_before
        done, failed, start, end = result.stdout.decode().split()
        windows["during"] = (float(start), float(end))
        figures.update(
            handshakes=int(done),
            failed=int(failed),
            burst_seconds=float(end) - float(start),
            why=result.stderr.decode(),
            # What the handshakes cost the server: its CPU while the burst process ran, minus
            # what the chat alone costs over that time.
            handshake_cpu=cpu_during - figures["cpu_chat_per_second"] * (ended - spawned),
        )

    async with anychat.connect("127.0.0.1", port, nick="sender") as sender:
        async with anyio.create_task_group() as tg:
            members = []
            for i in range(args.members):
                member = await tg.start(partial(_member, port, f"member{i}"))
                members.append(member)
                tg.start_soon(listen, member)
            stop = anyio.Event()
            tg.start_soon(chat, sender, stop)
            await anyio.sleep(0.5)  # settle
            start = time.monotonic()
            cpu_start = cpu_seconds(pid)
            await anyio.sleep(args.window)
            windows["before"] = (start, time.monotonic())
            figures["cpu_chat_per_second"] = (cpu_seconds(pid) - cpu_start) / args.window
            await run_burst()
            start = time.monotonic()
            await anyio.sleep(args.window)
            windows["after"] = (start, time.monotonic())
            stop.set()
            await anyio.sleep(0.5)  # the last messages arrive
            tg.cancel_scope.cancel()
    for name, (start, end) in windows.items():
        window = [lat for at, lat in latencies if start <= at < end]
        figures[name] = {
            "messages": len(window),
            "p50_ms": percentile(window, 0.50) * 1000,
            "p99_ms": percentile(window, 0.99) * 1000,
            "max_ms": max(window, default=float("nan")) * 1000,
        }
    return figures


async def _member(port: int, nick: str, *, task_status: Any) -> None:
    import anychat

    async with anychat.connect("127.0.0.1", port, nick=nick) as client:
        task_status.started(client)
        await anyio.sleep_forever()


def run_one(key_type: str, where: str, args: argparse.Namespace) -> dict[str, Any]:
    import trustme

    folder = Path(tempfile.mkdtemp(prefix="anychat-tls-bench-"))
    ca = trustme.CA(key_type=trustme.KeyType[key_type.upper()])
    leaf = ca.issue_cert("localhost", "127.0.0.1", key_type=trustme.KeyType[key_type.upper()])
    cert, key, ca_file = folder / "cert.pem", folder / "key.pem", folder / "ca.pem"
    leaf.cert_chain_pems[0].write_to_path(str(cert))
    leaf.private_key_pem.write_to_path(str(key))
    ca.cert_pem.write_to_path(str(ca_file))
    mean_ms, longest_ms = handshake_cpu_ms(cert, key, ca_file)
    tls_port = free_port()
    server, port = start_server(cert, key, args.backend, tls_port)
    burst_port = port if where == "main" else tls_port
    try:
        figures = anyio.run(measure, port, burst_port, ca_file, args, server.pid)
        figures.update(crypto_mean_ms=mean_ms, crypto_longest_step_ms=longest_ms)
        return figures
    finally:
        server.terminate()
        server.wait(10)
        shutil.rmtree(folder, ignore_errors=True)


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--backend", default="asyncio", choices=["asyncio", "trio"])
    parser.add_argument("--handshakes", type=int, default=200)
    parser.add_argument("--members", type=int, default=10, help="clients in the chatting room")
    parser.add_argument("--rate", type=float, default=200.0, help="room messages per second")
    parser.add_argument("--window", type=float, default=3.0, help="seconds before and after")
    parser.add_argument("--key", default="both", choices=["ecdsa", "rsa", "both"])
    parser.add_argument(
        "--port-kind",
        default="both",
        choices=["main", "tls", "both"],
        help="handshake on the sniffing main port, on the TLS-only port, or both",
    )
    parser.add_argument("--burst", nargs=2, metavar=("PORT", "CA"), help=argparse.SUPPRESS)
    args = parser.parse_args()
    if args.burst:
        burst(int(args.burst[0]), args.burst[1], args.handshakes)
        return 0
    keys = ["ecdsa", "rsa"] if args.key == "both" else [args.key]
    wheres = ["main", "tls"] if args.port_kind == "both" else [args.port_kind]
    print(
        f"anychat TLS handshake burst: {args.handshakes} handshakes at once, a room of "
        f"{args.members} chatting at {args.rate:g} msg/s, backend {args.backend}, "
        f"{os.cpu_count()} CPUs (shared machines give noisy figures)"
    )
    for key_type, where in [(k, w) for k in keys for w in wheres]:
        figures = run_one(key_type, where, args)
        handshake_cpu = figures["handshake_cpu"]
        print(f"\n{key_type.upper()} certificate, {where} port:")
        print(
            f"  burst: {figures['handshakes']} handshakes ({figures['failed']} failed) in "
            f"{figures['burst_seconds']:.3f} s = {figures['handshakes'] / figures['burst_seconds']:.0f}"
            f"/s; server CPU {max(handshake_cpu, 0) / max(figures['handshakes'], 1) * 1000:.2f} ms"
            " per handshake"
        )
        if figures["why"]:
            print(figures["why"].rstrip())
        print(
            f"  one handshake's server-side computing: {figures['crypto_mean_ms']:.2f} ms of CPU"
            f" (longest single step {figures['crypto_longest_step_ms']:.2f} ms), in a worker "
            "thread, not the event loop"
        )
        print(f"  {'room latency':<14}{'messages':>9}{'p50 ms':>9}{'p99 ms':>9}{'max ms':>9}")
        for name in ("before", "during", "after"):
            row = figures[name]
            print(
                f"  {name:<14}{row['messages']:>9}{row['p50_ms']:>9.2f}{row['p99_ms']:>9.2f}"
                f"{row['max_ms']:>9.2f}"
            )
    return 0


if __name__ == "__main__":
    sys.exit(main())
