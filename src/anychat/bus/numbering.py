"""The messages a node handed to Redis and has not delivered here yet (bookkeeping only).

A message (to a room or a nick) is numbered by the batch script that publishes it, and
delivered here when it comes back from Redis (:mod:`anychat.bus.redis` says why; a private
message to another node comes back as its id alone, on this node's channel). Meanwhile it waits
here under its sequence number; the script's answer adds its id, which finishes it when it
never comes back: its room is no longer heard here, or the connection went first.
"""

from __future__ import annotations

from collections import deque
from collections.abc import Callable
from typing import Any, Final

import anyio

from ..effects import Broadcast

__all__ = ["MAX_UNNUMBERED", "Unnumbered"]

#: Messages waiting for their number before a sender's reader waits too.
MAX_UNNUMBERED: Final = 10_000


class Unnumbered:
    """Sequence number -> (the message's effect, its id once the script's answer says it)."""

    def __init__(self, limit: int = MAX_UNNUMBERED) -> None:
        self.limit = limit
        self._waiting: dict[int, tuple[Broadcast[Any], int]] = {}
        #: Sequence numbers (and channels) in the order queued: the script numbers them so.
        self._queued: deque[tuple[int, str]] = deque()
        self._seq = 0
        self._roomy = anyio.Event()  # set while fewer than ``limit`` wait

    def __len__(self) -> int:
        return len(self._waiting)

    def add(self, sent: Broadcast[Any], channel: str) -> int:
        """Wait for the number of ``sent`` (heard back on ``channel``); returns its sequence
        number (the payload carries it)."""
        self._seq = seq = self._seq + 1
        self._waiting[seq] = (sent, 0)
        self._queued.append((seq, channel))
        if len(self._waiting) >= self.limit and self._roomy.is_set():
            self._roomy = anyio.Event()
        return seq

    @property
    def crowded(self) -> bool:
        return len(self._waiting) >= self.limit

    async def wait_roomy(self) -> None:
        while len(self._waiting) >= self.limit:
            await self._roomy.wait()

    def take(self, seq: int) -> Broadcast[Any] | None:
        """The message ``seq`` is done (heard back, or answered): its effect, once."""
        entry = self._waiting.pop(seq, None)
        if len(self._waiting) < self.limit:
            self._roomy.set()
        return None if entry is None else entry[0]

    def answered(
        self, first_id: int, count: int, heard: Callable[[str], bool]
    ) -> list[tuple[int, int]]:
        """The script numbered the next ``count`` queued messages from ``first_id`` on:
        returns (sequence number, id) of those to finish now, whose channel is not ``heard``."""
        now = []
        for offset in range(count):
            seq, channel = self._queued.popleft()
            entry = self._waiting.get(seq)
            if entry is not None:
                self._waiting[seq] = (entry[0], first_id + offset)
                if not heard(channel):
                    now.append((seq, first_id + offset))
        return now

    def drop(self) -> tuple[list[tuple[Broadcast[Any], int]], list[Broadcast[Any]]]:
        """The connection is gone: (what Redis numbered, with its id; what it may not have)."""
        waiting, self._waiting = self._waiting, {}
        self._queued.clear()
        self._roomy.set()
        pending = [waiting[seq] for seq in sorted(waiting)]
        return [(s, i) for s, i in pending if i], [s for s, i in pending if not i]
