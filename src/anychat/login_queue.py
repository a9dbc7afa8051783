"""Who gets an account's next password check when many ask at once.

:class:`~anychat.auth.AccountGate` allows one check per account per interval, whoever asks.
Left at that, an attacker's two hundred queued guesses would make the account's owner wait
behind all of them. So the waiters for an account form a priority queue: an address with no
recent failures and nothing else queued for this account goes first, then addresses by how many
attempts they already have in line, oldest first within each. Someone who waits too long is
turned away (briefly for addresses with failures, longer for clean ones), so the queue and the
attacker's connections cost the attacker, not the server.
"""

from __future__ import annotations

import heapq
import itertools
from collections import Counter
from typing import Final

import anyio

from . import model as m
from .auth import AccountGate, LoginThrottle

__all__ = ["LoginQueue"]

#: A waiter that is not first in line looks again at least this often.
_RECHECK: Final = 0.01


class LoginQueue:
    def __init__(
        self,
        gate: AccountGate,
        throttle: LoginThrottle,
        *,
        max_wait_seconds: float = 10.0,
        max_clean_wait_seconds: float = 30.0,
    ) -> None:
        self.gate = gate
        self.throttle = throttle
        self.max_wait_seconds = max_wait_seconds
        self.max_clean_wait_seconds = max_clean_wait_seconds
        self._lines: dict[str, list[list[object]]] = {}
        self._queued: dict[str, Counter[str]] = {}
        self._order = itertools.count()

    async def turn(self, nick: str, host: str) -> bool:
        """Wait for this attempt's password check; False = turned away (try later)."""
        key = m.casefold(nick)
        line = self._lines.setdefault(key, [])
        if not line and not self.gate.try_start(nick):
            return True
        queued = self._queued.setdefault(key, Counter())
        suspect = self.throttle.failures(host) > 0
        entry: list[object] = [(suspect, queued[host], next(self._order)), host]
        queued[host] += 1
        heapq.heappush(line, entry)
        deadline = anyio.current_time() + (
            self.max_wait_seconds if suspect else self.max_clean_wait_seconds
        )
        try:
            while True:
                if line[0] is entry:
                    wait = self.gate.try_start(nick)
                    if not wait:
                        return True
                else:
                    wait = max(self.gate.remaining(nick), _RECHECK)
                if anyio.current_time() + wait > deadline:
                    return False
                await anyio.sleep(wait)
        finally:
            line.remove(entry)
            heapq.heapify(line)
            queued[host] -= 1
            if not line:
                del self._lines[key]
                del self._queued[key]
