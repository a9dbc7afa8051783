"""The committer with a store that appends in its own thread (SQLite): no task waits per batch.

The hub's flush hands what is due to the store's thread (``Store.background_append``); the
batch's callback, on the event loop, answers it, starts the batch that piled up meanwhile and
flushes. These check the group commit that gives, that an ack still means committed, that a
closed store refuses at once, and that a server stopping with batches in flight and queued
still stores and answers all of them (a bug in the store's thread costing its batch only is
checked in ``tests/test_store_faults.py``).
"""

from __future__ import annotations

import threading
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from pathlib import Path
from typing import Any, cast

import anyio

from anychat import model as m
from anychat.committer import Committer
from anychat.store.sqlite import SqliteStore

from .helpers import persist_effect


class _GatedSqlite(SqliteStore):
    """SQLite whose appends wait in the store's thread until the test opens the gate."""

    gate: threading.Event
    batches: list[list[int]]

    def _append(self, rows: list[tuple[object, ...]], db: Any) -> None:
        self.batches.append([cast(int, row[0]) for row in rows])
        self.gate.wait(10)
        super()._append(rows, db)


@asynccontextmanager
async def _gated(tmp_path: Path) -> AsyncIterator[_GatedSqlite]:
    store = await _GatedSqlite.open(str(tmp_path / "chat.db"))
    store.gate = threading.Event()
    store.batches = []
    try:
        yield store
    finally:
        store.gate.set()
        await store.aclose()


async def _stored_ids(store: SqliteStore) -> list[int]:
    return [msg.id for msg in await store.history("#g", limit=100)]


def _committer(
    store: SqliteStore, settled: list[tuple[str, m.Event]], flushes: list[int]
) -> Committer[str]:
    return Committer(store, settled.extend, flush=lambda: flushes.append(len(settled)))


async def test_what_arrives_during_a_commit_goes_into_the_next_one(
    anyio_backend: Any, tmp_path: Path
) -> None:
    settled: list[tuple[str, m.Event]] = []
    flushes: list[int] = []
    async with _gated(tmp_path) as store:
        committer = _committer(store, settled, flushes)
        with anyio.fail_after(10):
            async with anyio.create_task_group() as tg:
                tg.start_soon(committer.run)
                await anyio.wait_all_tasks_blocked()  # the task has bound the store to this loop
                committer.persist(persist_effect(1))
                assert committer.due and store.batches == []  # waits for the caller's flush
                committer.commit_due()
                for msg_id in (2, 3, 4):  # while 1 is in the thread
                    committer.persist(persist_effect(msg_id))
                    committer.commit_due()
                committer.persist(persist_effect(5, resent=True))  # a resend: answered, not written
                committer.commit_due()
                assert settled == [] and committer.settled_id == 0  # no ack before the disk
                store.gate.set()
                await committer.wait_settled(5)
                tg.cancel_scope.cancel()
        assert store.batches == [[1], [2, 3, 4]]
        assert [peer for peer, _ in settled] == ["ada"] * 5
        assert [event for _, event in settled] == [persist_effect(i).ack for i in range(1, 6)]
        assert flushes == [1, 5]  # each landed batch flushed its answers once
        assert await _stored_ids(store) == [1, 2, 3, 4]


async def test_a_stopping_server_stores_and_answers_what_is_in_flight_and_queued(
    anyio_backend: Any, tmp_path: Path
) -> None:
    settled: list[tuple[str, m.Event]] = []
    flushes: list[int] = []
    async with _gated(tmp_path) as store:
        committer = _committer(store, settled, flushes)
        stopped = anyio.Event()
        scope = anyio.CancelScope()

        async def committer_task() -> None:
            with scope:
                await committer.run()
            stopped.set()

        with anyio.fail_after(10):
            async with anyio.create_task_group() as tg:
                tg.start_soon(committer_task)
                await anyio.wait_all_tasks_blocked()
                committer.persist(persist_effect(1))
                committer.commit_due()  # in the thread, held at the gate
                committer.persist(persist_effect(2))
                committer.commit_due()  # queued behind it
                committer.persist(persist_effect(3))  # due, not yet handed over
                scope.cancel()
                await anyio.wait_all_tasks_blocked()
                assert not stopped.is_set() and settled == []  # waits for the disk
                store.gate.set()
                await stopped.wait()
        assert store.batches == [[1], [2, 3]]
        assert [event for _, event in settled] == [persist_effect(i).ack for i in (1, 2, 3)]
        assert await _stored_ids(store) == [1, 2, 3]


async def test_a_closed_store_refuses_at_once(anyio_backend: Any, tmp_path: Path) -> None:
    settled: list[tuple[str, m.Event]] = []
    flushes: list[int] = []
    async with _gated(tmp_path) as store:
        store.gate.set()
        committer = _committer(store, settled, flushes)
        with anyio.fail_after(10):
            async with anyio.create_task_group() as tg:
                tg.start_soon(committer.run)
                await anyio.wait_all_tasks_blocked()
                await store.aclose()
                committer.persist(persist_effect(1))
                committer.commit_due()
                tg.cancel_scope.cancel()
        ((_, event),) = settled
        assert isinstance(event, m.Error) and event.code is m.ErrorCode.STORE_UNAVAILABLE
        assert committer.failing and committer.settled_id == 1
