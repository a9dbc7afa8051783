"""Time one ``append_messages`` batch (one transaction) on each store: memory, SQLite, PostgreSQL.

What the server's group commit pays per batch, with no network client or event-loop work in
between: each round appends ``--batches`` batches of ``--batch`` messages to every store in turn
(interleaved, so a neighbour's load on a shared machine hits every store alike) and the medians
over ``--rounds`` rounds are printed. SQLite uses ``synchronous=FULL`` (one fsync per batch);
PostgreSQL uses whatever the server is set to (``synchronous_commit`` is printed).

Usage: python benchmarks/store_append.py [--batch 50] [--postgres-url postgresql://...]
(default: a scratch database on the local server, created and dropped by the script).
"""

from __future__ import annotations

import argparse
import secrets
import statistics
import tempfile
import time
from pathlib import Path

import anyio

from anychat import model as m
from anychat.store import Store, open_store


async def _time_batches(store: Store, first_id: int, args: argparse.Namespace) -> float:
    """Seconds per batch, over ``args.batches`` batches starting at ``first_id`` (the messages
    are built before the clock starts: only the store is timed)."""
    now = time.time()
    batches = [
        [
            m.Message(
                id=first_id + b * args.batch + i,
                time=now,
                sender=f"user{i % 5}",
                target="#bench",
                text=f"message number {b * args.batch + i} with a few words in it",
            )
            for i in range(args.batch)
        ]
        for b in range(args.batches)
    ]
    start = time.perf_counter()
    for batch in batches:
        await store.append_messages(batch)
    return (time.perf_counter() - start) / args.batches


async def _main(args: argparse.Namespace) -> None:
    import psycopg

    admin_url = args.admin_url
    dbname = f"anychat_bench_{secrets.token_hex(4)}"
    pg_url = args.postgres_url
    admin = None
    if pg_url is None:
        admin = psycopg.connect(admin_url, autocommit=True)
        admin.execute(f'CREATE DATABASE "{dbname}"')
        pg_url = f"{admin_url.rpartition('/')[0]}/{dbname}"
    try:
        with psycopg.connect(pg_url) as conn:
            row = conn.execute("SHOW synchronous_commit").fetchone()
        print(f"PostgreSQL synchronous_commit = {row[0] if row else '?'}")
        with tempfile.TemporaryDirectory() as scratch:
            urls = {
                "memory": "memory://",
                "sqlite": f"sqlite:///{Path(scratch) / 'bench.db'}",
                "postgresql": pg_url,
            }
            timings: dict[str, list[float]] = {name: [] for name in urls}
            async with (
                open_store(urls["memory"]) as mem,
                open_store(urls["sqlite"]) as lite,
                open_store(urls["postgresql"]) as pg,
            ):
                stores = {"memory": mem, "sqlite": lite, "postgresql": pg}
                next_ids = {name: await s.last_message_id() + 1 for name, s in stores.items()}
                for _ in range(args.rounds):
                    for name, store in stores.items():
                        timings[name].append(await _time_batches(store, next_ids[name], args))
                        next_ids[name] += args.batches * args.batch
        print(
            f"{args.batch}-message batches, {args.batches} per round, {args.rounds} rounds "
            "(median, min-max of the round medians):"
        )
        for name, values in timings.items():
            med = statistics.median(values)
            print(
                f"  {name:10s} {med * 1e3:8.3f} ms/batch  {args.batch / med:10.0f} msg/s  "
                f"({min(values) * 1e3:.3f}-{max(values) * 1e3:.3f} ms)"
            )
    finally:
        if admin is not None:
            admin.execute(f'DROP DATABASE "{dbname}" WITH (FORCE)')
            admin.close()


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--batch", type=int, default=50, help="messages per transaction")
    parser.add_argument("--batches", type=int, default=100, help="batches per store per round")
    parser.add_argument("--rounds", type=int, default=5)
    parser.add_argument("--postgres-url", help="an existing database to use (tables are kept)")
    parser.add_argument(
        "--admin-url",
        default="postgresql://postgres@127.0.0.1:5432/postgres",
        help="where to create the scratch database when --postgres-url is not given",
    )
    parser.add_argument("--backend", default="asyncio", choices=["asyncio", "trio"])
    args = parser.parse_args()
    anyio.run(_main, args, backend=args.backend)


if __name__ == "__main__":
    main()
