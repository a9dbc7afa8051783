"""Group commit: messages that arrive while one transaction commits share the next one.

The broker delivers a message live at once and asks (with a :class:`~anychat.broker.Persist`
effect) for the sender's ack to wait until the message is stored. The committer collects those
requests; its task writes everything collected so far in one ``append_messages`` call (one
transaction, one fsync), then hands the acks back to the server. While that write is in progress,
new requests pile up and go into the next one. An idle server commits each message on its own
with no added latency; a busy one pays one fsync per batch instead of one per message. A store
whose appends never wait (the memory store: ``Store.instant_append``) needs no task: what is due
is stored in one call at the hub's next flush (:meth:`Committer.commit_due`). Nor does a store
whose appends run in a thread of its own (SQLite, PostgreSQL: ``Store.background_append``): the
hub's flush hands what is due to that thread unless a batch is in flight, and the batch's
callback, on the event loop, queues its acks, starts the next batch (everything that piled up
meanwhile) and flushes. No task wakes up per batch and none waits; at low load that saved
80-90 µs of the event loop's CPU per message (about a sixth of it with SQLite, measured in
docs/performance.md). A store with neither is awaited by the task.

When the store fails (disk full, file gone), the senders of that batch get an ``Error`` with the
stable code ``store_unavailable`` instead of an ack, the failure is logged once per outage (not
once per message), and live chat carries on; the first batch that commits again logs the recovery.
"""

from __future__ import annotations

import logging
import time
from collections import deque
from collections.abc import Callable
from functools import partial
from typing import Any, Generic, TypeVar

import anyio

from . import model as m
from .effects import Persist
from .errors import StoreError
from .metrics import Histogram
from .store import BackgroundAppend, Store

__all__ = ["Committer"]

logger = logging.getLogger("anychat.store")

P = TypeVar("P")

#: Upper bound of one transaction, so a huge backlog still commits in bounded steps.
MAX_BATCH = 5000


class Committer(Generic[P]):
    """Owns the queue of messages waiting for the disk and the task that writes them.

    Args:
        store: Where messages go.
        unstored: Called with the requests of a batch that failed (so their idempotency keys
            are forgotten and a resend is stored after all).
        settle: Called after each batch with ``(peer, event)`` pairs: the ack, or an error event
            when the batch could not be stored. Must not block; queues, never sends.
        flush: Sends what ``settle`` queued, after a batch the committer's task wrote.
        settled_id: The last id already in the store.
    """

    def __init__(
        self,
        store: Store,
        settle: Callable[[list[tuple[P, m.Event]]], None],
        *,
        flush: Callable[[], None] = lambda: None,
        settled_id: int = 0,
        unstored: Callable[[list[Persist[P]]], None] | None = None,
    ) -> None:
        self._store = store
        self._instant = store.instant_append()
        #: The store's way to append without awaiting, bound to the loop once the task runs.
        self._background: BackgroundAppend | None = None
        #: A background batch is being written: what is due waits in ``_pending`` for it.
        self._in_flight = False
        #: Set (for the task's last words) each time a background batch lands.
        self._landed_event: anyio.Event | None = None
        self._settle = settle
        self._flush = flush
        self._unstored = unstored
        #: Ids of recent messages that could not be stored: a resend of one is not acked.
        self._failed: deque[range] = deque(maxlen=1000)
        self._pending: list[Persist[P]] = []
        #: Messages for an instant store, stored at the next flush (:meth:`commit_due`).
        self.due: list[Persist[P]] = []
        self._wake = anyio.Event()
        #: Every message id up to this one has been written or has failed for good.
        self.settled_id = settled_id
        self._waiters: list[tuple[int, anyio.Event]] = []
        self.failing = False
        #: How long each successful batch took to write (``/metrics``).
        self.latency = Histogram()

    def persist(self, effect: Persist[P]) -> None:
        """Queue one message (never blocks; called from the broker's effects).

        With a store whose appends never wait (``Store.instant_append``) or run in a thread
        of their own (``Store.background_append``) it waits in :attr:`due` instead, for the
        caller's flush: the hub's flush stores everything due in one call, or starts its
        batch, before it sends (:meth:`commit_due`). No turn of the committer's task per
        message at low load, and one append per batch at load, as with the task (whoever
        applies effects flushes after them).
        """
        if self._instant is not None or self._background is not None:
            self.due.append(effect)
            return
        self._pending.append(effect)
        self._wake.set()

    def commit_due(self) -> None:
        """Store what waits in :attr:`due` and queue its acks (no flush: the caller's), or
        hand it to the store's thread behind the batch in flight."""
        batch = self.due
        if batch:
            self.due = []
            if self._instant is not None:
                self._finish(batch, self._store_instantly(batch))
            else:
                self._pending += batch
                if not self._in_flight:
                    self._start_batch()

    async def wait_settled(self, message_id: int) -> None:
        """Wait until every message up to ``message_id`` is stored (or has failed)."""
        if message_id > self.settled_id:
            self.commit_due()  # never left waiting for a flush (its acks go with the next)
        if message_id <= self.settled_id:
            return
        event = anyio.Event()
        self._waiters.append((message_id, event))
        await event.wait()

    async def run(self) -> None:
        """The committer task: runs until cancelled, then writes what is still queued.

        With a store that appends in the background it only binds that to this event loop
        and, at the end, waits for the last batches to land.
        """
        if self._instant is None:
            self._background = self._store.background_append()
        try:
            if self._background is not None:
                if self._pending:  # persisted before the task started
                    self._start_batch()
                await anyio.sleep_forever()
            while True:
                await self._wake.wait()
                self._wake = anyio.Event()
                while self._pending:
                    await self._commit_some()
        finally:
            self.commit_due()
            if self._pending or self._in_flight:
                with anyio.CancelScope(shield=True), anyio.move_on_after(5):
                    while self._in_flight:
                        self._landed_event = anyio.Event()
                        await self._landed_event.wait()
                    while self._pending:  # the task's own queue (a store it awaits)
                        await self._commit_some()
            self._background = None

    def _start_batch(self) -> None:
        """Hand the next batch to the store's thread (nothing is in flight)."""
        assert self._background is not None
        while self._pending and not self._in_flight:
            batch = self._pending[:MAX_BATCH]
            del self._pending[:MAX_BATCH]
            # A resend (same idempotency key) writes nothing: see _commit_some.
            messages = [p.message for p in batch if not p.resent]
            if not messages:
                self._finish(batch, None)
                continue
            self._in_flight = True
            try:
                self._background(messages, partial(self._landed, batch, time.perf_counter()))
            except Exception as exc:  # closed; or a store bug, which must not stop the server
                if not isinstance(exc, StoreError):
                    logger.exception("unexpected error from the message store")
                self._in_flight = False
                self._finish(batch, exc)

    def _landed(self, batch: list[Persist[P]], started: float, error: BaseException | None) -> None:
        """A background batch is written (or failed): on the event loop, from its thread."""
        self._in_flight = False
        try:
            if error is None:
                self.latency.observe(time.perf_counter() - started)
            elif not isinstance(error, StoreError):
                logger.error("unexpected error from the message store", exc_info=error)
            self._finish(batch, error)
            if self._pending:
                self._start_batch()
            self._flush()
        except Exception:  # a loop callback: nothing above it would say what went wrong
            logger.exception("error answering a stored batch")
        finally:
            if self._landed_event is not None:
                self._landed_event.set()

    async def _commit_some(self) -> None:
        batch = self._pending[:MAX_BATCH]
        del self._pending[:MAX_BATCH]
        error: Exception | None = None
        started = time.perf_counter()
        try:
            # A resend (same idempotency key) writes nothing: its original is stored already,
            # or is in this batch or an earlier one.
            await self._store.append_messages([p.message for p in batch if not p.resent])
            self.latency.observe(time.perf_counter() - started)
        except StoreError as exc:
            error = exc
        except Exception as exc:  # a store bug must not take the server down with it
            logger.exception("unexpected error from the message store")
            error = exc
        self._finish(batch, error)
        self._flush()

    def _store_instantly(self, batch: list[Persist[P]]) -> Exception | None:
        assert self._instant is not None
        started = time.perf_counter()
        try:
            self._instant([p.message for p in batch if not p.resent])
        except StoreError as exc:
            return exc
        except Exception as exc:  # a store bug must not take the server down with it
            logger.exception("unexpected error from the message store")
            return exc
        self.latency.observe(time.perf_counter() - started)
        return None

    def _finish(self, batch: list[Persist[P]], error: BaseException | None) -> None:
        """Answer a written (or failed) batch: acks or refusals, and the waiters it settles."""
        results: list[tuple[P, Any]] = []
        if error is None:
            if self.failing:
                self.failing = False
                logger.warning("message store recovered; messages are being stored again")
            results = [
                (p.peer, self._refusal(p.ack.ref) if p.resent and self._lost(p) else p.ack)
                for p in batch
            ]
        else:
            ids = [p.message.id for p in batch if not p.resent]  # ascending: assigned in order
            if ids:
                self._failed.append(range(ids[0], ids[-1] + 1))
            if self._unstored is not None:
                self._unstored(batch)
            if not self.failing:
                self.failing = True
                logger.error(
                    "message store failed: %s; chat continues live, but messages are not "
                    "stored and their senders are told so until it recovers",
                    error,
                )
            results = [(p.peer, self._refusal(p.ack.ref)) for p in batch]
        self.settled_id = max(self.settled_id, max(p.message.id for p in batch))
        self._settle(results)
        if self._waiters:
            still = []
            for upto, event in self._waiters:
                if upto <= self.settled_id:
                    event.set()
                else:
                    still.append((upto, event))
            self._waiters = still

    def _lost(self, resend: Persist[P]) -> bool:
        """Whether the original of a resend was in a batch that failed."""
        msg_id = resend.message.id
        return any(msg_id in failed for failed in self._failed)

    @staticmethod
    def _refusal(ref: m.Ref) -> m.Error:
        return m.Error(
            code=m.ErrorCode.STORE_UNAVAILABLE,
            text="message delivered live but not stored: the server cannot write its "
            "history right now",
            ref=ref,
        )
