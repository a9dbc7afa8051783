"""Fan-out benchmark: anychat (asyncio, uvloop, trio; IRC and JSON lines; SQLite and memory)
against a tutorial asyncio server, ngircd and InspIRCd, in one interleaved run.

    python benchmarks/run.py --json results.json          # the full run (about 20 minutes)
    python benchmarks/run.py --quick                      # a short run (a few minutes)
    python benchmarks/run.py --servers 'tutorial,ngircd,anychat-trio-*' --scenarios closed-50
    python benchmarks/run.py --json results.json --write-docs   # and regenerate the docs

Each server runs as a subprocess pinned to core 0; this process, the load generator, pins
itself to core 1. Each scenario runs on every server (servers inside scenarios, so that a change
in the machine's load hits all of them alike), each on a freshly started server:

- closed-50 / closed-200: 50 or 200 clients in one room, 5 of them sending, each sender with at
  most W (256) messages not yet delivered to every receiver. These are the throughput rows: each
  shows the server's CPU and the generator's, and a row where the server was below 95 % of its
  core says what bound it instead and gets no ratio to the tutorial server;
- pingpong: 2 clients, one message in flight: latency and server CPU time per message;
- rate: a fixed 1,000 messages/s into a room of 50: server CPU and latency at a realistic load;
- idle: 10,000 idle registered connections; RSS per connection above the empty server's, and a
  room message must still get through;
- handshakes (TLS servers only): 200 TLS connections opened at once, each a full handshake on
  the main port; handshakes per second and the server's CPU time per handshake.

The protocols are IRC, JSON lines, WebSocket (JSON lines in text frames) and both over TLS; each
WebSocket or TLS row also shows its ratio to the plaintext row of the same backend and store.

Every delivery of every row is checked for loss, duplication and order (see loadgen.py); a row
with any problem fails the run. anychat runs with flood control off (``--flood-rate 0``), as do
the C servers (their configurations are in servers.py).
"""

from __future__ import annotations

import argparse
import json
import os
import platform
import resource
import sys
import time
from dataclasses import dataclass
from typing import Any

from loadgen import LoadError, LoadGen
from servers import RunningServer, ServerSpec, all_servers, core_busy_seconds, select_servers

try:
    from rich.console import Console
    from rich.progress import BarColumn, Progress, TextColumn, TimeElapsedColumn
    from rich.table import Table
except ImportError:  # pragma: no cover
    sys.exit("the benchmark needs rich and numpy: pip install --group bench")

import report

console = Console(width=None if sys.stdout.isatty() else 220)

#: A row is saturated when the server used at least this much of its core.
SATURATED = 0.95
#: At or above this much of its own core, the generator is what bounded an unsaturated row.
GENERATOR_LIMIT = 0.80


@dataclass(frozen=True)
class Scenario:
    key: str
    kind: str  # "throughput", "pingpong", "rate", "idle", "handshake"
    clients: int
    senders: int = 0
    window: int = 0
    rate: float = 0.0

    def title(self) -> str:
        if self.kind == "throughput":
            return (
                f"{self.clients} clients, {self.senders} senders, closed loop "
                f"(window {self.window} per sender)"
            )
        if self.kind == "pingpong":
            return "2 clients, ping-pong (one message in flight)"
        if self.kind == "rate":
            return f"{self.rate:,.0f} messages/s into a room of {self.clients}"
        if self.kind == "handshake":
            return f"{self.clients} TLS handshakes at once (ECDSA P-256 certificate)"
        return f"{self.clients:,} idle connections"


def scenarios(args: argparse.Namespace) -> list[Scenario]:
    every = {
        "closed-50": Scenario("closed-50", "throughput", 50, args.senders, args.window),
        "closed-200": Scenario("closed-200", "throughput", 200, args.senders, args.window),
        "pingpong": Scenario("pingpong", "pingpong", 2, 1, 1),
        "rate": Scenario("rate", "rate", args.rate_clients, args.senders, 0, args.rate),
        "idle": Scenario("idle", "idle", args.idle),
        "handshakes": Scenario("handshakes", "handshake", args.handshakes),
    }
    return [every[k.strip()] for k in args.scenarios.split(",") if k.strip()]


def machine() -> dict[str, Any]:
    model = ""
    try:
        with open("/proc/cpuinfo") as f:
            for line in f:
                if line.startswith("model name"):
                    model = line.split(":", 1)[1].strip()
                    break
    except OSError:
        pass
    return {
        "nproc": os.cpu_count(),
        "cpu": model,
        "python": platform.python_version(),
        "kernel": platform.release(),
    }


def percentile_ms(sorted_us: Any, q: float) -> float | None:
    if not len(sorted_us):
        return None
    return float(sorted_us[min(len(sorted_us) - 1, int(q * len(sorted_us)))]) / 1000


def bound(row: dict[str, Any]) -> str:
    """What limited a throughput row: the server's core (saturated), or else what did."""
    if row["server_cpu_frac"] >= SATURATED:
        return "server"
    if row["loadgen_cpu_frac"] >= GENERATOR_LIMIT:
        return "generator"
    if row["server_cpu_frac"] + row["other_load_core0"] >= SATURATED:
        return "shared core"  # other processes took the rest of core 0
    return "window"


def describe(spec: ServerSpec) -> dict[str, Any]:
    label = {"tutorial": "tutorial asyncio", "ngircd": "ngircd", "inspircd": "InspIRCd"}.get(
        spec.kind, ""
    )
    if spec.kind == "anychat":
        label = "anychat " + ("uvloop" if spec.uvloop else spec.backend)
    return {
        "server": spec.name,
        "label": label,
        "protocol": spec.protocol if spec.kind != "tutorial" else "raw lines",
        "store": spec.store,
    }


def load_row(
    spec: ServerSpec, sc: Scenario, args: argparse.Namespace, progress: Progress, task: Any
) -> dict[str, Any]:
    row: dict[str, Any] = {
        **describe(spec),
        "scenario": sc.key,
        "kind_key": sc.key,
        "kind": sc.kind,
        "title": sc.title(),
        "clients": sc.clients,
        "window": sc.window,
        "rate": sc.rate,
    }
    server = RunningServer(spec, pin=args.pin)
    gen = LoadGen(
        server.port,
        spec.adapter,
        sc.clients,
        sc.senders,
        text_bytes=args.text_bytes,
        time_all=sc.kind != "throughput",
        tls=server.client_tls(),
    )
    row["senders"] = gen.k
    try:
        gen.connect()
        gen.barrier()
        total = args.warmup + args.duration

        def report_progress(elapsed: float, _bytes: int) -> None:
            progress.update(
                task,
                description=f"{spec.name:30} {sc.key:10}",
                completed=min(elapsed, total),
                total=total,
            )

        marks: list[float] = []
        cores: list[list[float]] = []

        def window(opening: bool) -> None:
            marks.append(server.cpu_seconds())
            cores.append(core_busy_seconds())

        m = gen.run(
            warmup=args.warmup,
            duration=args.duration,
            window=sc.window,
            rate=sc.rate,
            progress=report_progress,
            on_window=window,
        )
        cpu = marks[1] - marks[0]  # the server's CPU time in the measured window
        # Whatever else ran on the server's core meanwhile (other processes on a shared box).
        other = (cores[1][0] - cores[0][0] - cpu) / m.elapsed if args.pin else float("nan")
        lat = m.latencies_us
        row.update(
            deliveries_per_s=m.deliveries / m.elapsed,
            messages_per_s=m.messages / m.elapsed,
            p50_ms=percentile_ms(lat, 0.50),
            p99_ms=percentile_ms(lat, 0.99),
            max_ms=percentile_ms(lat, 1.0),
            latency_samples=len(lat),
            sent=m.sent,
            checked=m.checked,
            expected_lines=m.expected,
            received_lines=m.received,
            **m.problems,
            server_cpu_s=cpu,
            server_cpu_frac=cpu / m.elapsed,
            server_cpu_per_message_us=cpu / m.messages * 1e6 if m.messages else float("nan"),
            deliveries_per_cpu_s=m.deliveries / cpu if cpu > 0 else float("nan"),
            loadgen_cpu_frac=m.loadgen_cpu / m.elapsed,
            other_load_core0=max(0.0, other),
            peak_rss_kib=server.memory_kib("VmHWM"),
            elapsed_s=m.elapsed,
            capped=m.capped,
        )
        if sc.kind == "throughput":
            row["bound"] = bound(row)
    except (LoadError, OSError) as exc:
        row["error"] = str(exc)
        console.print(f"[red]{spec.name} {sc.key}: {exc}[/red]\n{server.log_tail()}")
    finally:
        gen.close()
        server.stop()
    return row


def best(tries: list[dict[str, Any]]) -> dict[str, Any]:
    """Of repeated tries, the one with the most deliveries (the least disturbed one); the
    correctness counts are the worst of all tries."""
    good = [t for t in tries if "error" not in t]
    if not good:
        return tries[0]
    top = max(good, key=lambda t: t["deliveries_per_s"])
    top["repeats"] = [round(t["deliveries_per_s"]) for t in good]
    for t in good:
        for k in (*report.PROBLEMS, "disconnected"):
            top[k] = max(top.get(k, 0), t.get(k, 0))
    return top


#: Seconds of quiet after which anychat parks a reader, in the idle rows.
PARK_AFTER = 2.0


def idle_row(
    spec: ServerSpec, sc: Scenario, args: argparse.Namespace, progress: Progress, task: Any
) -> dict[str, Any]:
    n = min(sc.clients, spec.max_idle or sc.clients)
    row: dict[str, Any] = {
        **describe(spec),
        "scenario": sc.key,
        "kind_key": sc.key,
        "kind": sc.kind,
        "title": sc.title() + (f", {args.idle_step:,} at a time" if 0 < args.idle_step < n else ""),
        "clients": n,
    }
    progress.update(task, description=f"{spec.name:30} {sc.key:10}", completed=0, total=3)
    # anychat parks quiet readers after 2 s here (10 s by default), so that the row measures
    # idle connections as a server holding them for long holds them.
    # Only plain TCP parks (a TLS object may hold decrypted input): TLS rows would only wait
    # for it in vain.
    parks = spec.kind == "anychat" and not spec.adapter.tls
    server = RunningServer(
        spec, pin=args.pin, max_connections=n + 100, park_after=PARK_AFTER if parks else None
    )
    try:
        tls = server.client_tls()
        warm = LoadGen(server.port, spec.adapter, 2, 1, tls=tls)
        warm.connect()
        warm.barrier()
        warm.close()
        time.sleep(0.5)  # let the server notice both clients left
        base = server.memory_kib("VmRSS")
        progress.update(task, completed=1)
        # Registered clients in rooms of 100 (one room per 100: a join tells the room, so one
        # room of 10,000 would cost 50 million "joined" lines before measuring anything).
        # With --idle-step, they come in steps, each parked before the next (connections
        # arriving over time); without, all at once (a reconnect storm), so that every one is
        # still a reader with its task at the peak, which the allocator then keeps.
        group = args.idle_room
        step = min(args.idle_step or n, n)
        gens: list[LoadGen] = []
        try:
            for start in range(0, n, step):
                gen = LoadGen(
                    server.port, spec.adapter, min(step, n - start), 1, tls=tls, first=start
                )
                gens.append(gen)
                gen.connect(timeout=900, room_of=lambda i, start=start: f"#m{(start + i) // group}")
                if parks:
                    server.wait_parked(start + len(gen.clients), timeout=PARK_AFTER + 60)
            parked = server.wait_parked(n, timeout=PARK_AFTER + 60) if parks else None
            progress.update(task, completed=2)
            members = gens[0].clients[:group]
            delivered = True
            try:
                gens[0].barrier(members=members, room="#m0")
            except LoadError:
                delivered = False
            held = server.memory_kib("VmRSS")
            alive = sum(not c.dead for gen in gens for c in gen.clients)
        finally:
            for gen in gens:
                gen.close()
        row.update(
            base_rss_kib=base,
            held_rss_kib=held,
            per_connection_kib=(held - base) / n,
            peak_rss_kib=server.memory_kib("VmHWM"),
            held=alive,
            parked=parked,
            message_delivered=delivered,
            room_members=len(members),
        )
        progress.update(task, completed=3)
    except (LoadError, OSError) as exc:
        row["error"] = str(exc)
        console.print(f"[red]{spec.name} {sc.key}: {exc}[/red]\n{server.log_tail()}")
    finally:
        server.stop()
    return row


def handshake_row(
    spec: ServerSpec, sc: Scenario, args: argparse.Namespace, progress: Progress, task: Any
) -> dict[str, Any]:
    """A burst of TLS handshakes on the main port: how many per second, at what server CPU."""
    from tls_handshakes import handshake_burst

    row: dict[str, Any] = {
        **describe(spec),
        "scenario": sc.key,
        "kind_key": sc.key,
        "kind": sc.kind,
        "title": sc.title(),
        "clients": sc.clients,
    }
    progress.update(task, description=f"{spec.name:30} {sc.key:10}", completed=0, total=1)
    server = RunningServer(spec, pin=args.pin)
    try:
        context = server.client_tls()
        handshake_burst(server.port, context, 5)  # warm up (imports, first use)
        cpu0, gen0, cores0 = server.cpu_seconds(), _own_cpu(), core_busy_seconds()
        done, failed, start, end, why = handshake_burst(server.port, context, sc.clients)
        elapsed = end - start
        cpu = server.cpu_seconds() - cpu0
        other = (core_busy_seconds()[0] - cores0[0] - cpu) / elapsed if args.pin else float("nan")
        row.update(
            handshakes=done,
            failed=failed,
            why=dict(why.most_common(3)),
            elapsed_s=elapsed,
            handshakes_per_s=done / elapsed,
            server_cpu_per_handshake_ms=cpu / max(done, 1) * 1000,
            server_cpu_frac=cpu / elapsed,
            loadgen_cpu_frac=(_own_cpu() - gen0) / elapsed,
            other_load_core0=max(0.0, other),
        )
        progress.update(task, completed=1)
    except (LoadError, OSError) as exc:
        row["error"] = str(exc)
        console.print(f"[red]{spec.name} {sc.key}: {exc}[/red]\n{server.log_tail()}")
    finally:
        server.stop()
    return row


def _own_cpu() -> float:
    r = resource.getrusage(resource.RUSAGE_SELF)
    return r.ru_utime + r.ru_stime


def parse(argv: list[str] | None) -> argparse.Namespace:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--quick", action="store_true", help="short run, fewer anychat variants")
    parser.add_argument(
        "--servers",
        default="",
        help="comma-separated name patterns, e.g. 'tutorial,ngircd,anychat-*-irc-*' "
        "(default: all; names: " + ", ".join(s.name for s in all_servers()) + ")",
    )
    parser.add_argument("--scenarios", default="closed-50,closed-200,pingpong,rate,idle,handshakes")
    parser.add_argument("--senders", type=int, default=5)
    parser.add_argument("--window", type=int, default=256, help="messages in flight per sender")
    parser.add_argument("--rate", type=float, default=1000, help="fixed-rate messages/s")
    parser.add_argument("--rate-clients", type=int, default=50)
    parser.add_argument("--idle", type=int, default=10_000, help="idle connections")
    parser.add_argument("--idle-room", type=int, default=100, help="idle clients per room")
    parser.add_argument(
        "--idle-step",
        type=int,
        default=0,
        help="idle rows connect this many at a time, each step parked before the next (0: all at once)",
    )
    parser.add_argument("--handshakes", type=int, default=200, help="TLS handshakes opened at once")
    parser.add_argument("--duration", type=float, default=5.0, help="measured seconds per row")
    parser.add_argument("--warmup", type=float, default=1.0)
    parser.add_argument("--text-bytes", type=int, default=64, help="message text length")
    parser.add_argument("--no-pin", dest="pin", action="store_false")
    parser.add_argument("--json", metavar="PATH", help="write results as JSON")
    parser.add_argument(
        "--write-docs",
        action="store_true",
        help="rewrite the generated tables in docs/performance.md and README.md",
    )
    parser.add_argument(
        "--repeat",
        type=int,
        default=1,
        help="run each load row this many times and keep the least disturbed try",
    )
    args = parser.parse_args(argv)
    if args.quick:
        args.duration, args.warmup = 1.5, 0.5
        args.idle = min(args.idle, 1000)
        args.servers = args.servers or "tutorial,anychat-asyncio-*,ngircd,inspircd"
    args.servers = args.servers or "*"
    return args


def main(argv: list[str] | None = None) -> int:
    args = parse(argv)
    specs = select_servers(args.servers)
    notes: list[str] = [
        "anychat runs with --flood-rate 0 (flood control off); ngircd and InspIRCd with their "
        "flood penalties off (benchmarks/servers.py)."
    ]
    for spec in list(specs):
        why = spec.available()
        if why:
            notes.append(f"{spec.name} skipped: {why}")
            console.print(f"[yellow]skipped {spec.name}: {why}[/yellow]")
            specs.remove(spec)
    if args.pin and (os.cpu_count() or 1) >= 2:
        os.sched_setaffinity(0, {1})
    else:
        args.pin = False
        notes.append("not pinned: fewer than two cores (or --no-pin)")
    plan = scenarios(args)
    soft, hard = resource.getrlimit(resource.RLIMIT_NOFILE)
    need = 2 * args.idle + 1000
    if soft < need:
        resource.setrlimit(resource.RLIMIT_NOFILE, (min(need, hard), hard))
    if hard < args.idle + 500:
        notes.append(f"idle rows limited to {hard - 500} connections (RLIMIT_NOFILE {hard})")
        plan = [Scenario(s.key, s.kind, hard - 500) if s.kind == "idle" else s for s in plan]
    rows: list[dict[str, Any]] = []
    with Progress(
        TextColumn("{task.description}"),
        BarColumn(),
        TextColumn("{task.completed:.1f}/{task.total:.1f}"),
        TimeElapsedColumn(),
        console=console,
    ) as progress:
        overall = progress.add_task("all rows", total=len(plan) * len(specs))
        task = progress.add_task("", total=1)
        shaken: set[str] = set()
        for sc in plan:
            for spec in specs:
                if sc.kind == "handshake":
                    # Once per event loop: the handshake comes before the protocol and store.
                    label = describe(spec)["label"]
                    if spec.adapter.tls and label not in shaken:
                        shaken.add(label)
                        rows.append(handshake_row(spec, sc, args, progress, task))
                elif sc.kind == "idle":
                    rows.append(idle_row(spec, sc, args, progress, task))
                else:
                    tries = [load_row(spec, sc, args, progress, task) for _ in range(args.repeat)]
                    rows.append(best(tries))
                progress.advance(overall)
    data = {
        "machine": machine(),
        "date": time.strftime("%Y-%m-%d %H:%M UTC", time.gmtime()),
        "settings": {k: v for k, v in vars(args).items() if k != "write_docs"},
        "notes": notes,
        "results": rows,
    }
    for t in report.tables(data):
        table = Table(title=t.title)
        for h in t.headers:
            table.add_column(h, justify="left" if h in ("server", "protocol", "store") else "right")
        for r in t.rows:
            table.add_row(*r)
        console.print(table)
    for note in notes:
        console.print(f"note: {note}")
    if args.json:
        with open(args.json, "w") as f:
            json.dump(data, f, indent=2)
    if args.write_docs:
        report.write_docs(data)
        console.print("wrote docs/performance.md and README.md")
    failed = [
        r
        for r in rows
        if "error" in r
        or report.problems(r)
        or r.get("message_delivered") is False
        or r.get("failed")
    ]
    for r in rows:
        if r.get("failed"):
            console.print(f"[red]{r['server']}: {r['failed']} handshakes failed: {r['why']}[/red]")
    return 1 if failed else 0


if __name__ == "__main__":
    sys.exit(main())
