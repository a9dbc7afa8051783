"""Where a server's CPU goes per delivery under the closed-loop load, TLS row beside plain.

    python benchmarks/tls_profile.py                        # asyncio, JSON lines, TLS and plain
    python benchmarks/tls_profile.py --backend trio --protocol irc --clients 50 --seconds 5

The server runs under ``cProfile``, switched on only for the measured window (the load
generator signals it with SIGUSR1 as the window opens and SIGUSR2 as it closes), so every count
is divided by the deliveries of exactly that window. For each row it prints the calls per
delivery that matter for TLS (``SSLObject.read``/``write``, the socket's ``send``/``recv``,
``MemoryBIO`` reads and writes, ``bytes.join``) and the functions with the most time; with
``--sizes`` (a separate, instrumented run, since wrapping costs time) also how many bytes each
call moved. Profiling slows the server several-fold, so the figures are counts and shares,
not speeds: the speeds come from ``benchmarks/run.py``.
"""

from __future__ import annotations

import argparse
import collections
import json
import os
import pstats
import signal
import sys
import tempfile
import time
from pathlib import Path
from typing import Any

HERE = Path(__file__).resolve().parent

#: (label, how pstats names it) of the calls counted per delivery.
COUNTED = (
    ("SSLObject.read", ("ssl.py", "read", "SSLObject")),
    ("SSLObject.write", ("ssl.py", "write", "SSLObject")),
    ("SSLObject.pending", ("ssl.py", "pending", "SSLObject")),
    ("socket.send", ("~", "<method 'send' of '_socket.socket' objects>", "")),
    ("socket.sendmsg", ("~", "<method 'sendmsg' of '_socket.socket' objects>", "")),
    ("socket.recv", ("~", "<method 'recv' of '_socket.socket' objects>", "")),
    ("MemoryBIO.read", ("~", "<method 'read' of '_ssl.MemoryBIO' objects>", "")),
    ("MemoryBIO.write", ("~", "<method 'write' of '_ssl.MemoryBIO' objects>", "")),
    ("_ssl._SSLSocket.read", ("~", "<method 'read' of '_ssl._SSLSocket' objects>", "")),
    ("_ssl._SSLSocket.write", ("~", "<method 'write' of '_ssl._SSLSocket' objects>", "")),
    ("bytes.join", ("~", "<method 'join' of 'bytes' objects>", "")),
    ("TlsTransport.recv", ("tls.py", "recv", "")),
    ("TlsTransport.send", ("tls.py", "send", "")),
    ("Connection.flush", ("connection.py", "flush", "")),
)


# ---------------------------------------------------------------- inside the server process


def serve_profiled(out: str, sizes: bool, argv: list[str]) -> None:
    """Run ``anychat`` with ``argv``; profile between SIGUSR1 and SIGUSR2, write to ``out``."""
    # This folder's profile.py would shadow the standard library's, which cProfile imports.
    sys.path[:] = [p for p in sys.path if p and Path(p).resolve() != HERE]
    import cProfile
    import runpy

    profile = cProfile.Profile()
    tally: collections.Counter[str] = collections.Counter()
    counting = [False]
    if sizes:
        _instrument(tally, counting)

    def start(*_: object) -> None:
        counting[0] = True
        if not sizes:
            profile.enable()

    def stop(*_: object) -> None:
        if not sizes:
            profile.disable()
            profile.dump_stats(out)
        counting[0] = False
        if sizes:
            Path(out).write_text(json.dumps(tally))

    signal.signal(signal.SIGUSR1, start)
    signal.signal(signal.SIGUSR2, stop)
    sys.argv = ["anychat", *argv]
    try:
        runpy.run_module("anychat", run_name="__main__")
    except SystemExit:
        pass


def _instrument(tally: collections.Counter[str], counting: list[bool]) -> None:
    """Count calls and bytes through the SSL object and the socket (TLS transports only)."""
    import anychat.tls as tls

    class Counted:
        """An ``SSLObject`` and a socket stand-in that count what passes through them."""

        def __init__(self, inner: Any, name: str) -> None:
            self._inner = inner
            self._name = name

        def __getattr__(self, attr: str) -> Any:
            return getattr(self._inner, attr)

        def read(self, *args: Any) -> Any:
            data = self._inner.read(*args)
            if counting[0]:
                tally[f"{self._name}.read calls"] += 1
                tally[f"{self._name}.read bytes"] += len(data)
            return data

        def write(self, data: Any) -> Any:
            if counting[0]:
                tally[f"{self._name}.write calls"] += 1
                tally[f"{self._name}.write bytes"] += len(data)
            return self._inner.write(data)

        def recv(self, n: int) -> Any:
            data = self._inner.recv(n)
            if counting[0]:
                tally[f"{self._name}.recv calls"] += 1
                tally[f"{self._name}.recv bytes"] += len(data)
            return data

        def recv_into(self, buffer: Any, n: int = 0) -> Any:
            got = self._inner.recv_into(buffer, n)
            if counting[0]:
                tally[f"{self._name}.recv calls"] += 1
                tally[f"{self._name}.recv bytes"] += got
            return got

        def send(self, data: Any) -> Any:
            sent = self._inner.send(data)
            if counting[0]:
                tally[f"{self._name}.send calls"] += 1
                tally[f"{self._name}.send bytes"] += sent
            return sent

        def sendmsg(self, buffers: list[bytes]) -> Any:
            sent = self._inner.sendmsg(buffers)
            if counting[0]:
                tally[f"{self._name}.sendmsg calls"] += 1
                tally[f"{self._name}.sendmsg bytes"] += sent
            return sent

        def pending(self) -> Any:
            if counting[0]:
                tally[f"{self._name}.pending calls"] += 1
            return self._inner.pending()

    original_init = tls.TlsTransport.__init__

    def init(self: Any, sock: Any, *args: Any, **kwargs: Any) -> None:
        original_init(self, sock, *args, **kwargs)
        self._ssl = Counted(self._ssl, "SSLObject")
        self._tls = Counted(self._tls, "SSLObject")  # what the hot path calls
        self.sock = Counted(self.sock, "socket")

    tls.TlsTransport.__init__ = init  # type: ignore[method-assign]


# ---------------------------------------------------------------- the driver


def profile_row(args: argparse.Namespace, protocol: str, sizes: bool) -> dict[str, Any]:
    sys.path.insert(0, str(HERE))
    from loadgen import LoadGen
    from servers import PROTOCOLS, RunningServer, ServerSpec

    adapter = PROTOCOLS[protocol]
    spec = ServerSpec(
        f"anychat-{args.backend}-{protocol}-memory",
        adapter,
        "anychat",
        backend=args.backend,
        store="memory",
    )
    out = Path(tempfile.mkdtemp(prefix="anychat-tlsprof-")) / "out"
    base_command = spec.command

    def command(*args: Any) -> list[str]:
        cmd = base_command(*args)
        wrapper = [sys.executable, str(Path(__file__).resolve()), "--as-server", str(out)]
        wrapper += ["--sizes"] if sizes else []
        return [*wrapper, "--", *cmd[3:]]  # drop "python -m anychat"

    object.__setattr__(spec, "command", command)
    server = RunningServer(spec, pin=True)
    gen = LoadGen(server.port, adapter, args.clients, args.senders, tls=server.client_tls())
    try:
        gen.connect()
        gen.barrier()
        signals = {True: signal.SIGUSR1, False: signal.SIGUSR2}
        m = gen.run(
            warmup=1.0,
            duration=args.seconds,
            window=args.window,
            on_window=lambda opening: os.kill(server.pid, signals[opening]),
        )
        deadline = time.monotonic() + 30
        while not out.exists() and time.monotonic() < deadline:
            time.sleep(0.1)
        time.sleep(0.5)  # dump_stats may still be writing
    finally:
        gen.close()
        server.stop()
    return {"protocol": protocol, "deliveries": m.deliveries, "messages": m.messages, "out": out}


def report_profile(row: dict[str, Any], top: int) -> None:
    n = row["deliveries"]
    stats = pstats.Stats(str(row["out"]))
    table: dict[tuple[str, int, str], Any] = stats.stats  # type: ignore[attr-defined]
    total = stats.total_tt  # type: ignore[attr-defined]
    print(
        f"\n== {row['protocol']}: {n:,} deliveries, {row['messages']:,} messages in the window; "
        f"profiled time {total:.2f} s, {total / n * 1e6:.2f} us per delivery"
    )
    print("calls per delivery (and per message):")
    for label, (file_end, func, _cls) in COUNTED:
        calls = sum(
            v[1] for (f, _line, name), v in table.items() if f.endswith(file_end) and name == func
        )
        tt = sum(
            v[2] for (f, _line, name), v in table.items() if f.endswith(file_end) and name == func
        )
        if calls:
            print(
                f"  {label:24} {calls / n:8.4f} /delivery  {calls / max(row['messages'], 1):8.3f}"
                f" /message  self {tt / total:6.1%}"
            )
    print(f"top {top} by self time:")
    ranked = sorted(table.items(), key=lambda kv: kv[1][2], reverse=True)[:top]
    for (f, line, name), (_cc, nc, tt, ct, _callers) in ranked:
        where = f"{Path(f).name}:{line}" if f != "~" else ""
        print(
            f"  {tt / total:6.1%} self {ct / total:6.1%} incl {nc / n:8.4f}/delivery  "
            f"{name} {where}"
        )


def report_sizes(row: dict[str, Any]) -> None:
    n = row["deliveries"]
    tally = json.loads(Path(row["out"]).read_text())
    print(f"\n== {row['protocol']} sizes: {n:,} deliveries, {row['messages']:,} messages")
    for key in sorted(tally):
        if key.endswith(" calls"):
            name = key[: -len(" calls")]
            calls = tally[key]
            size = tally.get(f"{name} bytes")
            mean = f"{size / calls:9,.0f} bytes each" if size is not None and calls else ""
            print(f"  {name:22} {calls / n:8.4f} calls/delivery  {mean}")


def main() -> int:
    if len(sys.argv) > 2 and sys.argv[1] == "--as-server":
        out = sys.argv[2]
        rest = sys.argv[3:]
        sizes = bool(rest) and rest[0] == "--sizes"
        rest = rest[1:] if sizes else rest
        serve_profiled(out, sizes, rest[1:] if rest[:1] == ["--"] else rest)
        return 0
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--backend", default="asyncio", choices=["asyncio", "trio"])
    parser.add_argument("--protocol", default="jsonl", choices=["jsonl", "irc"])
    parser.add_argument("--clients", type=int, default=50)
    parser.add_argument("--senders", type=int, default=5)
    parser.add_argument("--window", type=int, default=256)
    parser.add_argument("--seconds", type=float, default=4.0)
    parser.add_argument("--top", type=int, default=25)
    parser.add_argument("--sizes", action="store_true", help="also count bytes per call (TLS)")
    parser.add_argument("--tls-only", action="store_true", help="skip the plaintext row")
    args = parser.parse_args()
    if (os.cpu_count() or 1) >= 2:
        os.sched_setaffinity(0, {1})
    rows = [f"{args.protocol}-tls"] + ([] if args.tls_only else [args.protocol])
    for protocol in rows:
        report_profile(profile_row(args, protocol, sizes=False), args.top)
    if args.sizes:
        report_sizes(profile_row(args, f"{args.protocol}-tls", sizes=True))
    return 0


if __name__ == "__main__":
    sys.exit(main())
