"""The byte stream under one connection: what the server reads from and writes to.

A :class:`Connection` and the reader loop talk to a :class:`Transport`, never to a socket, so a
TLS transport (``ssl.SSLObject`` over memory buffers, fed the bytes the sniffer already read) or
any other stream slots in without touching the hot path. The calls mirror a non-blocking
socket's, because that is what the fast path is built on (DESIGN.md, "The hot path"): try to
receive or send now, and only when that would block ask the event loop to wait.

:class:`TcpTransport` binds its ``recv`` and ``send`` straight to the socket's methods, so plain
TCP pays no extra call per read or write for the seam.
"""

from __future__ import annotations

import asyncio
import ipaddress
import socket
from collections.abc import Awaitable, Callable
from contextlib import suppress
from typing import Any, ClassVar, Protocol

import anyio

__all__ = ["RECV_BYTES", "TcpTransport", "Transport", "is_loopback", "readable_before"]

#: How much one receive asks for: a batch of many lines, and the reader's fairness unit.
RECV_BYTES = 65536


class Transport(Protocol):
    """A non-blocking byte stream with readiness waits (one per connection)."""

    #: ``host:port`` of the peer, for logs.
    address: str
    #: The peer's host alone (per-address limits, the loopback test for plaintext logins).
    peer_host: str

    @property
    def secure(self) -> bool:
        """True when the bytes are encrypted on the wire (TLS)."""
        ...

    def recv(self, max_bytes: int, /) -> bytes:
        """What has arrived (``b""`` once the peer finished sending).

        Raises ``BlockingIOError`` when nothing is there yet and ``OSError`` when the stream
        broke.
        """
        ...

    def send(self, data: bytes, /) -> int:
        """Hand ``data`` on without waiting; returns how many bytes of it were taken.

        Raises ``BlockingIOError`` when none could be and ``OSError`` when the stream broke.
        """
        ...

    @property
    def pending(self) -> bool:
        """Output this transport accepted but could not pass on yet (TLS records the kernel
        did not take): the connection's writer keeps running until it is ``False``."""
        ...

    def wait_readable(self) -> Awaitable[None]:
        """Wait until :meth:`recv` has something (an ``async def`` satisfies this)."""
        ...

    def wait_writable(self) -> Awaitable[None]:
        """Wait until :meth:`send` may take more (a TLS transport first flushes ``pending``)."""
        ...

    def close(self) -> None:
        """Close without losing what was sent last (no TCP reset over unread input)."""
        ...


class TcpTransport:
    """Plain TCP: a non-blocking socket awaited with AnyIO (identical on asyncio and trio)."""

    __slots__ = (
        "address",
        "peer_host",
        "recv",
        "send",
        "sock",
        "watch_note",
        "watched_by",
        "watcher",
    )

    secure: ClassVar[bool] = False
    pending: ClassVar[bool] = False

    def __init__(self, sock: socket.socket, peer: tuple[str, int] | tuple[str, int, int, int]):
        self.sock = sock
        self.peer_host = peer[0]
        self.address = f"{peer[0]}:{peer[1]}"
        # Bound methods of the socket itself: the seam costs the hot path nothing.
        self.recv = sock.recv
        self.send = sock.send
        #: The asyncio loop watching this socket with a callback (:meth:`watch`), and that
        #: callback (a reader's wait keeps its watch between waits: see ``parking``).
        self.watcher: asyncio.AbstractEventLoop | None = None
        self.watched_by: Callable[..., None] | None = None
        #: What that callback did last time, for the next call (``parking``'s ``_WOKE``,
        #: ``_MISSED`` or 0).
        self.watch_note = 0

    # Plain methods returning AnyIO's awaitable, not coroutines awaiting it: an idle
    # connection's reader is parked in this wait, and a wrapper coroutine would hold one more
    # frame for each of them.
    def wait_readable(self) -> Awaitable[None]:
        return anyio.wait_readable(self.sock)

    def wait_writable(self) -> Awaitable[None]:
        return anyio.wait_writable(self.sock)

    def watch(
        self, loop: asyncio.AbstractEventLoop, callback: Callable[..., None], *args: Any
    ) -> None:
        """Have ``loop`` call ``callback(*args)`` whenever input is waiting (replacing any
        callback watching already) until :meth:`unwatch` or :meth:`close`."""
        loop.add_reader(self.sock.fileno(), callback, *args)
        self.watcher = loop
        self.watched_by = callback

    def unwatch(self) -> None:
        if self.watcher is not None:
            self.watcher.remove_reader(self.sock.fileno())
            self.watcher = self.watched_by = None

    def close(self) -> None:
        """Unread input at ``close()`` would make the kernel send a reset, and the peer could
        then lose the last lines we sent it (our goodbye): read it away, then shut down."""
        self.unwatch()  # before the descriptor's number can be reused
        sock = self.sock
        with suppress(OSError):
            while sock.recv(RECV_BYTES):
                pass
        with suppress(OSError):
            sock.shutdown(socket.SHUT_WR)
        anyio.notify_closing(sock)
        sock.close()


async def readable_before(transport: Transport, deadline: float) -> bool:
    """Wait until ``transport`` has input (``True``) or the clock (``anyio.current_time()``)
    reaches ``deadline`` (``False``).

    For the first bytes of a new connection, whose wait usually ends at the deadline: a person on
    nc says nothing. A cancel scope's deadline would do, but on asyncio AnyIO delivers that
    cancellation with two callbacks per task (retried each turn until the task leaves the scope),
    which in a burst of thousands of silent newcomers made every turn of the event loop tens of
    milliseconds long for everyone already chatting (``benchmarks/join_storm.py``). On asyncio a
    plain TCP socket is therefore watched with a timer that simply answers the wait; elsewhere
    (trio, TLS) the cancel scope it is.
    """
    if type(transport) is TcpTransport:
        try:
            loop = asyncio.get_running_loop()  # none under trio
        except RuntimeError:
            pass
        else:
            return await _asyncio_readable_before(loop, transport, deadline)
    with anyio.CancelScope(deadline=deadline):
        await transport.wait_readable()
        return True
    return False


async def _asyncio_readable_before(
    loop: asyncio.AbstractEventLoop, transport: TcpTransport, deadline: float
) -> bool:
    waiter: asyncio.Future[bool] = loop.create_future()
    transport.watch(loop, _answer, waiter, True)
    timer = loop.call_at(deadline, _answer, waiter, False)
    try:
        return await waiter
    finally:
        timer.cancel()
        transport.unwatch()


def _answer(waiter: asyncio.Future[bool], readable: bool) -> None:
    if not waiter.done():
        waiter.set_result(readable)


def is_loopback(host: str) -> bool:
    """True for 127.0.0.0/8, ::1 and IPv4-mapped loopback (``::ffff:127.0.0.1``)."""
    try:
        address = ipaddress.ip_address(host.split("%", 1)[0])
    except ValueError:
        return False
    if isinstance(address, ipaddress.IPv6Address) and address.ipv4_mapped is not None:
        return address.ipv4_mapped.is_loopback
    return address.is_loopback
