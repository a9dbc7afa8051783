"""One accepted connection's task: sniff the protocol, pick a codec, read until either side ends.

Resource handling: each accepted transport is owned by exactly one task (:func:`serve_peer`),
which closes it however that task ends. Error handling: an unexpected exception while serving
one client is logged with its traceback and closes that client only; the server keeps serving
everyone else (an exception escaping here would end the server's task group).

Flood control lives in the read loop: a client over its command rate is simply read more slowly,
so TCP pushes back on it, nothing is dropped, and nobody else waits.
"""

from __future__ import annotations

import logging
import socket
import time
from contextlib import suppress
from typing import TYPE_CHECKING

import anyio

from . import model as m
from .codecs.registry import codec_for
from .codecs.sniff import Protocol, late_undecided, sniff_late
from .codecs.sniff_tls import looks_like_tls
from .connection import Connection
from .listeners import ListenerSpec
from .opening import open_peer, open_refused
from .sessions import SessionState
from .transport import RECV_BYTES, TcpTransport

if TYPE_CHECKING:
    from .hub import Hub
    from .tlsconfig import ServerTls
    from .transport import Transport

__all__ = ["serve_peer"]

logger = logging.getLogger("anychat.server")

#: A port that sniffs every protocol (what a bare ``serve_peer`` call serves).
_SNIFFING = ListenerSpec(name="main", host="", port=0)


async def serve_peer(
    hub: Hub,
    sock: socket.socket,
    peer: tuple[str, int],
    spec: ListenerSpec = _SNIFFING,
    tls: ServerTls | None = None,
) -> None:
    """Serve one accepted socket until either side ends it.

    ``spec`` says what its port expects (a protocol, or sniffing; TLS from the first byte);
    ``tls`` is the server's certificate, if it has one (then TLS is sniffed on every port).
    """
    with suppress(OSError):
        sock.setsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY, 1)
    tcp = TcpTransport(sock, peer)
    transport: Transport = tcp
    conn: Connection | None = None
    # Counted against its address from accept, before sniffing or any TLS handshake: a flood
    # of handshakes from one address is held to the same limits as a flood of chatters.
    refused = hub.address_limits.admit(tcp.peer_host)
    counted = refused is None
    release = tcp.peer_host if counted else None
    handed_over = False  # to parking: the connection outlives this task
    try:
        config = hub.config
        if counted:
            opened = await open_peer(tcp, sock, spec, tls, config)
        else:
            opened = await open_refused(tcp, spec, config)
        if opened is None:
            if not counted:
                logger.warning("refusing %s: %s (closed, no TLS handshake)", tcp.address, refused)
            return
        # A storm of newcomers goes on a few a turn from here: everything below (the codec,
        # the log line, the hello, the default room's join and its member list) waits its turn.
        await hub.turnstile.wait_turn()
        transport, protocol, first = opened.transport, opened.protocol, opened.first
        # Taken for a person on nc because it said nothing for the sniffing moment: its first
        # words may still show a program that spoke late (see _first_words).
        by_silence = protocol is Protocol.TEXT and not first and spec.protocol is None
        conn = _connection(hub, transport, protocol)
        if opened.refusal is not None:
            logger.info(
                "refusing %s: plaintext (%s) while TLS is required", tcp.address, conn.codec.name
            )
            conn.close(m.Bye(code=m.ErrorCode.TLS_REQUIRED, reason=opened.refusal))
            conn = None
            return
        if refused is None:
            refused = hub.admit(conn)
        if refused is not None:
            logger.warning("refusing %s: %s", transport.address, refused)
            code = m.ErrorCode.SHUTDOWN if hub.stopping else m.ErrorCode.TOO_MANY_CONNECTIONS
            conn.close(m.Bye(code=code, reason=f"{refused}, try again later"))
            conn = None
            return
        _log_connected(conn)
        assert conn.scope is not None
        park = False  # stays so when the scope is cancelled (the connection is ending)
        late: tuple[Protocol, bytes] | bool = True
        with conn.scope:
            greeting = conn.codec.greeting()
            if greeting:
                await hub.run_commands(conn, greeting)
            if first:
                await hub.receive(conn, first)
            hub.flush()
            if by_silence:
                late = await _first_words(hub, conn)
            if late is True:
                park = await _read(hub, conn)
        if isinstance(late, tuple):
            conn = _switch(hub, conn, *late)
            if conn is None:
                return
            assert conn.scope is not None
            with conn.scope:
                await hub.receive(conn, late[1])
                hub.flush()
                park = await _read(hub, conn)
        handed_over = park and _park(hub, conn, release)
        if not handed_over:
            conn.closing = True  # ended by the client or by conn.scope: no goodbye due
    except Exception:
        logger.exception("error serving %s; closing that connection", transport.address)
        if conn is not None:
            conn.closing = True
    finally:
        if not handed_over:
            _end(hub, conn, transport, release)


def _connection(hub: Hub, transport: Transport, protocol: Protocol) -> Connection:
    return Connection(
        transport,
        codec_for(protocol, hub.codec_settings),
        max_queue_bytes=hub.config.max_queue_bytes,
        on_dirty=hub.dirty_hook,
        now=time.monotonic(),
    )


def _log_connected(conn: Connection) -> None:
    transport = conn.transport
    logger.info(
        "%s connected (%s%s)",
        transport.address,
        conn.codec.name,
        ", TLS" if transport.secure else "",
    )


async def _first_words(hub: Hub, conn: Connection) -> tuple[Protocol, bytes] | bool:
    """Wait for the first bytes of a connection greeted as a person on nc because it was
    silent. Returns the protocol and those bytes if they are a program's that spoke late; else
    whether to go on reading (they were the person's words), ``False`` if the peer left first
    or was a late program that cannot be served any more.

    The silence is a guess made on a deadline, and a JSON bot on a slow link or a client whose
    hello met a busy server loses that race: its hello would be said to a room as text, and its
    session would be a guest's. Only these first reads are watched, so the reader's loop pays
    nothing for it; a silent person waits here instead of in parking, which is for connections
    that have spoken.
    """
    transport = conn.transport
    data = b""
    while True:
        try:
            chunk = _receive(transport)
        except OSError as exc:
            conn.why_closed = f"connection lost ({exc.strerror or exc})"
            return False
        if chunk is None:
            await transport.wait_readable()
            continue
        data += chunk
        if not chunk or not (late_undecided(data) or looks_like_tls(data) is None):
            break
    if data:
        protocol = sniff_late(data)
        if protocol is Protocol.HTTP or looks_like_tls(data):
            # An HTTP client or a TLS handshake cannot read past the text greeting (it is
            # where the response or the server's hello should be): closed, it fails at once
            # and can try again, and its words (a browser's cookies) are never said to a room.
            what = "an HTTP request" if protocol else "a TLS handshake"
            logger.info("%s: %s came after the sniffing moment; closing it", conn.address, what)
            conn.why_closed = f"{what} came late"
            return False
        if protocol is not None:
            return protocol, data
        await hub.receive(conn, data)
    if not chunk:
        await _finished(hub, conn)
        return False
    hub.flush()
    return True


def _switch(hub: Hub, guest: Connection, protocol: Protocol, data: bytes) -> Connection | None:
    """End the guest session of a program taken for a person, and start it again as what its
    first words show (``None``: refused, as the server is shutting down).

    The program has heard the text greeting by now; the anychat client skips such prose before
    its welcome, and IRC clients show it as lines they do not understand.
    """
    logger.info(
        "%s spoke %s after the sniffing moment: greeted again in its protocol",
        guest.address,
        protocol.value,
    )
    guest.why_closed = f"was a {protocol.value} client that spoke late"
    hub.forget(guest)
    conn = _connection(hub, guest.transport, protocol)
    refused = hub.admit(conn)
    if refused is not None:
        conn.close(m.Bye(code=m.ErrorCode.SHUTDOWN, reason=f"{refused}, try again later"))
        return None
    _log_connected(conn)
    return conn


async def _resume(hub: Hub, conn: Connection, release: str | None) -> None:
    """A parked connection's new reader task, started by its first input since parking."""
    handed_over = False
    try:
        conn.scope = scope = anyio.CancelScope()
        park = False
        with scope:
            park = await _read(hub, conn)
        handed_over = park and _park(hub, conn, release)
        if not handed_over:
            conn.closing = True
    except Exception:
        logger.exception("error serving %s; closing that connection", conn.address)
        conn.closing = True
    finally:
        if not handed_over:
            _end(hub, conn, conn.transport, release)


def _registered(hub: Hub, conn: Connection) -> bool:
    """Whether ``conn``'s client has a nick (unregistered connections never park: the idle
    watcher times their registration out)."""
    broker = hub.broker
    return conn in broker.peers() and broker.session(conn).state is SessionState.ACTIVE


def _park(hub: Hub, conn: Connection, release: str | None) -> bool:
    """Hand an idle connection to parking (its reader task then ends); ``False`` if it is
    ending anyway."""
    parking = hub.parking
    if parking is None or conn.closing or conn.closed:
        return False
    conn.scope = None
    conn.codec.rest()
    parking.park(conn, _resume, _end_parked, (hub, conn, release))
    return True


def _end_parked(hub: Hub, conn: Connection, release: str | None) -> None:
    _end(hub, conn, conn.transport, release)


def _end(hub: Hub, conn: Connection | None, transport: Transport, release: str | None) -> None:
    """A connection's clean-up, however it ended (its task's last act, or parking's)."""
    if conn is not None:
        if not conn.closing and not conn.closed:
            # Cancelled from outside the connection: the server is shutting down. Say
            # so now, whichever task the event loop happened to cancel first.
            conn.close(m.Bye(code=m.ErrorCode.SHUTDOWN, reason="server shutting down"))
        try:
            hub.forget(conn)
        except Exception:  # outside the handler above: must never reach the task group
            logger.exception("error while %s left; the server carries on", transport.address)
    if release is not None:
        hub.address_limits.release(release)
    with suppress(OSError):
        transport.close()


async def _read(hub: Hub, conn: Connection) -> bool:
    """The reader: receive, parse, apply, flush; slowed (never cut) by flood control.

    Returns ``True`` when parking asked it to hand the (idle) connection back, and at the
    client's first few quiet moments once registered (``Connection.early_parks``), long
    before the idle watcher would ask: a client that has just registered and joined mostly
    goes quiet (or waits for a person), and after a reconnect storm 10,000 readers each holding
    a task until the idle watcher parks them are a peak of about 8 KiB per connection that the
    allocator keeps after they park (docs/performance.md, "What the idle row measures"). A
    client that goes on talking costs a new reader task for each of those few.
    """
    transport = conn.transport
    parking = hub.parking if hub.parking is not None and hub.parking.can_park(conn) else None
    turns = hub.turns
    checkpoint = turns.checkpoint
    flush_soon = turns.flush_soon if turns.can_flush_soon else None
    config = hub.config
    rate = config.flood_rate
    burst = float(config.flood_burst)
    tokens = burst
    last = anyio.current_time()
    handled_last = False  # the last receive was handled without a yield since
    while not conn.closing:
        try:
            data = _receive(transport)
        except OSError as exc:
            conn.why_closed = f"connection lost ({exc.strerror or exc})"
            return False
        if data is None:
            handled_last = False
            # Only now ask the event loop to watch the socket: a busy client's next batch is
            # usually there already, and each wait costs registering with the selector and
            # unregistering again (two system calls per wait on asyncio).
            if parking is None:
                await transport.wait_readable()
            elif conn.early_parks and _registered(hub, conn):
                conn.early_parks -= 1
                return True
            elif not await parking.wait_readable(conn):
                return True
            continue
        if handled_last:
            # More came at once: let every other reader woken in this turn go first (a
            # client that always has more to send must not starve the others).
            handled_last = False
            await checkpoint()
        if not data:
            await _finished(hub, conn)
            return False
        handled = await hub.receive(conn, data)
        if rate:
            now = anyio.current_time()
            tokens = min(burst, tokens + (now - last) * rate) - handled
            last = now
            if tokens < 0:
                # Leave the rest in the kernel: TCP slows the flooder, nothing is dropped.
                hub.flush()
                await anyio.sleep(-tokens / rate)
                continue
        # Send now if no other reader is about to run in this turn of the event loop, else
        # once they all have: when several clients' batches arrive together, each recipient
        # gets one send for all of them (hub.turns: a loop callback on asyncio; elsewhere
        # this reader yields, and the first reader back sends for everyone).
        if turns.alone(parking.woken if parking is not None else -1):
            hub.flush()
        elif flush_soon is not None:
            flush_soon()
        else:
            await checkpoint()
            hub.flush()
            continue
        handled_last = True
    # Closing after a goodbye: wait for the writer to drain it (the scope gets cancelled).
    await anyio.sleep_forever()
    return False


async def _finished(hub: Hub, conn: Connection) -> None:
    """The peer finished sending (it may still read): let our replies drain first."""
    hub.flush()
    conn.why_closed = conn.why_closed or "connection closed"
    if conn.writing:
        conn.closing = True
        with anyio.move_on_after(hub.config.shutdown_grace_seconds):
            await anyio.sleep_forever()


def _receive(transport: Transport) -> bytes | None:
    """What has arrived, or ``None`` when nothing has yet (``OSError`` when the stream broke).

    A function of its own for the sake of idle connections: the ``BlockingIOError`` that an
    empty socket raises is caught in this short-lived frame. Caught in the reader's own frame, it
    would make Python build a frame object for that coroutine (kept for as long as it lives,
    about 280 bytes), and awaiting inside the ``except`` would keep the exception and its
    traceback alive through the wait (about 600 more).
    """
    try:
        return transport.recv(RECV_BYTES)
    except (BlockingIOError, InterruptedError):
        return None
