"""The load generator's TLS client: an ``ssl.SSLObject`` over two memory BIOs on a plain socket.

An ``ssl.SSLSocket`` lets OpenSSL read the socket itself, a record (at most 16 KiB) at a time
and about two system calls per record (its header, then its body), plus one that fails with
EAGAIN at the end of every receive. At 50-200 clients that made the generator, not the server,
the busy side of a TLS row: it left the generator no headroom, and a slower generator also
shrank the server's batches, which made the server's TLS cost per delivery look larger than it is.

Here the socket stays plain and non-blocking, and the generator does the socket calls itself:
one ``recv_into`` per receive, whatever the number of records in it, fed to the incoming BIO and
decrypted record by record into the caller's buffer; a send is encrypted into the outgoing BIO
and taken out as bytes, which the caller sends on the plain socket as it sends plaintext (keeping
what the kernel refused for later). Verification is the context's own (``wrap_bio`` with
``server_hostname``), as with a wrapped socket.

A receive never takes in more ciphertext than the caller has room for plaintext (TLS only adds
bytes; a record's worth stays in reserve for the start of a record the SSL object may hold), so
everything it can decrypt is handed over at once: nothing is left inside the SSL object that
the selector would not wake the generator for (only part of a record, which waits for the
socket's next data anyway).
"""

from __future__ import annotations

import socket
import ssl

#: Bytes of one setup-time receive during the handshake.
HANDSHAKE_RECV = 1 << 16
#: The largest TLS record on the wire (RFC 8446: a 5-byte header, 2^14 bytes of plaintext
#: plus 256).
MAX_RECORD = 5 + (1 << 14) + 256
#: A receive's buffer holds at least this much: the reserve for a partial record inside the
#: SSL object, and room to take in more than one more record.
MIN_ROOM = 3 * MAX_RECORD


class TlsClient:
    """One client's TLS session; ``sock`` is its plain socket (connected, blocking for now)."""

    __slots__ = ("incoming", "outgoing", "scratch", "sock", "tls")

    def __init__(
        self,
        sock: socket.socket,
        context: ssl.SSLContext,
        scratch: memoryview,
        server_hostname: str = "localhost",
    ) -> None:
        self.sock = sock
        #: Where ciphertext lands from the socket before the BIO takes it; shared by every
        #: client of one generator (one thread, one receive at a time).
        self.scratch = scratch
        self.incoming = ssl.MemoryBIO()
        self.outgoing = ssl.MemoryBIO()
        self.tls = context.wrap_bio(self.incoming, self.outgoing, server_hostname=server_hostname)

    def handshake(self) -> None:
        """The whole handshake, on the still blocking socket (once per client, at connect)."""
        while True:
            try:
                self.tls.do_handshake()
                break
            except ssl.SSLWantReadError:
                self.sock.sendall(self.outgoing.read())
                data = self.sock.recv(HANDSHAKE_RECV)
                if not data:
                    raise ConnectionError(
                        "the server closed the connection in the handshake"
                    ) from None
                self.incoming.write(data)
        self.sock.sendall(self.outgoing.read())

    def encrypt(self, data: bytes) -> bytes:
        """``data`` as records, for the plain socket (with anything else the session had to say)."""
        self.tls.write(data)
        return self.outgoing.read()

    def recv_into(self, buffer: memoryview) -> int:
        """Plaintext into ``buffer``: bytes taken, 0 at the end of the stream.

        One system call: the socket's data goes to the incoming BIO and every whole record in
        it is decrypted. Raises what a non-blocking socket raises when there is nothing yet
        (``BlockingIOError``), or ``ssl.SSLWantReadError`` when no whole record came."""
        room = len(buffer)
        if room < MIN_ROOM:
            raise ValueError(f"a TLS receive needs room for {MIN_ROOM} bytes")
        incoming, tls = self.incoming, self.tls
        # What the BIO and the SSL object hold decrypts into the room too: the SSL object may
        # hold the start of a record it took from the BIO (up to a record, not counted
        # anywhere), so that much stays in reserve.
        want = min(room - MAX_RECORD - incoming.pending - tls.pending(), len(self.scratch))
        if want > 0:
            got = self.sock.recv_into(self.scratch, want)
            if not got:
                return 0
            incoming.write(self.scratch[:got])
        n = 0
        read = tls.read
        # A whole record leaves nothing in the BIO: stop there rather than on the exception
        # a read of an empty BIO raises, which would cost more than the record.
        while n < room and (incoming.pending or tls.pending()):
            try:
                taken = read(room - n, buffer[n:])
            except ssl.SSLWantReadError:
                break  # part of a record: the rest comes with the socket's next data
            if not taken:
                return n  # the server's close_notify: the end, now or at the next call
            n += taken
        if not n:
            raise ssl.SSLWantReadError("no whole record yet")
        return n

    def recv(self, size: int) -> bytes:
        """Setup-time receive: up to ``size`` bytes of plaintext, b"" at the end."""
        buffer = bytearray(size)
        n = self.recv_into(memoryview(buffer))
        return bytes(buffer[:n])
