"""Tables from ``run.py --json`` output: Markdown for docs/performance.md and the README.

    python benchmarks/report.py results.json            # print every table as Markdown
    python benchmarks/report.py results.json --write    # and rewrite the generated parts of
                                                        # docs/performance.md and README.md

The generated parts sit between ``<!-- bench:NAME:begin -->`` and ``<!-- bench:NAME:end -->``
markers, so the prose around them is kept. ``run.py`` uses the same tables for the console.

A ratio to the tutorial server is only given where both rows saturated the server's core
(``bound: server``) and lost, duplicated and reordered nothing: any other ratio would measure
the load generator, the window or the machine.
"""

from __future__ import annotations

import argparse
import json
import re
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

ROOT = Path(__file__).resolve().parent.parent
PROBLEMS = ("lost", "duplicated", "reordered", "corrupt", "echoed", "unexpected_lines")


@dataclass
class Table:
    title: str
    headers: list[str]
    rows: list[list[str]] = field(default_factory=list)


def load(path: str) -> dict[str, Any]:
    with open(path) as f:
        data: dict[str, Any] = json.load(f)
    return data


def problems(r: dict[str, Any]) -> int:
    return sum(int(r.get(k, 0)) for k in (*PROBLEMS, "disconnected"))


def ok(r: dict[str, Any]) -> bool:
    return "error" not in r and not problems(r)


def checks(r: dict[str, Any]) -> str:
    """Lost/duplicated/reordered (and anything else that went wrong) for one row."""
    text = f"{r.get('lost', 0)}/{r.get('duplicated', 0)}/{r.get('reordered', 0)}"
    extra = [
        f"{k} {r[k]}" for k in ("corrupt", "echoed", "unexpected_lines", "disconnected") if r.get(k)
    ]
    return text + (" (" + ", ".join(extra) + ")" if extra else "")


def ratio(r: dict[str, Any], rows: list[dict[str, Any]]) -> float | None:
    """Deliveries/s against the tutorial server's in the same scenario, when both count."""
    if r.get("bound") != "server" or not ok(r):
        return None
    for base in rows:
        if base["scenario"] == r["scenario"] and base["server"] == "tutorial":
            if base.get("bound") == "server" and ok(base):
                return float(r["deliveries_per_s"]) / float(base["deliveries_per_s"])
    return None


#: The plaintext protocol each other protocol's row is compared with (same backend, store and
#: run): WebSocket carries JSON lines, TLS rows are the same protocol encrypted.
PLAIN_OF = {"websocket": "jsonl", "irc-tls": "irc", "jsonl-tls": "jsonl"}


def plain_row(r: dict[str, Any], rows: list[dict[str, Any]]) -> dict[str, Any] | None:
    """The same server, backend and store over the plain protocol, in the same scenario."""
    plain = PLAIN_OF.get(r.get("protocol", ""))
    for base in rows:
        if (
            plain is not None
            and base["scenario"] == r["scenario"]
            and base.get("protocol") == plain
            and base.get("label") == r.get("label")
            and base.get("store") == r.get("store")
        ):
            return base
    return None


def versus_plain(r: dict[str, Any], rows: list[dict[str, Any]]) -> str:
    """WebSocket and TLS rows against their plaintext row of the same run: deliveries/s (only
    where both are ``bound: server``) and server CPU per delivery (wherever both are clean)."""
    base = plain_row(r, rows)
    if base is None or not ok(r) or not ok(base):
        return "–"
    rate = "–"
    if r.get("bound") == "server" and base.get("bound") == "server":
        rate = f"{r['deliveries_per_s'] / base['deliveries_per_s']:.2f}×"
    cost = float(base["deliveries_per_cpu_s"]) / float(r["deliveries_per_cpu_s"])
    return f"{rate}, CPU/delivery {cost:.2f}×"


def _pct(x: float) -> str:
    return f"{x:.0%}"


def _ms(x: float | None) -> str:
    return "–" if x is None else f"{x:.2f}"


def _who(r: dict[str, Any]) -> list[str]:
    return [r["label"], r.get("protocol", ""), r.get("store", "") or "–"]


def tables(data: dict[str, Any]) -> list[Table]:
    results: list[dict[str, Any]] = data["results"]
    out: list[Table] = []
    scenarios: list[str] = []
    for r in results:
        if r["scenario"] not in scenarios:
            scenarios.append(r["scenario"])
    for sc in scenarios:
        rows = [r for r in results if r["scenario"] == sc]
        kind = rows[0]["kind"]
        title = rows[0]["title"]
        if kind == "throughput":
            t = Table(
                title,
                [
                    "server",
                    "protocol",
                    "store",
                    "deliveries/s",
                    "× tutorial",
                    "× plain",
                    "server CPU",
                    "generator CPU",
                    "others on core 0",
                    "p50 / p99 ms",
                    "lost/dup/order",
                    "bound",
                ],
            )
            for r in rows:
                if "error" in r:
                    t.rows.append([*_who(r), "failed: " + r["error"][:60], *[""] * 8])
                    continue
                x = ratio(r, rows)
                t.rows.append(
                    [
                        *_who(r),
                        f"{r['deliveries_per_s']:,.0f}",
                        "–" if x is None else f"{x:.1f}×",
                        versus_plain(r, rows),
                        _pct(r["server_cpu_frac"]),
                        _pct(r["loadgen_cpu_frac"]),
                        _pct(r["other_load_core0"]),
                        f"{_ms(r['p50_ms'])} / {_ms(r['p99_ms'])}",
                        checks(r),
                        r["bound"],
                    ]
                )
        elif kind == "pingpong":
            t = Table(
                title,
                [
                    "server",
                    "protocol",
                    "store",
                    "p50 ms",
                    "p99 ms",
                    "server CPU per message",
                    "messages/s",
                    "server CPU",
                    "generator CPU",
                    "others on core 0",
                    "lost/dup/order",
                ],
            )
            for r in rows:
                if "error" in r:
                    t.rows.append([*_who(r), "failed: " + r["error"][:60], *[""] * 7])
                    continue
                t.rows.append(
                    [
                        *_who(r),
                        _ms(r["p50_ms"]),
                        _ms(r["p99_ms"]),
                        f"{r['server_cpu_per_message_us']:.0f} µs",
                        f"{r['messages_per_s']:,.0f}",
                        _pct(r["server_cpu_frac"]),
                        _pct(r["loadgen_cpu_frac"]),
                        _pct(r["other_load_core0"]),
                        checks(r),
                    ]
                )
        elif kind == "rate":
            t = Table(
                title,
                [
                    "server",
                    "protocol",
                    "store",
                    "server CPU",
                    "p50 ms",
                    "p99 ms",
                    "deliveries/s",
                    "others on core 0",
                    "lost/dup/order",
                ],
            )
            for r in rows:
                if "error" in r:
                    t.rows.append([*_who(r), "failed: " + r["error"][:60], *[""] * 5])
                    continue
                t.rows.append(
                    [
                        *_who(r),
                        _pct(r["server_cpu_frac"]) + (" (capped)" if r.get("capped") else ""),
                        _ms(r["p50_ms"]),
                        _ms(r["p99_ms"]),
                        f"{r['deliveries_per_s']:,.0f}",
                        _pct(r["other_load_core0"]),
                        checks(r),
                    ]
                )
        elif kind == "handshake":
            t = Table(
                title,
                [
                    "server",
                    "protocol",
                    "store",
                    "handshakes/s",
                    "failed",
                    "server CPU per handshake",
                    "server CPU",
                    "generator CPU",
                    "others on core 0",
                ],
            )
            for r in rows:
                if "error" in r:
                    t.rows.append([*_who(r), "failed: " + r["error"][:60], *[""] * 5])
                    continue
                t.rows.append(
                    [
                        *_who(r),
                        f"{r['handshakes_per_s']:,.0f}",
                        f"{r['failed']} of {r['clients']}" if r["failed"] else "0",
                        f"{r['server_cpu_per_handshake_ms']:.2f} ms",
                        _pct(r["server_cpu_frac"]),
                        _pct(r["loadgen_cpu_frac"]),
                        _pct(r["other_load_core0"]),
                    ]
                )
        else:
            t = Table(
                title,
                [
                    "server",
                    "protocol",
                    "store",
                    "held",
                    "parked",
                    "empty RSS",
                    "held RSS",
                    "per connection",
                    "room message",
                ],
            )
            for r in rows:
                if "error" in r:
                    t.rows.append([*_who(r), "failed: " + r["error"][:60], *[""] * 5])
                    continue
                t.rows.append(
                    [
                        *_who(r),
                        f"{r['held']:,}",
                        f"{r['parked']:,}" if r.get("parked") is not None else "–",
                        f"{r['base_rss_kib'] / 1024:.1f} MiB",
                        f"{r['held_rss_kib'] / 1024:.1f} MiB",
                        f"{r['per_connection_kib']:.1f} KiB",
                        "delivered" if r["message_delivered"] else "**not delivered**",
                    ]
                )
        out.append(t)
    return out


def markdown(table: Table) -> str:
    right = {i for i, h in enumerate(table.headers) if h not in ("server", "protocol", "store")}
    lines = [
        f"**{table.title}**",
        "",
        "| " + " | ".join(table.headers) + " |",
        "|" + "|".join("--:" if i in right else "---" for i in range(len(table.headers))) + "|",
    ]
    lines += ["| " + " | ".join(row) + " |" for row in table.rows]
    return "\n".join(lines)


def machine_line(data: dict[str, Any]) -> str:
    m = data.get("machine", {})
    return (
        f"Machine: {m.get('nproc')} cores, {m.get('cpu')}, Linux {m.get('kernel')}, "
        f"Python {m.get('python')}; run of {data.get('date', '?')}, "
        f"{data.get('settings', {}).get('duration')} s measured per row."
    )


def full_report(data: dict[str, Any]) -> str:
    parts = [machine_line(data)]
    parts += [markdown(t) for t in tables(data)]
    notes = data.get("notes", [])
    if notes:
        parts.append("\n".join(f"- {n}" for n in notes))
    return "\n\n".join(parts)


def readme_table(data: dict[str, Any]) -> str:
    """One row per server: the headline figure of each scenario."""
    results: list[dict[str, Any]] = data["results"]
    by: dict[str, dict[str, dict[str, Any]]] = {}
    titles: dict[str, str] = {}
    for r in results:
        by.setdefault(r["server"], {})[r["kind_key"]] = r
        titles[r["kind_key"]] = r["title"]
    keys = [
        k
        for k in ("closed-50", "closed-200", "pingpong", "rate", "idle", "handshakes")
        if k in titles
    ]
    head = {
        "closed-50": "50 clients: deliveries/s",
        "closed-200": "200 clients: deliveries/s",
        "pingpong": "ping-pong: p50 ms, CPU/msg",
        "rate": "1,000 msg/s: CPU, p99 ms",
        "idle": "per idle connection",
        "handshakes": "TLS handshakes/s",
    }
    lines = [
        "| server | protocol | store | " + " | ".join(head[k] for k in keys) + " |",
        "|---|---|---|" + "--:|" * len(keys),
    ]
    for rows in by.values():
        first = next(iter(rows.values()))
        cells = []
        for k in keys:
            r = rows.get(k)
            if r is None:
                cells.append("")
            elif "error" in r:
                cells.append("failed")
            elif k.startswith("closed"):
                same = [x for x in results if x["scenario"] == r["scenario"]]
                x = ratio(r, same)
                figure = f"{r['deliveries_per_s'] / 1e6:.2f}M"
                if r["bound"] != "server":
                    cells.append(f"{figure} (bound: {r['bound']})")
                else:
                    cells.append(figure + ("" if x is None else f" ({x:.1f}×)"))
            elif k == "pingpong":
                cells.append(f"{_ms(r['p50_ms'])}, {r['server_cpu_per_message_us']:.0f} µs")
            elif k == "rate":
                cells.append(f"{_pct(r['server_cpu_frac'])}, {_ms(r['p99_ms'])}")
            elif k == "handshakes":
                cells.append(f"{r['handshakes_per_s']:,.0f}")
            else:
                cells.append(f"{r['per_connection_kib']:.1f} KiB")
            if r is not None and "error" not in r and problems(r):
                cells[-1] += " **(errors)**"
        lines.append("| " + " | ".join([*_who(first), *cells]) + " |")
    return "\n".join(lines)


def replace_between(text: str, name: str, body: str) -> str:
    pattern = re.compile(
        rf"(<!-- bench:{name}:begin -->\n).*?(<!-- bench:{name}:end -->)", re.DOTALL
    )
    if not pattern.search(text):
        raise SystemExit(f"no <!-- bench:{name}:begin/end --> markers found")
    return pattern.sub(lambda m: m.group(1) + body.rstrip() + "\n" + m.group(2), text)


def write_docs(data: dict[str, Any], root: Path = ROOT) -> None:
    perf = root / "docs" / "performance.md"
    perf.write_text(replace_between(perf.read_text(), "results", full_report(data)))
    readme = root / "README.md"
    body = machine_line(data) + "\n\n" + readme_table(data)
    readme.write_text(replace_between(readme.read_text(), "summary", body))


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("results", help="a run.py --json file")
    parser.add_argument(
        "--write", action="store_true", help="rewrite docs/performance.md and README.md"
    )
    args = parser.parse_args()
    data = load(args.results)
    print(full_report(data))
    print()
    print(readme_table(data))
    if args.write:
        write_docs(data)
        print("\nwrote docs/performance.md and README.md")


if __name__ == "__main__":
    main()
