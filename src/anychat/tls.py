"""TLS for the server: the standard library's ``ssl.SSLObject`` over two ``ssl.MemoryBIO``s.

Why memory BIOs and not ``ssl.SSLSocket`` or ``anyio.streams.tls``: the server has already read
the first bytes of the connection to sniff the protocol (a TLS ClientHello among them), and a
memory BIO can be fed those bytes before anything else; the socket stays a plain non-blocking
socket awaited with :func:`anyio.wait_readable` / :func:`anyio.wait_writable`, so the same code
runs on asyncio, uvloop and trio, and the connection's fast path (non-blocking ``send`` at the end
of each batch, a writer task only for what the kernel did not take) works unchanged on top.

:class:`TlsTransport` offers what a connection reads and writes through: ``recv`` and ``send``
are non-blocking (``BlockingIOError`` when nothing can be done now), ``pending`` says that
ciphertext is still waiting for the kernel, and the ``wait_*`` methods account for the bytes the
SSL object holds (buffered plaintext makes ``wait_readable`` return at once; ``wait_writable``
first pushes out the ciphertext it holds). :func:`accept_tls` runs the server side of the
handshake; the caller bounds it with its handshake timeout.

Memory bound: ``send`` encrypts :data:`SEND_CHUNK` bytes of plaintext at a time, the next chunk
only once the kernel took the last one whole, and nothing while ciphertext is left over from
before, so a transport holds at most one chunk's worth of ciphertext beyond what the
connection's byte-bounded backlog already counts. The chunk (256 KiB, a quarter of the default
``max_queue_bytes``) is larger than a fan-out batch usually is, so that a batch is one system
call as over plain TCP: the encryption itself costs what it costs, but each further ``sendmsg``
was a further few microseconds of the kernel's per-call work, and at 64 KiB most batches of a
200-client room took two.

Memory kept while idle: a ``MemoryBIO`` never gives back the buffer it grew to (OpenSSL's memory
BIO keeps its largest size for life), so what passes through the two BIOs goes in pieces of at
most one TLS record (:data:`RECORD_BYTES`): encrypted one record per ``SSLObject.write``, each
read out at once (and the pieces of a chunk sent with one ``sendmsg``); received ciphertext fed
in one record's worth at a time, the rest of the socket read held here until the SSL object
wants it. Without this a connection that once got a 60 KB batch (a busy room, a history replay)
or sent one kept 60-75 KiB more for as long as it stayed connected; now it keeps about 20 KiB
more at most (benchmarks/tls_memory.py).
"""

from __future__ import annotations

import logging
import socket
import ssl
from contextlib import suppress
from typing import Final

import anyio
import anyio.lowlevel
import anyio.to_thread

__all__ = [
    "RECORD_BYTES",
    "SEND_CHUNK",
    "HandshakeFailed",
    "TlsTransport",
    "accept_tls",
    "handshake_failure",
]

logger = logging.getLogger(__name__)

#: Ciphertext read from the socket per system call.
RECV_BYTES: Final = 65536
#: Plaintext encrypted per ``send`` before the kernel is asked to take it (16 full TLS records):
#: a fan-out batch is rarely larger, so it goes to the kernel with one ``sendmsg``.
SEND_CHUNK: Final = 262144
#: The most bytes put into either memory BIO at once: one full TLS record's plaintext. Each BIO
#: keeps the largest buffer it ever needed, so this bounds what an idle connection holds.
RECORD_BYTES: Final = 16384

_sendmsg = getattr(socket.socket, "sendmsg", None)  # not on Windows


class HandshakeFailed(Exception):
    """The TLS handshake did not complete; ``reason`` is fit for a log line."""

    def __init__(self, reason: str) -> None:
        super().__init__(reason)
        self.reason = reason


class TlsTransport:
    """One TLS connection on a non-blocking socket (server side, after the handshake)."""

    __slots__ = (
        "_closed",
        "_error",
        "_held",
        "_incoming",
        "_outgoing",
        "_ssl",
        "_tls",
        "_unsent",
        "address",
        "peer_host",
        "secure",
        "sock",
    )

    def __init__(
        self,
        sock: socket.socket,
        context: ssl.SSLContext,
        *,
        first: bytes = b"",
        address: str,
        peer_host: str,
    ) -> None:
        self.sock = sock
        self.address = address
        self.peer_host = peer_host
        #: Always true: what the broker and services consult before accepting a password.
        self.secure = True
        self._incoming = ssl.MemoryBIO()
        self._outgoing = ssl.MemoryBIO()
        self._ssl = context.wrap_bio(self._incoming, self._outgoing, server_side=True)
        #: What the hot path calls ``read``, ``write`` and ``pending`` on: the C object inside
        #: the ``SSLObject`` (CPython's ``_sslobj``), whose methods the ``SSLObject`` methods
        #: only forward to, so each record costs no Python frame of ``ssl.py``.
        self._tls = getattr(self._ssl, "_sslobj", self._ssl)
        #: Ciphertext read from the socket but not fed to the SSL object yet (None: none).
        self._held: memoryview | None = None
        if first:
            self._feed(first)
        #: Ciphertext the kernel has not taken yet.
        self._unsent = bytearray()
        #: A socket error met while flushing from a ``wait_*`` method, raised by the next call.
        self._error: OSError | None = None
        self._closed = False

    def __repr__(self) -> str:
        return f"<TlsTransport {self.address} {self.version or 'handshaking'}>"

    # -------------------------------------------------------------- what the peer negotiated

    @property
    def version(self) -> str | None:
        """``"TLSv1.3"`` and the like once the handshake is done."""
        return self._ssl.version()

    @property
    def cipher(self) -> str | None:
        found = self._ssl.cipher()
        return found[0] if found else None

    @property
    def alpn_protocol(self) -> str | None:
        """``"http/1.1"`` when the client asked for it; ``None`` for every other protocol."""
        return self._ssl.selected_alpn_protocol()

    @property
    def server_hostname(self) -> str | None:
        """The host name the client asked for with SNI (recorded by the context's callback)."""
        return getattr(self._ssl, "anychat_sni", None)

    # -------------------------------------------------------------- the transport

    @property
    def pending(self) -> bool:
        """Ciphertext waits for the kernel: the connection must keep its writer running."""
        return bool(self._unsent) or self._outgoing.pending > 0

    def recv(self, max_bytes: int) -> bytes:
        """Plaintext, up to ``max_bytes``; ``b""`` at the end; ``BlockingIOError``: none yet.

        Reads the socket only when the SSL object has nothing decryptable left, and once a call
        has some plaintext it returns it rather than waiting for more.
        """
        self._raise_error()
        chunks: list[bytes] = []
        size = 0
        while size < max_bytes:
            try:
                data = self._tls.read(max_bytes - size)
            except ssl.SSLWantReadError:
                if self._held is not None:
                    self._feed(self._held)
                    continue
                if chunks:
                    break
                try:
                    chunk = self.sock.recv(RECV_BYTES)
                except BlockingIOError:
                    # Nothing there yet; but what the reads so far produced for the peer (an
                    # alert refusing a renegotiation, a TLS 1.3 key update's answer) must go
                    # now: the peer may be waiting for it before it sends anything else.
                    if self._outgoing.pending:
                        self._flush()
                    raise
                if chunk:
                    self._feed(chunk)
                else:
                    self._incoming.write_eof()
                continue
            except (ssl.SSLZeroReturnError, ssl.SSLEOFError):
                data = b""  # close_notify, or the peer closed the socket without one
            if not data:
                break
            chunks.append(data)
            size += len(data)
        if self._outgoing.pending:  # a key update or a ticket the read produced
            self._flush()
        return b"".join(chunks)

    def send(self, data: bytes | memoryview) -> int:
        """Encrypt and send as much of ``data`` as the kernel takes; returns how many bytes.

        A batch (the connection's output since its last flush) of one record or less is one
        ``SSLObject.write`` and one ``send``; a larger one is encrypted a record at a time and
        its records go to the kernel with one ``sendmsg`` per :data:`SEND_CHUNK` (so a batch
        of a busy room, tens of KB, is one system call, as over plain TCP), chunk after chunk
        until the kernel refuses part of one. Takes nothing (``BlockingIOError``) while
        ciphertext from earlier is still unsent.
        """
        if self._error is not None:
            self._raise_error()
        if self._unsent or self._outgoing.pending:
            self._flush()
            if self._unsent:
                raise BlockingIOError("TLS output still waits for the socket")
        size = len(data)
        tls = self._tls
        if size <= RECORD_BYTES:  # the usual small batch: one record, one write, one send
            taken: int = tls.write(data)
            self._send_or_keep(self._outgoing.read())
            return taken
        # A large batch: chunk after chunk while the kernel takes each one whole, so that a
        # backlog goes to the writer task only when the socket is really full (a writer round
        # trip through the event loop per chunk costs far more than the encryption).
        bio_read = self._outgoing.read
        taken = 0
        with memoryview(data) as view:
            while taken < size:
                end = min(taken + SEND_CHUNK, size)
                records = []
                while taken < end:
                    taken += tls.write(view[taken : min(taken + RECORD_BYTES, end)])
                    records.append(bio_read())
                self._send_records(records)
                if self._unsent:
                    break
        return taken

    async def wait_readable(self) -> None:
        """Return at once if plaintext or ciphertext is already buffered; else wait for input."""
        if self._held is not None or self._tls.pending() or self._incoming.pending:
            await anyio.lowlevel.checkpoint()
            return
        await anyio.wait_readable(self.sock)

    async def wait_writable(self) -> None:
        """Push out the ciphertext held here, then return: ``send`` takes data again."""
        while True:
            try:
                self._flush()
            except OSError as exc:
                self._error = exc  # raised by the next send or recv, where it is handled
                await anyio.lowlevel.checkpoint()
                return
            if not self._unsent:
                await anyio.lowlevel.checkpoint()
                return
            await anyio.wait_writable(self.sock)

    def close(self) -> None:
        """Send close_notify (best effort: whatever the kernel takes now), then close."""
        if self._closed:
            return
        self._closed = True
        with suppress(ssl.SSLError, ValueError):
            self._ssl.unwrap()  # writes close_notify, then would wait for the peer's: no
        with suppress(OSError):
            self._flush()
        _drain_and_close(self.sock)

    # -------------------------------------------------------------- handshake

    async def handshake(self, limiter: anyio.CapacityLimiter | None = None) -> None:
        """The server side of the handshake; bound it with a timeout (a peer may stall).

        The handshake's computing (key exchange, signature) runs in a worker thread, in which
        OpenSSL releases the GIL: a burst of handshakes ready at once would otherwise run back to
        back in one turn of the event loop (a fraction of a millisecond to several each, RSA
        costing most) while every chatting client waits. ``limiter`` caps how many run at once.

        Raises:
            ssl.SSLError: The peer is not speaking TLS, or nothing in common was found.
            OSError: The socket broke.
        """
        while True:
            try:
                await anyio.to_thread.run_sync(self._ssl.do_handshake, limiter=limiter)
            except ssl.SSLWantReadError:
                pass
            else:
                await self._flush_all()  # our Finished (and TLS 1.3 session tickets)
                return
            await self._flush_all()
            if self._held is not None:
                self._feed(self._held)
                continue
            await anyio.wait_readable(self.sock)
            try:
                chunk = self.sock.recv(RECV_BYTES)
            except (BlockingIOError, InterruptedError):
                continue
            if chunk:
                self._feed(chunk)
            else:
                self._incoming.write_eof()

    # -------------------------------------------------------------- plumbing

    def _feed(self, data: bytes | memoryview) -> None:
        """Give the SSL object one record's worth of ``data``; hold the rest for later."""
        if len(data) <= RECORD_BYTES:
            self._incoming.write(data)
            self._held = None
            return
        view = data if isinstance(data, memoryview) else memoryview(data)
        self._incoming.write(view[:RECORD_BYTES])
        self._held = view[RECORD_BYTES:]

    def _send_records(self, records: list[bytes]) -> None:
        """Send the ciphertext of several records with one system call (``_unsent`` is empty);
        what the kernel refuses is kept in ``_unsent``."""
        try:
            if _sendmsg is not None:
                sent = self.sock.sendmsg(records)
            else:
                sent = self.sock.send(b"".join(records))
        except (BlockingIOError, InterruptedError):
            sent = 0
        if sent < sum(map(len, records)):
            self._unsent += memoryview(b"".join(records))[sent:]

    def _flush(self) -> None:
        """Move ciphertext from the SSL object to the kernel, as much as it takes now.

        The SSL object's output goes to the socket as the ``bytes`` it comes in; only what the
        kernel refuses is copied into :attr:`_unsent`.
        """
        unsent = self._unsent
        while unsent:
            try:
                sent = self.sock.send(unsent)
            except (BlockingIOError, InterruptedError):
                return
            del unsent[:sent]
        if self._outgoing.pending:
            self._send_or_keep(self._outgoing.read())

    def _send_or_keep(self, data: bytes) -> None:
        """Send ``data`` now (``_unsent`` is empty); what the kernel refuses is kept in
        ``_unsent``, copied only then."""
        try:
            sent = self.sock.send(data)
        except (BlockingIOError, InterruptedError):
            sent = 0
        if sent < len(data):
            self._unsent += memoryview(data)[sent:]

    async def _flush_all(self) -> None:
        self._flush()
        while self._unsent:
            await anyio.wait_writable(self.sock)
            self._flush()

    def _raise_error(self) -> None:
        if self._error is not None:
            error, self._error = self._error, None
            raise error


async def accept_tls(
    sock: socket.socket,
    context: ssl.SSLContext,
    *,
    first: bytes,
    address: str,
    peer_host: str,
    timeout: float,
    limiter: anyio.CapacityLimiter | None = None,
) -> TlsTransport:
    """Run the server side of a handshake on ``sock``, fed ``first`` (the sniffed bytes) first.

    ``limiter``: how many handshakes compute at once (default: AnyIO's thread limiter).

    Raises:
        HandshakeFailed: Timed out, not TLS, nothing in common, or the peer left; the socket
            is left to the caller to close (it was never the transport's).
    """
    transport = TlsTransport(sock, context, first=first, address=address, peer_host=peer_host)
    try:
        with anyio.fail_after(timeout):
            await transport.handshake(limiter)
    except (TimeoutError, OSError) as exc:
        with suppress(OSError):
            transport._flush()  # the alert that tells the client why, if OpenSSL wrote one
        raise HandshakeFailed(handshake_failure(exc, timeout)) from None
    return transport


#: OpenSSL reasons a log reader may not recognise, in plain words.
_REASONS: Final = {
    "HTTP_REQUEST": "plain HTTP sent to the TLS port",
    "WRONG_VERSION_NUMBER": "not a TLS client (wrong version number)",
    "UNSUPPORTED_PROTOCOL": "client offers only TLS versions older than 1.2",
    "NO_SHARED_CIPHER": "no cipher in common",
    "NO_SUITABLE_SIGNATURE_ALGORITHM": "no signature algorithm in common",
    "VERSION_TOO_LOW": "client offers only TLS versions older than 1.2",
}


def handshake_failure(exc: BaseException, timeout: float | None = None) -> str:
    """Why a handshake failed, in a few words for the log."""
    if isinstance(exc, TimeoutError):
        return f"no handshake within {timeout:g} s" if timeout is not None else "timed out"
    if isinstance(exc, ssl.SSLEOFError):
        return "client left during the handshake"
    if isinstance(exc, ssl.SSLError):
        reason = exc.reason or ""
        if reason in _REASONS:
            return _REASONS[reason]
        if reason.startswith(("TLSV1_ALERT_", "SSLV3_ALERT_")):
            alert = reason.split("ALERT_", 1)[1].lower().replace("_", " ")
            return f"client sent alert: {alert}"
        return (reason or str(exc)).lower().replace("_", " ")
    if isinstance(exc, OSError):
        return f"connection lost ({exc.strerror or exc})"
    return str(exc)


def _drain_and_close(sock: socket.socket) -> None:
    """Close without a TCP reset (unread input at close() makes the kernel send RST, and the
    peer could lose our last records)."""
    with suppress(OSError):
        while sock.recv(RECV_BYTES):
            pass
    with suppress(OSError):
        sock.shutdown(socket.SHUT_WR)
    anyio.notify_closing(sock)
    sock.close()
