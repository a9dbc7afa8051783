"""One connected socket: its codec, its outbound buffer, and the task that drains what is left.

The hot path (DESIGN.md, "The hot path, as measured"): fan-out appends the same encoded ``bytes``
to each recipient's buffer (:meth:`Connection.push`), and the task that did the fan-out flushes
every touched connection at the end of its received batch with one non-blocking ``send`` each
(:meth:`Connection.flush`). Only when the kernel's send buffer is full does the connection's
writer task wake up, wait until the socket is writable and send the rest. So the common case costs
one append per recipient and one system call per recipient per batch, with no task wake-ups.

The socket is a plain non-blocking :class:`socket.socket` awaited with
:func:`anyio.wait_readable` / :func:`anyio.wait_writable`, which behave the same on asyncio,
uvloop and trio.

Slow consumers: the buffer is bounded in bytes. A client whose unsent output passes
``max_queue_bytes`` is cut ("send queue exceeded"); nobody else waits for it.
"""

from __future__ import annotations

import logging
import socket
from collections.abc import Callable
from typing import TYPE_CHECKING

import anyio

from . import model as m

if TYPE_CHECKING:
    from collections.abc import Hashable

    from .codecs import Codec

__all__ = ["Connection"]

logger = logging.getLogger(__name__)

RECV_BYTES = 65536


class Connection:
    """Output side of one client connection, plus what the server knows about it."""

    __slots__ = (
        "_dirty",
        "_on_dirty",
        "_wake",
        "address",
        "closed",
        "closing",
        "codec",
        "encoding_key",
        "max_queue_bytes",
        "out",
        "queued_bytes",
        "scope",
        "sent_bytes",
        "sock",
        "why_closed",
        "writing",
    )

    def __init__(
        self,
        sock: socket.socket,
        codec: Codec,
        *,
        address: str,
        max_queue_bytes: int,
        on_dirty: Callable[[Connection], None],
    ) -> None:
        self.sock = sock
        self.codec = codec
        self.encoding_key: Hashable = codec.encoding_key
        self.address = address
        self.max_queue_bytes = max_queue_bytes
        #: Chunks not yet handed to the kernel, oldest first.
        self.out: list[bytes] = []
        self.queued_bytes = 0
        self.sent_bytes = 0
        #: True while the writer task owns the buffer (the kernel refused part of a send).
        self.writing = False
        #: Stop reading; close once the buffer is drained (after a goodbye).
        self.closing = False
        #: Nothing more is sent; the connection's task is on its way out.
        self.closed = False
        self.why_closed = ""
        self.scope = anyio.CancelScope()
        self._wake = anyio.Event()
        self._dirty = False
        self._on_dirty = on_dirty

    def __repr__(self) -> str:
        return f"<Connection {self.address} {self.codec.name}>"

    # -------------------------------------------------------------- the hot path

    def push(self, data: bytes) -> None:
        """Queue bytes for this client; never blocks. Cuts the client past its queue bound."""
        if self.closed or not data:
            return
        self.out.append(data)
        self.queued_bytes += len(data)
        if not self._dirty:
            self._dirty = True
            self._on_dirty(self)
        if self.queued_bytes > self.max_queue_bytes:
            self.abort(
                f"send queue exceeded ({self.queued_bytes} bytes unsent)",
                m.ErrorCode.SEND_QUEUE_EXCEEDED,
            )

    def flush(self) -> None:
        """Hand everything queued to the kernel now, if it takes it; else wake the writer."""
        self._dirty = False
        if self.writing or self.closed or not self.out:
            return
        out = self.out
        data = out[0] if len(out) == 1 else b"".join(out)
        out.clear()
        try:
            sent = self.sock.send(data)
        except (BlockingIOError, InterruptedError):
            sent = 0
        except OSError as exc:
            self.abort(f"connection lost while sending ({exc.strerror or exc})")
            return
        self.queued_bytes -= sent
        self.sent_bytes += sent
        if sent < len(data):
            out.append(data[sent:])
            self.writing = True
            self._wake.set()
        elif self.closing:
            self._finish()

    async def run_writer(self) -> None:
        """Sends what :meth:`flush` could not; sleeps while the kernel keeps up."""
        sock = self.sock
        while True:
            await self._wake.wait()
            self._wake = anyio.Event()
            out = self.out
            while out:
                await anyio.wait_writable(sock)
                data = out[0] if len(out) == 1 else b"".join(out)
                out.clear()
                try:
                    sent = sock.send(data)
                except (BlockingIOError, InterruptedError):
                    sent = 0
                except OSError as exc:
                    self.abort(f"connection lost while sending ({exc.strerror or exc})")
                    return
                self.queued_bytes -= sent
                self.sent_bytes += sent
                if sent < len(data):
                    out.insert(0, data[sent:])
            self.writing = False
            if self.closing:
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

    def abort(self, reason: str, code: m.ErrorCode | None = None) -> None:
        """Stop at once, dropping unsent output (slow consumer, broken socket)."""
        if self.closed:
            return
        at_line_boundary = not self.writing
        self.closed = True
        self.why_closed = reason
        self.out.clear()
        self.queued_bytes = 0
        if code is not None:
            logger.warning("cutting %s: %s", self.address, reason)
        if code is not None and at_line_boundary:
            # Best effort, and only where no half-sent line would garble it: there may be room
            # for one last line that says why.
            try:
                self.sock.send(self.codec.encode(m.Bye(code=code, reason=reason)))
            except OSError:
                pass
        self.scope.cancel()

    def _finish(self) -> None:
        self.closed = True
        self.scope.cancel()
