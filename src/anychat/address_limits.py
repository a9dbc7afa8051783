"""Per-address connection limits: how many at once, and how fast new ones may come.

One address opening thousands of silent connections must not lock real users out, so each
address may hold ``max_per_address`` connections at once and open new ones at ``rate`` per
second on average (bursts up to ``burst``), like the established IRC servers' per-host limits.
Loopback is exempt by default: it is the machine's own users and a local reverse proxy (whose
clients all share its address). Pure: the clock is injected.
"""

from __future__ import annotations

import time
from collections.abc import Callable, Iterable
from dataclasses import dataclass

__all__ = ["AddressLimits"]

_MAX_HOSTS = 100_000


@dataclass(slots=True)
class _Host:
    open: int = 0
    tokens: float = 0.0
    stamp: float = 0.0


class AddressLimits:
    def __init__(
        self,
        *,
        max_per_address: int,
        rate: float,
        burst: int,
        exempt: Iterable[str] = (),
        clock: Callable[[], float] = time.monotonic,
    ) -> None:
        self.max_per_address = max_per_address
        self.rate = rate
        self.burst = burst
        self.exempt = frozenset(exempt)
        self._clock = clock
        self._hosts: dict[str, _Host] = {}

    def admit(self, host: str) -> str | None:
        """Count a new connection from ``host``, or say why it is refused (then not counted)."""
        if host in self.exempt:
            return None
        now = self._clock()
        entry = self._hosts.get(host)
        if entry is None:
            if len(self._hosts) >= _MAX_HOSTS:  # forget hosts with nothing open: bounded memory
                self._hosts = {h: e for h, e in self._hosts.items() if e.open > 0}
            entry = self._hosts[host] = _Host(tokens=float(self.burst), stamp=now)
        if self.max_per_address and entry.open >= self.max_per_address:
            return f"too many connections from your address (at most {self.max_per_address})"
        if self.rate:
            entry.tokens = min(float(self.burst), entry.tokens + (now - entry.stamp) * self.rate)
            entry.stamp = now
            if entry.tokens < 1:
                return "connecting too fast from your address"
            entry.tokens -= 1
        entry.open += 1
        return None

    def release(self, host: str) -> None:
        entry = self._hosts.get(host)
        if entry is None:
            return
        entry.open -= 1
        refilled = not self.rate or (
            entry.tokens + (self._clock() - entry.stamp) * self.rate >= self.burst
        )
        if entry.open <= 0 and refilled:
            del self._hosts[host]  # idle with a full bucket: nothing worth remembering
