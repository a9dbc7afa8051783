"""The messages a node handed to Redis and has not finished here yet (bookkeeping only).

A message (to a room or a nick) is numbered by the batch script that publishes it, and
finished here (delivered to the members here, stored, acked) when it comes back from Redis
(:mod:`anychat.bus.redis` says why; a private message to another node comes back as its id
alone, on this node's channel). Each batch script also ends with a short note on this node's
channel naming the batch's messages and first id: the node hears it after every message of the
batch it will ever hear, since Redis delivers one subscriber's messages in publish order. So a
message that does not come back (its room's last member here left, or the node unsubscribed,
before the script ran) is known for lost at that note, not earlier (the script's answer comes on
another connection: an earlier message may still be on its way then) and not never (a room
heard again later hears nothing of what was published meanwhile).

Messages are finished strictly in the order they were queued, which is their id order: one that
is ready (heard, or named by its batch's note) waits until every earlier one is ready too. The
store therefore receives a node's messages in rising id order, whichever rooms they went to.
The script's answer records each message's id as well, so that a connection lost before the
note still finishes what Redis numbered (it was published); of a batch neither answered nor
heard of, whether it ran is for the next connection to find out (:mod:`anychat.bus.sending`).
"""

from __future__ import annotations

from collections import deque
from typing import Any, Final

import anyio

from ..effects import Broadcast

__all__ = ["MAX_UNNUMBERED", "Unnumbered"]

#: Messages waiting for their number before a sender's reader waits too.
MAX_UNNUMBERED: Final = 10_000


class _Waiting:
    """One message on its way: its id once known, and whether it may be finished."""

    __slots__ = ("id", "ready", "sent")

    def __init__(self, sent: Broadcast[Any]) -> None:
        self.sent = sent
        self.id = 0
        self.ready = False


class Unnumbered:
    """Sequence number -> the message's effect, its id, whether it is ready; in queue order."""

    def __init__(self, limit: int = MAX_UNNUMBERED) -> None:
        self.limit = limit
        self._waiting: dict[int, _Waiting] = {}
        #: Every waiting sequence number, oldest first: the order they are finished in.
        self._order: deque[int] = deque()
        #: Sequence numbers queued but not yet in a batch script (in queue order).
        self._unsent: deque[int] = deque()
        #: Batches sent whose answer has not come: (first sequence number, count), in order.
        self._unanswered: deque[tuple[int, int]] = deque()
        self._seq = 0
        #: The last message heard back (sequence number, id): its batch ran.
        self._last_heard = (0, 0)
        self._roomy = anyio.Event()  # set while fewer than ``limit`` wait

    def __len__(self) -> int:
        return len(self._waiting)

    def add(self, sent: Broadcast[Any]) -> int:
        """Wait for the number of ``sent``; returns its sequence number (the payload carries
        it, and its batch's note names it)."""
        self._seq = seq = self._seq + 1
        self._waiting[seq] = _Waiting(sent)
        self._order.append(seq)
        self._unsent.append(seq)
        if len(self._waiting) >= self.limit and self._roomy.is_set():
            self._roomy = anyio.Event()
        return seq

    @property
    def crowded(self) -> bool:
        return len(self._waiting) >= self.limit

    async def wait_roomy(self) -> None:
        while len(self._waiting) >= self.limit:
            await self._roomy.wait()

    def sent(self, count: int) -> int:
        """The next ``count`` queued messages go out in one script call (they were queued
        together, so their sequence numbers follow each other): the first one's."""
        first = self._unsent[0]
        for _ in range(count):
            self._unsent.popleft()
        self._unanswered.append((first, count))
        return first

    def answered(self, first_id: int) -> None:
        """The oldest unanswered batch was numbered from ``first_id`` on (so it was published:
        what a lost connection finishes rather than refuses)."""
        first, count = self._unanswered.popleft()
        self._number(first, count, first_id, ready=False)

    def heard(self, seq: int, msg_id: int) -> list[tuple[Broadcast[Any], int]]:
        """Message ``seq`` came back with ``msg_id``: what may be finished now, in order."""
        entry = self._waiting.get(seq)
        if entry is None:
            return []
        entry.id, entry.ready = msg_id, True
        self._last_heard = (seq, msg_id)
        return self._release()

    def batch_heard(
        self, first: int, count: int, first_id: int
    ) -> list[tuple[Broadcast[Any], int]]:
        """The note of the batch of ``count`` messages from sequence number ``first``: what
        of it was not heard back never will be; what may be finished now, in order."""
        self._number(first, count, first_id, ready=True)
        return self._release()

    def _number(self, first: int, count: int, first_id: int, *, ready: bool) -> None:
        waiting = self._waiting
        for offset in range(count):
            entry = waiting.get(first + offset)
            if entry is not None and not entry.ready:
                entry.id = first_id + offset
                entry.ready = ready

    def _release(self) -> list[tuple[Broadcast[Any], int]]:
        order, waiting, done = self._order, self._waiting, []
        while order and waiting[order[0]].ready:
            entry = waiting.pop(order.popleft())
            done.append((entry.sent, entry.id))
        if len(waiting) < self.limit:
            self._roomy.set()
        return done

    def drop(
        self,
    ) -> tuple[
        list[tuple[Broadcast[Any], int]],
        list[tuple[int, list[tuple[int, Broadcast[Any]]]]],
        list[Broadcast[Any]],
    ]:
        """The connection is gone: (what Redis numbered, with its id; the batches it may have
        run or not: first sequence number and (place in it, message) each; what never went
        out), each in queue order. A batch is known to have run if its answer came or any of
        it was heard back."""
        waiting, (heard_seq, heard_id) = self._waiting, self._last_heard
        doubtful = []
        for first, count in self._unanswered:
            if first <= heard_seq < first + count:  # it ran: its ids follow from this one
                self._number(first, count, heard_id - (heard_seq - first), ready=False)
            else:
                sents = [(s - first, waiting[s].sent) for s in range(first, first + count)]
                doubtful.append((first, sents))
        unsent = set(self._unsent)
        pending = [(seq, waiting[seq]) for seq in self._order]
        self._waiting = {}
        self._order.clear()
        self._unsent.clear()
        self._unanswered.clear()
        self._roomy.set()
        return (
            [(e.sent, e.id) for _, e in pending if e.id],
            doubtful,
            [e.sent for seq, e in pending if seq in unsent],
        )
