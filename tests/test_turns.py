"""The low-load path: a message handled, stored and answered in one turn of the event loop.

What these check is what lets one client at a time cost one turn per message without giving up
anything at load: the flush at the end of a turn is one for all readers (``anychat.turns``),
parking counts the readers it woke so a reader can tell it is alone, the stale input call after
a wake on asyncio's own loops is skipped (never lost), and with the memory store a message is
stored and its ack queued at the reader's own flush (``Committer`` with ``instant_append``),
one append for a whole batch, failures included.
"""

from __future__ import annotations

import asyncio
import json
import socket
from collections.abc import AsyncIterator, Iterator
from contextlib import asynccontextmanager, contextmanager
from typing import Any

import anyio
import pytest
from anyio.abc import TaskGroup

import anychat
from anychat import model as m
from anychat.codecs.jsonl import JsonServerCodec
from anychat.committer import Committer
from anychat.connection import Connection
from anychat.parking import Parking, _input
from anychat.store.memory import MemoryStore
from anychat.transport import TcpTransport
from anychat.turns import Turns, turns_here

from .helpers import LineClient, persist_effect


def _asyncio_only(anyio_backend: Any) -> None:
    """Parking's count and the end-of-turn callback are asyncio's (and uvloop's)."""
    if anyio_backend[0] != "asyncio":
        pytest.skip("asyncio's parking and loop callbacks (trio yields instead)")


@contextmanager
def _connection() -> Iterator[tuple[Connection, socket.socket]]:
    ours, theirs = socket.socketpair()
    ours.setblocking(False)
    conn = Connection(
        TcpTransport(ours, ("127.0.0.1", 1)),
        JsonServerCodec(),
        max_queue_bytes=1 << 20,
        on_dirty=lambda _: None,
    )
    try:
        yield conn, theirs
    finally:
        assert isinstance(conn.transport, TcpTransport)
        conn.transport.unwatch()
        ours.close()
        theirs.close()


@asynccontextmanager
async def _parking_here(anyio_backend: Any) -> AsyncIterator[tuple[Parking, Connection, TaskGroup]]:
    """asyncio's parking on the running loop, and a connection over a socket pair."""
    _asyncio_only(anyio_backend)
    with _connection() as (conn, _theirs), anyio.fail_after(5):
        async with anyio.create_task_group() as tg:
            yield Parking(asyncio.get_running_loop(), tg, 60), conn, tg


async def test_flush_soon_is_one_flush_after_the_turn(anyio_backend: Any) -> None:
    _asyncio_only(anyio_backend)
    flushes: list[str] = []
    turns = turns_here(lambda: flushes.append("flush"))
    assert turns.can_flush_soon
    turns.flush_soon()
    turns.flush_soon()
    turns.flush_soon()
    assert flushes == []  # not before this task lets the turn end
    await turns.checkpoint()
    await turns.checkpoint()
    assert flushes == ["flush"]
    turns.flush_soon()  # due again once it ran
    await turns.checkpoint()
    await turns.checkpoint()
    assert flushes == ["flush", "flush"]


async def test_without_a_loop_callback_nobody_is_alone(anyio_backend: Any) -> None:
    """Trio (and a hub before its server starts) cannot tell: readers yield, as before."""
    turns = Turns(lambda: None)
    assert not turns.can_flush_soon
    assert not turns.alone(0)
    here = turns_here(lambda: None)
    assert here.alone(0) is here.can_flush_soon
    assert not here.alone(1) and not here.alone(-1)
    await here.checkpoint()  # the loop's own, whichever it is


async def test_input_wakes_a_reader_once_and_the_count_follows(anyio_backend: Any) -> None:
    async with _parking_here(anyio_backend) as (parking, conn, tg):
        assert parking.woken == 0
        stale = parking.stale_after_wake
        assert stale is (not anyio_backend[1].get("use_uvloop"))
        results: list[bool] = []

        async def wait() -> None:
            results.append(await parking.wait_readable(conn))

        tg.start_soon(wait)
        await anyio.lowlevel.checkpoint()
        assert conn.waiter is not None
        _input(parking, conn)
        assert parking.woken == 1  # woken, not run yet
        while not results:
            await anyio.lowlevel.checkpoint()
        assert results == [True] and parking.woken == 0

        # The next wait: on asyncio's own loop the first call after a wake was polled
        # before the reader read, so it is skipped; the one after it wakes the reader.
        tg.start_soon(wait)
        await anyio.lowlevel.checkpoint()
        _input(parking, conn)
        if stale:
            assert parking.woken == 0 and conn.waiter is not None
            _input(parking, conn)
        assert parking.woken == 1
        while len(results) < 2:
            await anyio.lowlevel.checkpoint()
        assert results == [True, True] and parking.woken == 0


async def test_a_reader_cancelled_after_input_woke_it_is_not_left_counted(
    anyio_backend: Any,
) -> None:
    async with _parking_here(anyio_backend) as (parking, conn, tg):
        ended = anyio.Event()

        async def wait(scope: anyio.CancelScope) -> None:
            with scope:
                await parking.wait_readable(conn)
            ended.set()

        scope = anyio.CancelScope()
        tg.start_soon(wait, scope)
        await anyio.lowlevel.checkpoint()
        _input(parking, conn)
        scope.cancel()  # before the woken reader runs
        assert parking.woken == 1
        await ended.wait()
        assert parking.woken == 0 and conn.waiter is None


async def test_one_at_a_time_and_all_at_once_everything_arrives(anyio_backend: Any) -> None:
    """Through a real server: a ping-pong (each reader alone in its turn, flushing at once),
    then both speaking in bursts at the same time (readers sharing turns and flushes)."""
    async with anychat.serve(port=0, database_url="memory://", flood_rate=0) as server:
        with anyio.fail_after(20):
            ada = await LineClient.open(server.port)
            await ada.send_json(type="hello", nick="ada")
            await ada.json_event("members")
            bob = await LineClient.open(server.port)
            await bob.send_json(type="hello", nick="bob")
            await bob.json_event("members")
            await ada.json_event("joined")  # bob's join, so nothing for ada is still to come
            for i in range(50):
                speaker, hearer = (ada, bob) if i % 2 == 0 else (bob, ada)
                await speaker.send_json(type="say", to="#general", text=f"m{i}", ref=i)
                assert (await speaker.json_event("ack"))["ref"] == i
                assert (await hearer.json_event("message"))["text"] == f"m{i}"
            for client in (ada, bob):
                burst = "".join(
                    f'{{"type":"say","to":"#general","text":"{client is ada}{i}","ref":{i}}}\n'
                    for i in range(200)
                )
                await client.send(burst.encode())
            for client, other in ((ada, bob), (bob, ada)):
                heard: list[str] = []
                acks: list[int] = []
                while len(heard) + len(acks) < 400:
                    event = json.loads(await client.line())
                    if event["type"] == "message":
                        heard.append(event["text"])
                    elif event["type"] == "ack":
                        acks.append(event["ref"])
                assert heard == [f"{other is ada}{i}" for i in range(200)]
                assert acks == list(range(200))
            await ada.aclose()
            await bob.aclose()


async def test_the_memory_store_acks_in_the_callers_turn(anyio_backend: Any) -> None:
    store = MemoryStore()
    settled: list[list[tuple[str, m.Event]]] = []
    flushes: list[int] = []
    committer: Committer[str] = Committer(store, settled.append, flush=lambda: flushes.append(1))
    committer.persist(persist_effect(1))
    committer.persist(persist_effect(2, "bob"))
    assert settled == [] and len(committer.due) == 2  # due at the caller's flush
    committer.commit_due()
    # Stored in one append and answered there; the caller sends (the hub's flush does).
    assert settled == [[("ada", persist_effect(1).ack), ("bob", persist_effect(2, "bob").ack)]]
    assert flushes == [] and committer.settled_id == 2 and committer.due == []
    assert [msg.id for msg in await store.history("#g", limit=10)] == [1, 2]
    with anyio.fail_after(5):
        await committer.wait_settled(2)  # settled already: no wait
    committer.commit_due()  # nothing due: nothing answered
    assert len(settled) == 1


async def test_the_memory_store_failing_in_the_callers_turn_refuses_the_ack(
    anyio_backend: Any, caplog: pytest.LogCaptureFixture
) -> None:
    store = MemoryStore()
    settled: list[tuple[str, m.Event]] = []
    committer: Committer[str] = Committer(store, settled.extend)
    await store.aclose()
    committer.persist(persist_effect(1))
    committer.commit_due()
    ((peer, event),) = settled
    assert peer == "ada"
    assert isinstance(event, m.Error) and event.code is m.ErrorCode.STORE_UNAVAILABLE
    assert event.ref == 1
    assert committer.failing and committer.settled_id == 1
    assert "message store failed" in caplog.text


async def test_a_store_that_changes_its_append_is_awaited(anyio_backend: Any) -> None:
    """A store subclass with an append of its own (a slow or failing one) never takes the
    instant path, so what it does is what the committer sees."""

    class Slow(MemoryStore):
        async def append_messages(self, messages: Any) -> None:
            await anyio.lowlevel.checkpoint()
            await super().append_messages(messages)

    assert MemoryStore().instant_append() is not None
    assert Slow().instant_append() is None
    settled: list[tuple[str, m.Event]] = []
    committer: Committer[str] = Committer(Slow(), settled.extend)
    with anyio.fail_after(5):
        async with anyio.create_task_group() as tg:
            tg.start_soon(committer.run)
            committer.persist(persist_effect(1))
            assert settled == []  # waits for the committer's task
            await committer.wait_settled(1)
            assert settled == [("ada", persist_effect(1).ack)]
            tg.cancel_scope.cancel()
