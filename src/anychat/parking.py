"""Idle connections without a task of their own.

An idle connection's reader is a task waiting for input, and on asyncio a task is most of what an
idle connection costs: AnyIO's task handle with its cancel scope and events, the asyncio task, the
wait's future and the coroutine frames, about 4 KiB of the 8 a quiet client held
(docs/performance.md, "Memory per idle connection"). A server holding 10,000 quiet IRC clients
holds 10,000 of those for nothing.

So a reader that has heard nothing for ``park_after_seconds`` hands its connection back: the idle
watcher wakes its wait with "park" (never a cancellation, so nothing the reader was doing can be
cut short), the reader's task ends, and the event loop watches the socket with
``loop.add_reader``. A reader also parks by itself at its client's first few quiet moments once
registered (``Connection.early_parks``): after a reconnect storm, every client waiting in a task
for the idle watcher is a peak the allocator keeps. The first bytes that arrive start a new
reader task for the same connection, which goes on exactly where the old one stopped (its
codec, its session and its output buffer never left the
:class:`~anychat.connection.Connection`). Output needs no task (fan-out sends
straight to the socket; a writer task starts only when the kernel's buffer is full), so a parked
connection still hears everything, and the idle watcher still pings it.

Ending a parked connection (a kick, a ping timeout, shutdown) runs its clean-up from the event loop
(``call_soon``), the same clean-up its reader would have run.

This module is the asyncio and uvloop way, where the event loop can watch a file descriptor with a
callback. Trio's readiness waits are for tasks only: there one task watches every parked socket
through a selector of its own (:mod:`anychat.parking_selector`); :func:`anychat.idle.parking_for`
picks.
Only plain TCP connections park; a TLS connection may hold decrypted input of its own, and keeps
its task.
"""

from __future__ import annotations

import asyncio
import asyncio.selector_events
from collections.abc import Callable, Coroutine
from typing import TYPE_CHECKING, Any

from .transport import TcpTransport
from .turns import on_asyncio

if TYPE_CHECKING:
    from anyio.abc import TaskGroup

    from .connection import Connection

__all__ = ["ParkedConnection", "Parking", "ReaderParking"]


class ReaderParking:
    """What the reader and the idle watcher ask of parking, on any event loop: the readiness
    waits of plain TCP readers, and their sockets watched while nobody reads."""

    def __init__(self, task_group: TaskGroup, after: float) -> None:
        #: Where a parked connection's new reader task starts (the server's task group).
        self.task_group = task_group
        #: Seconds without input after which a waiting reader is asked to park.
        self.after_seconds = after
        #: How many connections are parked now (``/metrics`` and the benchmarks read it).
        self.parked = 0
        #: Readers that input has woken and that have not run yet; -1 where not counted.
        #: With none, a reader flushes at once (nobody else will add to this turn's sends).
        self.woken = -1

    @staticmethod
    def can_park(conn: Connection) -> bool:
        return type(conn.transport) is TcpTransport

    async def wait_readable(self, conn: Connection) -> bool:
        """Wait for input: ``True`` when it came, ``False`` when the reader should park."""
        raise NotImplementedError

    def nudge(self, conn: Connection) -> bool:
        """Ask a waiting reader to park (from the idle watcher); ``False`` if none waits."""
        raise NotImplementedError

    def park(
        self,
        conn: Connection,
        resume: Callable[..., Coroutine[Any, Any, None]],
        end: Callable[..., None],
        args: tuple[Any, ...],
    ) -> None:
        """Watch ``conn``'s socket without a task: input starts ``resume(*args)`` in a new
        task; ending the connection meanwhile (its ``parked`` hook) runs ``end(*args)``
        later, outside whatever closed it."""
        raise NotImplementedError


class ParkedConnection:
    """One parked connection: what its socket's watch and its ``parked`` hook need.

    One small object (and the event loop's or the selector's entry) per parked connection is
    all that is left of its reader; closures would cost three function objects and their
    cells. Each way of parking says how the socket is forgotten (:meth:`_forget`) and how the
    clean-up runs later (:meth:`_end_later`).
    """

    __slots__ = ("args", "conn", "end", "parking", "resume", "watching")

    def __init__(
        self,
        parking: ReaderParking,
        conn: Connection,
        resume: Callable[..., Coroutine[Any, Any, None]],
        end: Callable[..., None],
        args: tuple[Any, ...],
    ) -> None:
        self.parking = parking
        self.conn = conn
        self.resume = resume
        self.end = end
        self.args = args
        self.watching = True
        parking.parked += 1
        conn.parked = self

    def unwatch(self) -> None:
        if self.watching:
            self.watching = False
            self.parking.parked -= 1
            self._forget()

    def ended(self) -> None:
        """The connection was closed while parked or waking: clean up later."""
        if self.conn.parked is not None:
            self.conn.parked = None
            self.unwatch()
            self._end_later()

    def readable(self) -> None:
        """Input came: a new reader task for the connection. The task may never run
        (shutdown cancels the group before it starts): until it does, ``ended`` still answers
        for the connection, and the task checks that it is still wanted."""
        self.unwatch()
        self.parking.task_group.start_soon(self.wake)

    async def wake(self) -> None:
        if self.conn.parked is None:
            return  # ended while waking: ``end`` has run or is about to
        self.conn.parked = None
        await self.resume(*self.args)

    def _forget(self) -> None:
        raise NotImplementedError

    def _end_later(self) -> None:
        raise NotImplementedError


#: ``TcpTransport.watch_note``: the last call of :func:`_input` woke the reader (on a loop
#: whose next call is then stale), or found nobody waiting.
_WOKE = 1
_MISSED = 2


def _input(parking: Parking, conn: Connection) -> None:
    """Input for a reader's socket: wake the reader, or stop watching if none waits.

    The call right after a wake is stale on asyncio's own (selector) loops: the loop polled
    before the woken reader's turn, so it saw the input that reader has read since, and this
    call was queued behind that turn. It is skipped; skipping is safe anyway, since input that
    is really there is reported again on the loop's next turn (level-triggered). A call with
    nobody waiting is stale the same way, or input waiting for a busy reader: a second one in
    a row ends the watch.
    """
    transport = conn.transport
    assert isinstance(transport, TcpTransport)
    note = transport.watch_note
    if note == _WOKE:
        transport.watch_note = 0
        return
    waiter = conn.waiter
    if waiter is not None:
        assert isinstance(waiter, asyncio.Future)
        if not waiter.done():
            waiter.set_result(True)
            parking.woken += 1
            if parking.stale_after_wake:
                transport.watch_note = _WOKE
        return
    if note == _MISSED:
        transport.unwatch()
    else:
        transport.watch_note = _MISSED


class Parking(ReaderParking):
    """Parking with the event loop's own socket callbacks (asyncio and uvloop)."""

    def __init__(self, loop: asyncio.AbstractEventLoop, task_group: TaskGroup, after: float):
        super().__init__(task_group, after)
        self.loop = loop
        self.woken = 0
        #: Whether the loop polls again before running the tasks its callbacks woke, as
        #: asyncio's own loops do (uvloop runs them first): see :func:`_input`.
        self.stale_after_wake = isinstance(loop, asyncio.selector_events.BaseSelectorEventLoop)

    async def wait_readable(self, conn: Connection) -> bool:
        """Wait for input: ``True`` when it came, ``False`` when the reader should park.

        The socket stays watched after the wait: a reader usually handles its input and waits
        again before any more comes (a ping-pong, a person typing), and registering with the
        selector and unregistering again cost two system calls and the selector's bookkeeping
        per wait. Input that comes while nobody waits (the reader is busy) ends the watch
        (:func:`_input`): level-triggered, it would otherwise call back on every turn.
        """
        transport = conn.transport
        assert isinstance(transport, TcpTransport)
        waiter: asyncio.Future[bool] = self.loop.create_future()
        conn.waiter = waiter
        if transport.watched_by is not _input:
            transport.watch(self.loop, _input, self, conn)
            transport.watch_note = 0  # nothing is known of a new watch's calls
        elif transport.watch_note == _MISSED:
            transport.watch_note = 0
        try:
            woke = await waiter
        except BaseException:  # cancelled, maybe once input had woken it
            conn.waiter = None
            if waiter.done() and not waiter.cancelled() and waiter.result():
                self.woken -= 1
            raise
        conn.waiter = None
        if woke:
            self.woken -= 1
        return woke

    def nudge(self, conn: Connection) -> bool:
        waiter = conn.waiter
        if not isinstance(waiter, asyncio.Future) or waiter.done():
            return False
        waiter.set_result(False)
        return True

    def park(
        self,
        conn: Connection,
        resume: Callable[..., Coroutine[Any, Any, None]],
        end: Callable[..., None],
        args: tuple[Any, ...],
    ) -> None:
        _Parked(self, conn, resume, end, args)


class _Parked(ParkedConnection):
    """A connection parked with ``loop.add_reader``; its clean-up runs from the loop."""

    __slots__ = ("loop",)

    def __init__(
        self,
        parking: Parking,
        conn: Connection,
        resume: Callable[..., Coroutine[Any, Any, None]],
        end: Callable[..., None],
        args: tuple[Any, ...],
    ) -> None:
        assert isinstance(conn.transport, TcpTransport)
        super().__init__(parking, conn, resume, end, args)
        self.loop = parking.loop
        conn.transport.watch(parking.loop, self.readable)  # takes over the reader's watch

    def _forget(self) -> None:
        transport = self.conn.transport
        assert isinstance(transport, TcpTransport)
        transport.unwatch()

    def _end_later(self) -> None:
        self.loop.call_soon(self.end, *self.args, context=on_asyncio())

    def readable(self) -> None:
        # (Started in a context where AnyIO knows its event loop: see turns.on_asyncio.)
        on_asyncio().run(super().readable)
