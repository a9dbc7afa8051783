"""Markdown tables from ``run.py --json`` output, for docs/performance.md.

python benchmarks/report.py after.json                 # the results of one run
python benchmarks/report.py after.json --before before.json   # and a before/after table
"""

from __future__ import annotations

import argparse
import json
from typing import Any


def load(path: str) -> dict[str, Any]:
    with open(path) as f:
        data: dict[str, Any] = json.load(f)
    return data


def results_table(data: dict[str, Any]) -> str:
    rows = [r for r in data["results"] if "deliveries_per_s" in r]
    base = {r["scenario"]: r for r in rows if r["server"] == "tutorial"}
    out = [
        (
            "| scenario | server | deliveries/s | × tutorial | deliveries per CPU-s | × tutorial "
            "(CPU) | p50 ms | p99 ms | lost/dup/order | server CPU | peak RSS | others on core 0 |"
        ),
        "|---|---|--:|--:|--:|--:|--:|--:|--:|--:|--:|--:|",
    ]
    for r in rows:
        ref = base.get(r["scenario"])
        ratio = f"{r['deliveries_per_s'] / ref['deliveries_per_s']:.1f}×" if ref else "–"
        cpu_ratio = (
            f"{r['deliveries_per_cpu_s'] / ref['deliveries_per_cpu_s']:.1f}×" if ref else "–"
        )
        out.append(
            f"| {r['scenario']} | {r['server']} | {r['deliveries_per_s']:,.0f} | {ratio} | "
            f"{r['deliveries_per_cpu_s']:,.0f} | {cpu_ratio} | {r['p50_ms']:.2f} | "
            f"{r['p99_ms']:.2f} | {r['lost']}/{r['duplicated']}/{r['order_errors']} | "
            f"{r['server_cpu_frac']:.0%} | {r['peak_rss_kib'] / 1024:.1f} MiB | "
            f"{r['other_load_core0']:.0%} |"
        )
    mem = [r for r in data["results"] if "per_connection_kib" in r]
    if mem:
        out += [
            "",
            "| server | connections held | empty RSS | held RSS | per connection | room message |",
            "|---|--:|--:|--:|--:|---|",
        ]
        for r in mem:
            out.append(
                f"| {r['server']} | {r['held']:,} | {r['base_rss_kib'] / 1024:.1f} MiB | "
                f"{r['held_rss_kib'] / 1024:.1f} MiB | {r['per_connection_kib']:.1f} KiB | "
                + ("delivered" if r["message_delivered"] else "**not delivered**")
                + " |"
            )
    return "\n".join(out)


def before_after(before: dict[str, Any], after: dict[str, Any]) -> str:
    def index(data: dict[str, Any]) -> dict[tuple[str, str], dict[str, Any]]:
        return {(r["scenario"], r["server"]): r for r in data["results"] if "error" not in r}

    b, a = index(before), index(after)
    out = [
        (
            "| scenario | server | before: deliveries/s (per CPU-s) | after: deliveries/s "
            "(per CPU-s) | before → after p99 ms | before → after RSS/conn |"
        ),
        "|---|---|--:|--:|--:|--:|",
    ]
    for key, new in a.items():
        old = b.get(key)
        if old is None or not key[1].startswith("anychat"):
            continue
        if "deliveries_per_s" in new:
            out.append(
                f"| {key[0]} | {key[1]} | {old['deliveries_per_s']:,.0f} "
                f"({old['deliveries_per_cpu_s']:,.0f}) | {new['deliveries_per_s']:,.0f} "
                f"({new['deliveries_per_cpu_s']:,.0f}) | {old['p99_ms']:.1f} → "
                f"{new['p99_ms']:.1f} | |"
            )
        elif "per_connection_kib" in new:
            out.append(
                f"| {key[0]} | {key[1]} | | | | {old['per_connection_kib']:.1f} → "
                f"{new['per_connection_kib']:.1f} KiB |"
            )
    return "\n".join(out)


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("after")
    parser.add_argument("--before")
    args = parser.parse_args()
    after = load(args.after)
    print(results_table(after))
    if args.before:
        print()
        print(before_after(load(args.before), after))


if __name__ == "__main__":
    main()
