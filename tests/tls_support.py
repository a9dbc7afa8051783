"""Test CAs and certificates (trustme), and a TLS echo server on :class:`TlsTransport`.

The echo server drives the transport the way a connection does: the first bytes are read by a
"sniffer" (a few bytes only, so the ClientHello is split between the sniffed bytes and the
socket), then non-blocking ``recv``/``send`` with the ``wait_*`` methods, and ``pending`` kept
flushed before closing.
"""

from __future__ import annotations

import datetime as dt
import socket
import ssl
from collections.abc import AsyncIterator, Callable
from contextlib import asynccontextmanager, suppress
from dataclasses import dataclass, field
from pathlib import Path

import anyio
import trustme
from anyio.abc import ByteStream
from anyio.streams.tls import TLSStream

from anychat.codecs.sniff_tls import looks_like_tls
from anychat.tls import HandshakeFailed, TlsTransport, accept_tls


@dataclass
class Certs:
    """A CA and a leaf certificate for localhost, with their files in ``folder``."""

    ca: trustme.CA
    leaf: trustme.LeafCert
    folder: Path

    @property
    def ca_file(self) -> Path:
        path = self.folder / "ca.pem"
        if not path.exists():
            self.ca.cert_pem.write_to_path(str(path))
        return path

    @property
    def cert_file(self) -> Path:
        path = self.folder / "cert.pem"
        if not path.exists():
            with path.open("wb") as file:  # the chain: leaf first, then the CA
                for blob in self.leaf.cert_chain_pems:
                    file.write(blob.bytes())
        return path

    @property
    def key_file(self) -> Path:
        path = self.folder / "key.pem"
        if not path.exists():
            self.leaf.private_key_pem.write_to_path(str(path))
        return path

    def server_context(self) -> ssl.SSLContext:
        from anychat.tlsconfig import server_context

        return server_context(self.cert_file, self.key_file)

    def client_context(self) -> ssl.SSLContext:
        from anychat.tlsconfig import client_context

        return client_context(ca_file=self.ca_file)


def make_certs(
    folder: Path,
    *names: str,
    not_before: dt.datetime | None = None,
    not_after: dt.datetime | None = None,
) -> Certs:
    folder.mkdir(parents=True, exist_ok=True)
    ca = trustme.CA()
    leaf = ca.issue_cert(
        *(names or ("localhost", "127.0.0.1", "::1")), not_before=not_before, not_after=not_after
    )
    return Certs(ca, leaf, folder)


@dataclass
class EchoServer:
    """What the echo server saw, for assertions."""

    port: int
    transports: list[TlsTransport] = field(default_factory=list)
    failures: list[str] = field(default_factory=list)
    max_unsent: int = 0
    changed: anyio.Event = field(default_factory=anyio.Event)

    def _note(self) -> None:
        self.changed.set()
        self.changed = anyio.Event()

    async def wait_until(self, predicate: Callable[[], bool]) -> None:
        while not predicate():
            await self.changed.wait()


async def _echo(
    server: EchoServer,
    sock: socket.socket,
    context: Callable[[], ssl.SSLContext],
    handshake_timeout: float,
    sniff_bytes: int,
) -> None:
    transport: TlsTransport | None = None
    try:
        first = b""
        while True:
            await anyio.wait_readable(sock)
            try:
                chunk = sock.recv(sniff_bytes)
            except BlockingIOError:
                continue
            if not chunk:
                return
            first += chunk
            verdict = looks_like_tls(first)
            if verdict is not None:
                break
        assert verdict, first
        try:
            transport = await accept_tls(
                sock,
                context(),
                first=first,
                address="test",
                peer_host="127.0.0.1",
                timeout=handshake_timeout,
            )
        except HandshakeFailed as exc:
            server.failures.append(exc.reason)
            return
        server.transports.append(transport)
        server._note()
        await _echo_loop(server, transport)
    except OSError:
        pass
    finally:
        if transport is not None:
            transport.close()
        else:
            sock.close()
        server._note()


async def _echo_loop(server: EchoServer, transport: TlsTransport) -> None:
    while True:
        try:
            data = transport.recv(65536)
        except BlockingIOError:
            await transport.wait_readable()
            continue
        if not data or data.startswith(b"CLOSE"):
            return
        view = memoryview(data)
        while view:
            try:
                sent = transport.send(view)
            except BlockingIOError:
                await transport.wait_writable()
                continue
            server.max_unsent = max(server.max_unsent, len(transport._unsent))
            view = view[sent:]
        while transport.pending:
            await transport.wait_writable()


@asynccontextmanager
async def echo_server(
    context: ssl.SSLContext | Callable[[], ssl.SSLContext],
    *,
    handshake_timeout: float = 10.0,
    sniff_bytes: int = 3,
) -> AsyncIterator[EchoServer]:
    """A TLS echo server on 127.0.0.1 (a line starting ``CLOSE`` ends the connection)."""
    get = context if callable(context) else (lambda: context)
    listener = socket.socket()
    listener.bind(("127.0.0.1", 0))
    listener.listen()
    listener.setblocking(False)
    server = EchoServer(listener.getsockname()[1])

    async def accept_loop() -> None:
        while True:
            await anyio.wait_readable(listener)
            with suppress(BlockingIOError):
                sock, _ = listener.accept()
                sock.setblocking(False)
                tg.start_soon(_echo, server, sock, get, handshake_timeout, sniff_bytes)

    try:
        async with anyio.create_task_group() as tg:
            tg.start_soon(accept_loop)
            yield server
            tg.cancel_scope.cancel()
    finally:
        anyio.notify_closing(listener)
        listener.close()


async def tls_connect(
    port: int,
    context: ssl.SSLContext,
    *,
    hostname: str = "localhost",
    standard_compatible: bool = True,
) -> ByteStream:
    stream = await anyio.connect_tcp("127.0.0.1", port)
    try:
        return await TLSStream.wrap(
            stream, hostname=hostname, ssl_context=context, standard_compatible=standard_compatible
        )
    except BaseException:
        await anyio.aclose_forcefully(stream)
        raise


async def receive_exactly(stream: ByteStream, size: int) -> bytes:
    data = b""
    while len(data) < size:
        data += await stream.receive()
    return data
