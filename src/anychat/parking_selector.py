"""Parking idle readers where the event loop has no callbacks for sockets (trio).

Trio's readiness waits are for tasks: nothing in trio calls a function when a socket becomes
readable, so :mod:`anychat.parking`'s ``loop.add_reader`` has no counterpart there. What trio can
do is wait for *one* descriptor in one task, and an epoll (or kqueue) instance is itself a
descriptor that turns readable when any socket registered with it has input. So the server keeps
one :class:`selectors.DefaultSelector` of its own for the parked sockets and one task that waits
for that selector's descriptor; when it turns readable, the task takes the ready sockets out of
the selector and starts a reader task for each, as asyncio's callback does. A parked connection
then costs its selector entry (a ``SelectorKey`` and the kernel's registration) instead of a task
with its frames and cancel scopes.

The reader's own wait (before it parks) is a plain ``anyio.wait_readable``, which the idle watcher
ends with ``anyio.notify_closing`` on the socket to ask it to park (:meth:`SelectorParking.nudge`):
only that wait is cut short, which has nothing to lose (the bytes stay in the kernel), never
anything the reader was doing.

Only where :class:`selectors.DefaultSelector` has a descriptor to wait for (epoll, kqueue,
/dev/poll); elsewhere nothing parks. Only plain TCP connections park, as on asyncio.
"""

from __future__ import annotations

import selectors
from collections.abc import Callable, Coroutine
from typing import TYPE_CHECKING, Any, Final

import anyio

from .transport import TcpTransport

if TYPE_CHECKING:
    from anyio.abc import TaskGroup

    from .connection import Connection

__all__ = ["PARK", "WAITING", "SelectorParking", "selector_parking"]

#: ``Connection.waiter`` while a reader waits here, and once the idle watcher asked it to park.
WAITING: Final = "waiting"
PARK: Final = "park"


def selector_parking(task_group: TaskGroup, after_seconds: float) -> SelectorParking | None:
    """Parking through a selector of its own, its watching task started in ``task_group``;
    ``None`` where the platform's selector has no descriptor to wait for."""
    selector = selectors.DefaultSelector()
    if not hasattr(selector, "fileno"):  # select() or poll(): nothing to hand the event loop
        selector.close()
        return None
    parking = SelectorParking(selector, task_group, after_seconds)
    task_group.start_soon(parking.watch)
    return parking


class SelectorParking:
    """The waits of plain TCP readers that may park, and the parked sockets' selector."""

    def __init__(self, selector: selectors.BaseSelector, task_group: TaskGroup, after: float):
        self.selector = selector
        self.task_group = task_group
        #: Seconds without input after which a waiting reader is asked to park.
        self.after_seconds = after
        #: How many connections are parked now (``/metrics`` and the benchmarks read it).
        self.parked = 0

    @staticmethod
    def can_park(conn: Connection) -> bool:
        return type(conn.transport) is TcpTransport

    async def wait_readable(self, conn: Connection) -> bool:
        """Wait for input: ``True`` when it came, ``False`` when the reader should park.

        A plain readiness wait, with nothing around it for the idle watcher to cancel (a cancel
        scope per wait cost about as much as a turn of trio's run loop, on every wait of every
        busy reader): :meth:`nudge` ends it with ``notify_closing`` on the socket instead.
        """
        conn.waiter = WAITING
        try:
            await conn.transport.wait_readable()
        except anyio.ClosedResourceError:
            if conn.waiter is not PARK:
                raise  # not ours: the socket really is closing
            return False
        finally:
            conn.waiter = None
        return True

    @staticmethod
    def nudge(conn: Connection) -> bool:
        """Ask a waiting reader to park (from the idle watcher); ``False`` if none waits.

        ``notify_closing`` wakes every wait for the socket with ``ClosedResourceError`` (and
        leaves the socket open: the next wait registers it again), so not while a writer task
        may be waiting for it too. A wait that has already been answered (input came, the
        reader has not run yet) is not woken: the reader carries on and parks another time.
        """
        if conn.waiter is not WAITING or conn.writing:
            return False
        assert isinstance(conn.transport, TcpTransport)  # only those wait here
        conn.waiter = PARK
        anyio.notify_closing(conn.transport.sock)
        return True

    def park(
        self,
        conn: Connection,
        resume: Callable[..., Coroutine[Any, Any, None]],
        end: Callable[..., None],
        args: tuple[Any, ...],
    ) -> None:
        """Watch ``conn``'s socket without a task: input starts ``resume(*args)`` in a new
        task; ending the connection meanwhile (its ``parked`` hook) runs ``end(*args)`` in a
        task of its own."""
        _Parked(self, conn, resume, end, args)

    async def watch(self) -> None:
        """The one task that waits for every parked socket (through the selector's own
        descriptor). Ends with the server's task group, and closes the selector then."""
        selector = self.selector
        fileno = selector.fileno()  # type: ignore[attr-defined]  # checked in selector_parking
        try:
            while True:
                await anyio.wait_readable(fileno)
                for key, _ in selector.select(0):
                    parked: _Parked = key.data
                    parked.readable()
        finally:
            for key in list(selector.get_map().values()):
                key.data.unwatch()
            anyio.notify_closing(fileno)
            selector.close()


class _Parked:
    """One parked connection: its selector entry's data and its ``parked`` hook."""

    __slots__ = ("args", "conn", "end", "parking", "resume", "watching")

    def __init__(
        self,
        parking: SelectorParking,
        conn: Connection,
        resume: Callable[..., Coroutine[Any, Any, None]],
        end: Callable[..., None],
        args: tuple[Any, ...],
    ) -> None:
        assert isinstance(conn.transport, TcpTransport)
        self.parking = parking
        self.conn = conn
        self.resume = resume
        self.end = end
        self.args = args
        parking.selector.register(conn.transport.sock, selectors.EVENT_READ, self)
        self.watching = True
        parking.parked += 1
        conn.parked = self.ended

    def unwatch(self) -> None:
        if self.watching:
            self.watching = False
            self.parking.parked -= 1
            transport = self.conn.transport
            assert isinstance(transport, TcpTransport)
            self.parking.selector.unregister(transport.sock)

    def ended(self) -> None:
        """The connection was closed while parked or waking: clean up in a task of its own
        (whoever closed it may be in the middle of the broker's work, as on asyncio, where
        this runs from the event loop)."""
        if self.conn.parked is not None:
            self.conn.parked = None
            self.unwatch()
            try:
                self.parking.task_group.start_soon(self._end)
            except RuntimeError:  # the server's task group has ended: nothing runs later
                self.end(*self.args)

    async def _end(self) -> None:
        self.end(*self.args)

    def readable(self) -> None:
        self.unwatch()
        # Until the task runs, ``ended`` still answers for the connection, and the task
        # checks that it is still wanted.
        self.parking.task_group.start_soon(self.wake)

    async def wake(self) -> None:
        if self.conn.parked is None:
            return  # ended while waking: ``end`` has run or is about to
        self.conn.parked = None
        await self.resume(*self.args)
