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

from .parking import ParkedConnection, ReaderParking
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


class SelectorParking(ReaderParking):
    """Parking through a selector of the server's own, watched by one task."""

    def __init__(self, selector: selectors.BaseSelector, task_group: TaskGroup, after: float):
        super().__init__(task_group, after)
        self.selector = selector

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

    def nudge(self, conn: Connection) -> bool:
        """``notify_closing`` wakes every wait for the socket with ``ClosedResourceError`` (and
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


class _Parked(ParkedConnection):
    """A connection parked in the selector (the entry's data); its clean-up runs in a task of
    its own (whoever closed it may be in the middle of the broker's work, as on asyncio, where
    it runs from the event loop)."""

    __slots__ = ("selector",)

    def __init__(
        self,
        parking: SelectorParking,
        conn: Connection,
        resume: Callable[..., Coroutine[Any, Any, None]],
        end: Callable[..., None],
        args: tuple[Any, ...],
    ) -> None:
        assert isinstance(conn.transport, TcpTransport)
        super().__init__(parking, conn, resume, end, args)
        self.selector = parking.selector
        self.selector.register(conn.transport.sock, selectors.EVENT_READ, self)

    def _forget(self) -> None:
        transport = self.conn.transport
        assert isinstance(transport, TcpTransport)
        self.selector.unregister(transport.sock)

    def _end_later(self) -> None:
        try:
            self.parking.task_group.start_soon(self._end)
        except RuntimeError:  # the server's task group has ended: nothing runs later
            self.end(*self.args)

    async def _end(self) -> None:
        self.end(*self.args)
