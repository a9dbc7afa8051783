"""CPU per message of the server's own per-message path, without sockets or the network.

    python benchmarks/path_cost.py                          # IRC and JSON lines, asyncio
    python benchmarks/path_cost.py --protocol irc --clients 50 --batch 16 --repeat 9

Closed-loop throughput on this shared 2-core machine moves by +-25 % between runs of the same
code (benchmarks/run.py), far more than most changes to the per-message path are worth. This
measures that path alone, deterministically enough to compare two versions of it: a real
``Hub`` (broker, codecs, group commit on the ``memory://`` store) inside one event loop, with
``--clients`` connections in one room whose transports take every byte at once and only count
lines. Each round, ``--senders`` of them hand the hub a batch of ``--batch`` ``PRIVMSG`` lines
(or JSON ``say`` lines), as the reader does with what one ``recv`` brought; then the hub flushes
(the memory store first stores what is due and queues its acks), as in a turn of the real
server. The figure is the process
CPU time per message and per delivery, the minimum over ``--repeat`` runs (noise only ever adds
time). Every receiver must have counted every message, or the run fails.

What it leaves out, by design: system calls (``recv``, ``send``, ``epoll``), event-loop turns
of the reader tasks, and flood control: ``benchmarks/run.py`` measures those, end to end.
Compare versions with ``PYTHONPATH=/path/to/other/src python benchmarks/path_cost.py``.
"""

from __future__ import annotations

import argparse
import json
import logging
import sys
import time
from pathlib import Path

import anyio
import anyio.lowlevel

from anychat.codecs.registry import codec_for
from anychat.codecs.sniff import Protocol
from anychat.config import ServerConfig
from anychat.connection import Connection
from anychat.hub import Hub
from anychat.store.memory import MemoryStore

ROOM = "#bench"


class CountingTransport:
    """Takes every byte at once; the last client's also counts the lines it was given (only
    that one: counting is the benchmark's work, not the server's)."""

    secure = False
    pending = False

    def __init__(self, name: str, counting: bool) -> None:
        self.address = name
        self.counting = counting
        self.lines = 0

    def send(self, data: bytes | bytearray | memoryview) -> int:
        if self.counting:
            self.lines += bytes(data).count(b"\n")
        return len(data)

    def close(self) -> None:
        pass


def _register(protocol: Protocol, nick: str) -> bytes:
    if protocol is Protocol.IRC:
        return f"NICK {nick}\r\nUSER {nick} 0 * :{nick}\r\nJOIN {ROOM}\r\n".encode()
    lines = [{"type": "hello", "nick": nick, "autojoin": False}, {"type": "join", "room": ROOM}]
    return b"".join(json.dumps(line).encode() + b"\n" for line in lines)


def _batch(protocol: Protocol, sender: int, size: int) -> bytes:
    text = f"^{sender} " + "x" * 90
    if protocol is Protocol.IRC:
        line = f"PRIVMSG {ROOM} :{text}\r\n".encode()
    else:
        line = json.dumps({"type": "say", "to": ROOM, "text": text}).encode() + b"\n"
    return line * size


async def measure(protocol: Protocol, clients: int, senders: int, batch: int, rounds: int) -> float:
    """CPU seconds per message over ``rounds`` rounds (after a warm-up)."""
    config = ServerConfig(port=0, flood_rate=0, default_rooms=())
    hub = Hub(config, MemoryStore())
    conns: list[tuple[Connection, CountingTransport]] = []
    async with anyio.create_task_group() as tg:
        hub.task_group = tg
        tg.start_soon(hub.committer.run)
        for i in range(clients):
            transport = CountingTransport(f"client{i}", counting=i == clients - 1)
            conn = Connection(
                transport,  # type: ignore[arg-type]
                codec_for(protocol, hub.codec_settings),
                max_queue_bytes=config.max_queue_bytes,
                on_dirty=hub.mark_dirty,
            )
            assert hub.admit(conn) is None
            greeting = conn.codec.greeting()
            if greeting:
                await hub.run_commands(conn, greeting)
            await hub.receive(conn, _register(protocol, f"u{i:03d}"))
            conns.append((conn, transport))
        hub.flush()
        await anyio.lowlevel.checkpoint()
        batches = [_batch(protocol, s, batch) for s in range(senders)]

        async def run(n: int) -> None:
            for _ in range(n):
                for s in range(senders):
                    await hub.receive(conns[s][0], batches[s])
                hub.flush()
                await anyio.lowlevel.checkpoint()  # the loop's turn (a store that waits: commit)
            await anyio.lowlevel.checkpoint()

        await run(max(rounds // 10, 10))  # warm-up: caches, the first encodings
        receiver = conns[-1][1]
        before = receiver.lines
        started = time.process_time()
        await run(rounds)
        spent = time.process_time() - started
        heard = receiver.lines - before
        tg.cancel_scope.cancel()
    sent = rounds * senders * batch
    if heard != sent:
        raise SystemExit(f"the last client heard {heard} lines, {sent} were sent")
    return spent / sent


def _profile(protocol: Protocol, args: argparse.Namespace) -> None:
    # This folder's profile.py would shadow the standard library's, which cProfile imports.
    here = str(Path(__file__).resolve().parent)
    sys.path[:] = [p for p in sys.path if p and str(Path(p).resolve()) != here]
    import cProfile
    import pstats

    profiler = cProfile.Profile()
    profiler.enable()
    anyio.run(
        measure, protocol, args.clients, args.senders, args.batch, args.rounds, backend=args.backend
    )
    profiler.disable()
    messages = (args.rounds + max(args.rounds // 10, 10)) * args.senders * args.batch
    stats = pstats.Stats(profiler).sort_stats("tottime")
    print(f"{protocol.value}: calls per message, share of own time")
    total = sum(row[2] for row in stats.stats.values())  # type: ignore[attr-defined]
    for func in stats.fcn_list[: args.profile]:  # type: ignore[attr-defined]
        _cc, calls, own, _cum, _callers = stats.stats[func]  # type: ignore[attr-defined]
        where = f"{func[0].rsplit('/', 1)[-1]}:{func[1]} {func[2]}"
        print(f"  {calls / messages:8.2f}  {own / total:6.1%}  {where}")


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--protocol", choices=["irc", "jsonl", "both"], default="both")
    parser.add_argument("--clients", type=int, default=50)
    parser.add_argument("--senders", type=int, default=5)
    parser.add_argument("--batch", type=int, default=16)
    parser.add_argument("--rounds", type=int, default=400)
    parser.add_argument("--repeat", type=int, default=7)
    parser.add_argument("--backend", default="asyncio", choices=["asyncio", "trio"])
    parser.add_argument(
        "--profile",
        type=int,
        metavar="N",
        default=0,
        help="instead: one run under cProfile, its N costliest functions with calls per message",
    )
    args = parser.parse_args()
    logging.disable(logging.WARNING)  # the token secret's warning: no logins here
    protocols = (
        [Protocol.IRC, Protocol.JSONL] if args.protocol == "both" else [Protocol(args.protocol)]
    )
    print(
        f"{args.clients} clients in {ROOM}, {args.senders} senders, batches of {args.batch}, "
        f"{args.rounds} rounds, best of {args.repeat} ({args.backend}; {sys.version.split()[0]})"
    )
    if args.profile:
        for protocol in protocols:
            _profile(protocol, args)
        return 0
    for protocol in protocols:
        best = min(
            anyio.run(
                measure,
                protocol,
                args.clients,
                args.senders,
                args.batch,
                args.rounds,
                backend=args.backend,
            )
            for _ in range(args.repeat)
        )
        per_delivery = best / (args.clients - 1)
        print(
            f"{protocol.value:6} {best * 1e6:7.2f} µs per message   "
            f"{per_delivery * 1e9:6.1f} ns per delivery   "
            f"({1 / per_delivery / 1e6:.2f}M deliveries per CPU-second)"
        )
    return 0


if __name__ == "__main__":
    sys.exit(main())
