"""What ``GET /metrics`` reports: a frozen snapshot of the server's counters, as Prometheus text.

Pure (no I/O, no clock): the server glue keeps the counters and hands the HTTP codec a callable
returning a :class:`ServerStats`; the codec renders it with :func:`render_prometheus` when asked.
That keeps the counting on the hot path to a few integer additions, and the formatting (which
is slow) to the rare scrape.

Format: the Prometheus text exposition format, version 0.0.4 (``# HELP``, ``# TYPE``, one
sample per line, label values escaped, histogram buckets cumulative with ``le="+Inf"`` last).
"""

from __future__ import annotations

from bisect import bisect_left
from collections.abc import Mapping
from dataclasses import dataclass, field
from typing import Final

__all__ = [
    "COMMIT_BUCKETS",
    "CONTENT_TYPE",
    "Histogram",
    "ServerStats",
    "render_prometheus",
]

CONTENT_TYPE: Final = "text/plain; version=0.0.4; charset=utf-8"

#: Upper bounds (seconds) of the store-commit latency buckets: an fsync takes from well under a
#: millisecond (memory, SSD with a cache) to hundreds (a busy disk), so the buckets span both.
COMMIT_BUCKETS: Final = (0.0005, 0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1.0, 2.5)


class Histogram:
    """A latency histogram with fixed buckets; :meth:`observe` costs one bisect."""

    __slots__ = ("_counts", "bounds", "count", "total")

    def __init__(self, bounds: tuple[float, ...] = COMMIT_BUCKETS) -> None:
        self.bounds = bounds
        self._counts = [0] * (len(bounds) + 1)  # the last one is +Inf
        self.count = 0
        self.total = 0.0

    def observe(self, seconds: float) -> None:
        self._counts[bisect_left(self.bounds, seconds)] += 1
        self.count += 1
        self.total += seconds

    def cumulative(self) -> tuple[int, ...]:
        """Counts of observations at or below each bound, then the total (``+Inf``)."""
        out: list[int] = []
        running = 0
        for n in self._counts:
            running += n
            out.append(running)
        return tuple(out)


@dataclass(frozen=True, slots=True, kw_only=True)
class ServerStats:
    """The server's state at one moment, as ``/metrics`` and ``/healthz`` report it."""

    #: False once shutdown began: ``/healthz`` answers 503 so a load balancer stops sending.
    serving: bool = True
    #: Open connections by protocol ("text", "jsonl", "irc", "http", "websocket"...).
    connections: Mapping[str, int] = field(default_factory=dict)
    rooms: int = 0
    #: Commands received from clients, and events delivered to clients (one per recipient).
    messages_in: int = 0
    messages_out: int = 0
    #: Clients cut for not reading their output ("send queue exceeded").
    slow_consumer_cuts: int = 0
    #: Connections parked without a reader task (asyncio and uvloop; docs/performance.md).
    parked_connections: int = 0
    #: Store commit latency: bucket bounds, cumulative counts (``+Inf`` last), count and sum.
    commit_bounds: tuple[float, ...] = COMMIT_BUCKETS
    commit_buckets: tuple[int, ...] = ()
    commit_count: int = 0
    commit_seconds: float = 0.0


def _label(value: str) -> str:
    """A label value as the text format wants it: backslash, quote and newline escaped."""
    return value.replace("\\", "\\\\").replace('"', '\\"').replace("\n", "\\n")


def _number(value: float) -> str:
    return repr(float(value)) if isinstance(value, float) else str(value)


def render_prometheus(stats: ServerStats, *, version: str = "") -> bytes:
    lines: list[str] = []

    def metric(name: str, kind: str, help_text: str) -> None:
        lines.append(f"# HELP {name} {help_text}")
        lines.append(f"# TYPE {name} {kind}")

    metric("anychat_up", "gauge", "1 while the server accepts clients, 0 while shutting down.")
    lines.append(f"anychat_up {1 if stats.serving else 0}")
    if version:
        metric("anychat_build_info", "gauge", "The running version, as a label.")
        lines.append(f'anychat_build_info{{version="{_label(version)}"}} 1')
    metric("anychat_connections", "gauge", "Open client connections by protocol.")
    for protocol in sorted(stats.connections):
        count = stats.connections[protocol]
        lines.append(f'anychat_connections{{protocol="{_label(protocol)}"}} {count}')
    metric("anychat_rooms", "gauge", "Rooms that exist now.")
    lines.append(f"anychat_rooms {stats.rooms}")
    metric("anychat_messages_in_total", "counter", "Commands (and HTTP requests) received.")
    lines.append(f"anychat_messages_in_total {stats.messages_in}")
    metric("anychat_messages_out_total", "counter", "Events delivered to clients.")
    lines.append(f"anychat_messages_out_total {stats.messages_out}")
    metric(
        "anychat_slow_consumer_cuts_total",
        "counter",
        "Clients disconnected because their unsent output passed the queue limit.",
    )
    lines.append(f"anychat_slow_consumer_cuts_total {stats.slow_consumer_cuts}")
    metric(
        "anychat_parked_connections",
        "gauge",
        "Idle connections watched by the event loop without a reader task of their own.",
    )
    lines.append(f"anychat_parked_connections {stats.parked_connections}")
    name = "anychat_store_commit_seconds"
    metric(name, "histogram", "Time to write one batch of messages to the store.")
    buckets = stats.commit_buckets or (0,) * (len(stats.commit_bounds) + 1)
    for bound, count in zip(stats.commit_bounds, buckets, strict=False):
        lines.append(f'{name}_bucket{{le="{_number(bound)}"}} {count}')
    lines.append(f'{name}_bucket{{le="+Inf"}} {buckets[-1]}')
    lines.append(f"{name}_sum {_number(stats.commit_seconds)}")
    lines.append(f"{name}_count {stats.commit_count}")
    lines.append("")
    return "\n".join(lines).encode()
