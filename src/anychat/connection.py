"""One connected socket: its codec, its outbound buffer, and the task that drains what is left.

The hot path (DESIGN.md, "The hot path, as measured"): fan-out appends the same encoded ``bytes``
to each recipient's buffer (:attr:`Connection.out`; the server's fan-out loop does the append
inline, :meth:`Connection.push` is the same for single replies), and the task that did the
fan-out flushes every touched connection at the end of its received batch with one non-blocking
``send`` each (:meth:`Connection.flush`). Only when the kernel's send buffer is full does a
writer task start: it owns what the kernel did not take (the *backlog*), waits until the socket
is writable, sends, and ends once the backlog is empty. So the common case costs one append per
recipient and one system call per recipient per batch, with no task wake-ups, and an idle
connection has no writer task at all.

A connection is in the server's dirty list exactly when :attr:`Connection.out` goes from empty to
non-empty, so "is it dirty?" costs nothing: it is ``not out``.

Bytes go through a :class:`~anychat.transport.Transport` (plain TCP binds straight to the
socket's non-blocking ``recv``/``send``; TLS is another transport), awaited through its
``wait_readable``/``wait_writable``, which behave the same on asyncio, uvloop and trio. A
transport that holds output of its own (TLS records the kernel did not take) says so with
``pending``, and the writer runs until that is drained too.

Slow consumers: the backlog is bounded in bytes. A client whose unsent output passes
``max_queue_bytes`` is cut ("send queue exceeded") when a flush finds it over; nobody else waits
for it. The check runs once per flush, not once per line, so within one received batch a buffer
may briefly exceed the bound by that batch's output.
"""

from __future__ import annotations

import logging
from collections.abc import Callable
from typing import TYPE_CHECKING, Final, Protocol

import anyio

from . import model as m
from .transport import RECV_BYTES

if TYPE_CHECKING:
    import asyncio
    from collections.abc import Hashable

    from anyio.abc import TaskGroup

    from .codecs import Codec
    from .transport import Transport

__all__ = ["RECV_BYTES", "Connection"]

logger = logging.getLogger(__name__)


class Parked(Protocol):
    """A parked connection's keeper (:class:`anychat.parking.ParkedConnection`)."""

    def ended(self) -> None:
        """The connection was closed while parked: clean up (later, from the event loop)."""


#: The backlog of a connection whose sends the kernel always took: shared, never appended to
#: (a connection gets its own list as it starts writing, and only a writer appends).
_NO_BACKLOG: list[bytes] = []
#: How many quiet moments after registering park a reader at once: the welcome's, the one after
#: joining, and one more (each costs the connection a new reader task when it speaks again).
EARLY_PARKS: Final = 3


class Connection:
    """Output side of one client connection, plus what the server knows about it."""

    __slots__ = (
        "_on_dirty",
        "address",
        "backlog",
        "backlog_bytes",
        "closed",
        "closing",
        "codec",
        "connected_at",
        "cut_code",
        "early_parks",
        "encoding_key",
        "heard_at",
        "max_queue_bytes",
        "out",
        "parked",
        "pinged",
        "scope",
        "spoke",
        "task_group",
        "transport",
        "waiter",
        "why_closed",
        "writing",
    )

    def __init__(
        self,
        transport: Transport,
        codec: Codec,
        *,
        max_queue_bytes: int,
        on_dirty: Callable[[Connection], None],
        now: float = 0.0,
    ) -> None:
        self.transport = transport
        self.codec = codec
        self.encoding_key: Hashable = codec.encoding_key
        self.address = transport.address
        #: When it connected and when it last sent anything, by ``time.monotonic()`` (the
        #: idle watcher reads these; read on every batch, so not AnyIO's clock, whose look-up
        #: of the running loop costs more than the reading), and whether it has been asked to
        #: prove it is alive since.
        self.connected_at = self.heard_at = now
        self.pinged = False
        #: Whether the peer ever sent a byte (silent sockets are closed after a while).
        self.spoke = False
        self.max_queue_bytes = max_queue_bytes
        #: Chunks queued since the last flush, oldest first. Non-empty means "dirty".
        self.out: list[bytes] = []
        #: What the kernel did not take yet, oldest first; only the writer task sends it. Most
        #: connections never have any: they share one empty list until their first.
        self.backlog: list[bytes] = _NO_BACKLOG
        self.backlog_bytes = 0
        #: True while a writer task owns the output (the kernel refused part of a send).
        self.writing = False
        #: Stop reading; close once the output is drained (after a goodbye).
        self.closing = False
        #: Nothing more is sent; the connection's task is on its way out.
        self.closed = False
        self.why_closed = ""
        #: Why the server cut this client, if it did (a slow consumer, say): for statistics.
        self.cut_code: m.ErrorCode | None = None
        #: Quiet moments, once registered, at which the reader parks at once instead of after
        #: ``park_after_seconds`` (``reader``): a client's first few after registering (an IRC
        #: client joins its rooms after the welcome, then mostly goes quiet).
        self.early_parks = EARLY_PARKS
        #: The reader task's scope: cancelled to stop reading. ``None`` while parked.
        self.scope: anyio.CancelScope | None = anyio.CancelScope()
        #: The reader's readiness wait, while it waits with :mod:`~anychat.parking`'s (a
        #: future on asyncio, a marker on trio: what the idle watcher wakes).
        self.waiter: asyncio.Future[bool] | str | None = None
        #: Set while the connection is parked (no reader task): its ``ended`` ends it from the
        #: event loop. The parked object itself, not its bound method (64 bytes less each).
        self.parked: Parked | None = None
        #: Where a writer task is started when needed (the server's task group).
        self.task_group: TaskGroup | None = None
        self._on_dirty = on_dirty

    def __repr__(self) -> str:
        return f"<Connection {self.address} {self.codec.name}>"

    # -------------------------------------------------------------- the hot path

    def push(self, data: bytes) -> None:
        """Queue bytes for this client; never blocks (the fan-out loop inlines this).

        Nothing is queued once the goodbye is (``closing``): it must stay the last thing the
        client hears, and after a WebSocket close frame no other frame may follow.
        """
        out = self.out
        if not out:
            if self.closed or self.closing or not data:
                return
            self._on_dirty(self)
        out.append(data)

    def flush(self) -> None:
        """Hand everything queued to the kernel now if it takes it; else start the writer."""
        out = self.out
        if not out:
            return
        data = out[0] if len(out) == 1 else b"".join(out)
        out.clear()
        if self.closed:
            return
        if self.writing:
            self._to_backlog(data)
            return
        transport = self.transport
        try:
            sent = transport.send(data)
        except (BlockingIOError, InterruptedError):
            sent = 0
        except OSError as exc:
            self.abort(f"connection lost while sending ({exc.strerror or exc})")
            return
        if sent < len(data) or transport.pending:
            self.writing = True
            if self.backlog is _NO_BACKLOG:
                self.backlog = []  # its own from now on: the writer task holds on to it
            if sent < len(data):
                self._to_backlog(data[sent:] if sent else data)
            if not self.closed and self.task_group is not None:
                self.task_group.start_soon(self.run_writer)
        elif self.closing:
            self._finish()

    def _to_backlog(self, data: bytes) -> None:
        self.backlog.append(data)
        self.backlog_bytes += len(data)
        if self.backlog_bytes > self.max_queue_bytes:
            self.abort(
                f"send queue exceeded ({self.backlog_bytes} bytes unsent)",
                m.ErrorCode.SEND_QUEUE_EXCEEDED,
            )

    async def run_writer(self) -> None:
        """Sends the backlog as the socket takes it; ends when it is empty.

        It runs in the server's task group, not the connection's, so it must never raise: it
        ends quietly once the connection is closed and cuts only its own client on a surprise.
        """
        try:
            await self._write_backlog()
        except anyio.ClosedResourceError:
            pass  # the connection's task closed the socket while we waited
        except Exception:
            logger.exception("error sending to %s; closing that connection", self.address)
            self.abort("internal error while sending")

    async def _write_backlog(self) -> None:
        transport = self.transport
        backlog = self.backlog
        while (backlog or transport.pending) and not self.closed:
            await transport.wait_writable()
            if not backlog:
                continue  # the wait flushed what the transport held; see if more is left
            data = backlog[0] if len(backlog) == 1 else b"".join(backlog)
            backlog.clear()
            try:
                sent = transport.send(data)
            except (BlockingIOError, InterruptedError):
                sent = 0
            except OSError as exc:
                self.abort(f"connection lost while sending ({exc.strerror or exc})")
                return
            if sent < len(data):
                backlog.append(data[sent:])  # nothing ran since the clear: still the oldest
            self.backlog_bytes = len(data) - sent
        self.writing = False
        if self.closing and not self.closed:
            self._finish()

    # -------------------------------------------------------------- endings

    def close(self, bye: m.Bye) -> None:
        """Send ``bye`` as the last thing this client hears, then close once it is out."""
        if self.closing or self.closed:
            return
        self.why_closed = bye.reason
        self.push(self.codec.encode(bye))
        self.closing = True
        self.flush()
        if not self.writing and not self.closed:
            self._finish()

    def abort(self, reason: str, code: m.ErrorCode | None = None) -> None:
        """Stop at once, dropping unsent output (slow consumer, broken socket)."""
        if self.closed:
            return
        at_line_boundary = not self.writing
        self.closed = True
        self.why_closed = reason
        self.cut_code = code
        self.out.clear()
        self.backlog.clear()
        self.backlog_bytes = 0
        if code is not None:
            logger.warning("cutting %s: %s", self.address, reason)
        if code is not None and at_line_boundary:
            # Best effort, and only where no half-sent line would garble it: there may be room
            # for one last line that says why.
            try:
                self.transport.send(self.codec.encode(m.Bye(code=code, reason=reason)))
            except OSError:
                pass
        self._stop_reading()

    def _finish(self) -> None:
        self.closed = True
        self._stop_reading()

    def _stop_reading(self) -> None:
        if self.parked is not None:
            self.parked.ended()
        elif self.scope is not None:
            self.scope.cancel()
