"""The TLS transport on real sockets: handshake fed the sniffed bytes, I/O, bounds, endings."""

from __future__ import annotations

import os
import socket
import ssl
from pathlib import Path

import anyio
import pytest
from anyio.abc import ByteStream

from anychat.tls import RECORD_BYTES, SEND_CHUNK, HandshakeFailed, TlsTransport, accept_tls
from anychat.tlsconfig import ServerTls, fingerprint

from .tls_support import EchoServer, echo_server, make_certs, receive_exactly, tls_connect


async def test_echo_with_the_client_hello_split_between_sniffer_and_socket(
    tmp_path: Path,
) -> None:
    certs = make_certs(tmp_path)
    async with echo_server(certs.server_context(), sniff_bytes=3) as server:
        stream = await tls_connect(server.port, certs.client_context())
        with anyio.fail_after(10):
            await stream.send(b"hello over tls\n")
            assert await receive_exactly(stream, 15) == b"hello over tls\n"
            await server.wait_until(lambda: bool(server.transports))
        transport = server.transports[0]
        assert transport.secure and transport.peer_host == "127.0.0.1"
        assert transport.version in ("TLSv1.2", "TLSv1.3")
        await stream.aclose()


async def test_a_sniffer_that_read_the_whole_hello_loses_nothing(tmp_path: Path) -> None:
    certs = make_certs(tmp_path)
    async with echo_server(certs.server_context(), sniff_bytes=65536) as server:
        stream = await tls_connect(server.port, certs.client_context())
        with anyio.fail_after(10):
            await stream.send(b"x" * 100)
            assert await receive_exactly(stream, 100) == b"x" * 100
        await stream.aclose()


async def test_a_slow_reader_gets_everything_and_the_transport_holds_one_chunk(
    tmp_path: Path,
) -> None:
    """5 MB echoed to a client that reads in small bites: the kernel buffers fill, ``send``
    refuses while ciphertext is unsent, ``wait_writable`` drains it, and nothing is lost."""
    certs = make_certs(tmp_path)
    payload = os.urandom(5 * 1024 * 1024)
    async with echo_server(certs.server_context()) as server:
        stream = await tls_connect(server.port, certs.client_context())
        received = bytearray()

        async def read_slowly() -> None:
            while len(received) < len(payload):
                received.extend(await stream.receive(4096))
                await anyio.lowlevel.checkpoint()

        with anyio.fail_after(60):
            async with anyio.create_task_group() as tg:
                tg.start_soon(read_slowly)
                for start in range(0, len(payload), 1 << 20):
                    await stream.send(payload[start : start + (1 << 20)])
        assert bytes(received) == payload
        # One chunk of plaintext, plus the records' headers and tags, at most.
        assert 0 < server.max_unsent <= SEND_CHUNK + SEND_CHUNK // 100
        await stream.aclose()


async def _roomy_transport(server: EchoServer, stream: ByteStream) -> TlsTransport:
    """The server's side of ``stream`` once it has echoed a byte, its socket's send buffer set
    to 1 MiB."""
    await stream.send(b"x")
    assert await receive_exactly(stream, 1) == b"x"
    await server.wait_until(lambda: bool(server.transports))
    transport = server.transports[0]
    transport.sock.setsockopt(socket.SOL_SOCKET, socket.SO_SNDBUF, 1 << 20)
    return transport


async def test_a_large_batch_the_kernel_can_take_goes_in_one_send(tmp_path: Path) -> None:
    """A batch of several chunks is taken whole when the socket has room for it, so no writer
    task (a round trip through the event loop per chunk) is needed for it."""
    certs = make_certs(tmp_path)
    async with echo_server(certs.server_context()) as server:
        stream = await tls_connect(server.port, certs.client_context())
        with anyio.fail_after(10):
            transport = await _roomy_transport(server, stream)
            batch = os.urandom(2 * SEND_CHUNK + 1000)
            assert transport.send(batch) == len(batch)
            assert not transport.pending
            assert await receive_exactly(stream, len(batch)) == batch
        await stream.aclose()


class _CountingSocket:
    """Stands in for a transport's socket and counts the system calls that send."""

    def __init__(self, sock: socket.socket) -> None:
        self.sock = sock
        self.sends = 0

    def send(self, data: bytes) -> int:
        self.sends += 1
        return self.sock.send(data)

    def sendmsg(self, buffers: list[bytes]) -> int:
        self.sends += 1
        return self.sock.sendmsg(buffers)

    def __getattr__(self, name: str) -> object:
        return getattr(self.sock, name)


async def test_a_fan_out_batch_of_several_records_is_one_system_call(tmp_path: Path) -> None:
    """A busy room's batch for one client (100 KB: seven records) goes to the kernel with one
    ``sendmsg``, as it goes with one ``send`` over plain TCP."""
    certs = make_certs(tmp_path)
    async with echo_server(certs.server_context()) as server:
        stream = await tls_connect(server.port, certs.client_context())
        with anyio.fail_after(10):
            transport = await _roomy_transport(server, stream)
            counting = _CountingSocket(transport.sock)
            transport.sock = counting  # type: ignore[assignment]
            batch = os.urandom(100_000)
            try:
                assert transport.send(batch) == len(batch)
            finally:
                transport.sock = counting.sock
            assert counting.sends == 1
            assert not transport.pending
            assert await receive_exactly(stream, len(batch)) == batch
        await stream.aclose()


class _WatchedBio:
    """Stands in for one of a transport's memory BIOs (the SSL object keeps the real one) and
    records the most bytes that ever went into it, or came out, at once."""

    def __init__(self, bio: ssl.MemoryBIO) -> None:
        self.bio = bio
        self.most = 0

    @property
    def pending(self) -> int:
        return self.bio.pending

    def write(self, data: bytes) -> int:
        self.most = max(self.most, len(data))
        return self.bio.write(data)

    def read(self, size: int = -1) -> bytes:
        data = self.bio.read(size)
        self.most = max(self.most, len(data))
        return data

    def write_eof(self) -> None:
        self.bio.write_eof()


async def test_the_memory_bios_never_hold_more_than_a_record(tmp_path: Path) -> None:
    """A memory BIO keeps the largest buffer it ever needed for as long as the connection
    lives: a 1 MB echo, in and out in 64 KiB system calls, goes through each BIO at most one
    TLS record at a time."""
    certs = make_certs(tmp_path)
    payload = os.urandom(1 << 20)
    async with echo_server(certs.server_context()) as server:
        stream = await tls_connect(server.port, certs.client_context())
        with anyio.fail_after(30):
            await stream.send(b"x")
            assert await receive_exactly(stream, 1) == b"x"
            await server.wait_until(lambda: bool(server.transports))
            transport = server.transports[0]
            incoming = transport._incoming = _WatchedBio(transport._incoming)  # type: ignore[assignment]
            outgoing = transport._outgoing = _WatchedBio(transport._outgoing)  # type: ignore[assignment]
            received = bytearray()

            async def read_all() -> None:
                while len(received) < len(payload):
                    received.extend(await stream.receive(1 << 20))

            async with anyio.create_task_group() as tg:
                tg.start_soon(read_all)
                await stream.send(payload)
        assert bytes(received) == payload
        # In: the socket's reads fed a record's worth at a time. Out: the ciphertext of one
        # record, its plaintext plus a header, a content type and a tag.
        assert RECORD_BYTES // 2 < incoming.most <= RECORD_BYTES
        assert RECORD_BYTES < outgoing.most <= RECORD_BYTES + 64
        await stream.aclose()


@pytest.mark.parametrize(
    ("offered", "selected"),
    [(["http/1.1"], "http/1.1"), (["h2", "http/1.1"], "http/1.1"), (["h2"], None), ([], None)],
)
async def test_alpn_offers_http11_and_others_carry_on_without(
    tmp_path: Path, offered: list[str], selected: str | None
) -> None:
    certs = make_certs(tmp_path)
    client = certs.client_context()
    if offered:
        client.set_alpn_protocols(offered)
    async with echo_server(certs.server_context()) as server:
        stream = await tls_connect(server.port, client)
        with anyio.fail_after(10):
            await stream.send(b"ping")
            assert await receive_exactly(stream, 4) == b"ping"
        assert server.transports[0].alpn_protocol == selected
        await stream.aclose()


async def test_sni_is_accepted_and_recorded(tmp_path: Path) -> None:
    certs = make_certs(tmp_path, "chat.example.org")
    async with echo_server(certs.server_context()) as server:
        stream = await tls_connect(server.port, certs.client_context(), hostname="chat.example.org")
        with anyio.fail_after(10):
            await stream.send(b"ping")
            assert await receive_exactly(stream, 4) == b"ping"
        assert server.transports[0].server_hostname == "chat.example.org"
        await stream.aclose()


async def test_close_sends_close_notify(tmp_path: Path) -> None:
    """A standard-compatible client sees a clean end (close_notify), not a truncation."""
    certs = make_certs(tmp_path)
    async with echo_server(certs.server_context()) as server:
        stream = await tls_connect(server.port, certs.client_context(), standard_compatible=True)
        with anyio.fail_after(10):
            await stream.send(b"CLOSE\n")
            with pytest.raises(anyio.EndOfStream):
                await stream.receive()
        assert server.transports
        await stream.aclose()


async def test_the_clients_close_notify_is_the_end_of_input(tmp_path: Path) -> None:
    certs = make_certs(tmp_path)
    async with echo_server(certs.server_context()) as server:
        stream = await tls_connect(server.port, certs.client_context(), standard_compatible=True)
        with anyio.fail_after(10):
            await stream.send(b"bye")
            assert await receive_exactly(stream, 3) == b"bye"
            await stream.aclose()  # close_notify
            transport = server.transports[0]
            await server.wait_until(lambda: transport._closed)


async def _accepted(
    certs_context: ssl.SSLContext, client: ssl.SSLContext
) -> tuple[TlsTransport, anyio.abc.ByteStream, socket.socket]:
    listener = socket.socket()
    listener.bind(("127.0.0.1", 0))
    listener.listen()
    port = listener.getsockname()[1]
    result: list[TlsTransport] = []

    async def server_side() -> None:
        await anyio.wait_readable(listener)
        sock, _ = listener.accept()
        sock.setblocking(False)
        result.append(
            await accept_tls(
                sock, certs_context, first=b"", address="x", peer_host="127.0.0.1", timeout=10
            )
        )

    async with anyio.create_task_group() as tg:
        tg.start_soon(server_side)
        stream = await tls_connect(port, client)
    return result[0], stream, listener


async def test_buffered_plaintext_makes_wait_readable_return_at_once(tmp_path: Path) -> None:
    """After a small ``recv``, the rest of the record sits decrypted in the SSL object and the
    socket is empty: waiting on the socket would hang (the hang guard would fail the test)."""
    certs = make_certs(tmp_path)
    transport, stream, listener = await _accepted(certs.server_context(), certs.client_context())
    try:
        with anyio.fail_after(10):
            await stream.send(b"abcdef")
            while True:
                try:
                    first = transport.recv(1)
                    break
                except BlockingIOError:
                    await transport.wait_readable()
            assert first == b"a"
        with anyio.fail_after(5):
            await transport.wait_readable()
        assert transport.recv(100) == b"bcdef"
        with pytest.raises(BlockingIOError):
            transport.recv(100)
    finally:
        transport.close()
        await stream.aclose()
        listener.close()


async def _handshake_reason(first: bytes, then: bytes | None, timeout: float = 10) -> str:
    """Connect raw, send ``first`` (and ``then``, or hang up if ``None``), return the failure."""
    listener = socket.socket()
    listener.bind(("127.0.0.1", 0))
    listener.listen()
    port = listener.getsockname()[1]
    client = socket.create_connection(("127.0.0.1", port))
    sock, _ = listener.accept()
    sock.setblocking(False)
    client.sendall(first)
    if then is None:
        client.close()
    elif then:
        client.sendall(then)
    context = ssl.create_default_context(ssl.Purpose.CLIENT_AUTH)
    try:
        with pytest.raises(HandshakeFailed) as caught:
            await accept_tls(
                sock, context, first=b"", address="x", peer_host="127.0.0.1", timeout=timeout
            )
    finally:
        sock.close()
        client.close()
        listener.close()
    return caught.value.reason


async def test_garbage_after_a_record_header_fails_at_once() -> None:
    reason = await _handshake_reason(b"\x16\x03\x01\x00\x05", b"\x00" * 5, timeout=30)
    assert reason and not reason.startswith("no handshake")


async def test_plain_http_to_a_tls_port_is_named() -> None:
    reason = await _handshake_reason(b"GET / HTTP/1.1\r\nHost: x\r\n\r\n", b"")
    assert reason == "plain HTTP sent to the TLS port"


async def test_a_stalled_handshake_times_out() -> None:
    reason = await _handshake_reason(b"\x16\x03\x01", b"", timeout=0.2)
    assert reason == "no handshake within 0.2 s"


async def test_a_client_leaving_mid_handshake() -> None:
    reason = await _handshake_reason(b"\x16\x03\x01\x00", None)
    assert reason == "client left during the handshake"


@pytest.mark.filterwarnings("ignore:ssl.TLSVersion.TLSv1:DeprecationWarning")
async def test_tls_older_than_1_2_is_refused(tmp_path: Path) -> None:
    certs = make_certs(tmp_path)
    client = certs.client_context()
    client.minimum_version = ssl.TLSVersion.TLSv1
    client.maximum_version = ssl.TLSVersion.TLSv1_1
    try:
        client.set_ciphers("DEFAULT:@SECLEVEL=0")
    except ssl.SSLError:
        pytest.skip("this OpenSSL cannot offer TLS 1.1 at all")
    async with echo_server(certs.server_context()) as server:
        with anyio.fail_after(10), pytest.raises(ssl.SSLError):
            await tls_connect(server.port, client)
        await server.wait_until(lambda: bool(server.failures))
    assert server.failures == ["client offers only TLS versions older than 1.2"] or (
        server.failures[0].startswith("client sent alert")
    )


async def test_reload_serves_new_handshakes_and_keeps_old_connections(tmp_path: Path) -> None:
    old = make_certs(tmp_path / "old")
    holder = ServerTls(old.cert_file, old.key_file)
    async with echo_server(lambda: holder.context) as server:
        before = await tls_connect(server.port, old.client_context())
        new = make_certs(tmp_path / "new")
        for source, target in ((new.cert_file, old.cert_file), (new.key_file, old.key_file)):
            target.write_bytes(source.read_bytes())
        assert holder.reload()
        assert holder.fingerprint == fingerprint(new.cert_file)
        with anyio.fail_after(10):
            after = await tls_connect(server.port, new.client_context())
            with pytest.raises(ssl.SSLCertVerificationError):
                await tls_connect(server.port, old.client_context())
            for stream, text in ((before, b"old conn"), (after, b"new conn")):
                await stream.send(text)
                assert await receive_exactly(stream, len(text)) == text
        await before.aclose()
        await after.aclose()


def test_a_failed_reload_keeps_the_old_certificate(tmp_path: Path) -> None:
    certs = make_certs(tmp_path)
    holder = ServerTls(certs.cert_file, certs.key_file)
    context, print_ = holder.context, holder.fingerprint
    certs.key_file.write_text("not a key\n")
    assert not holder.reload()
    assert holder.context is context and holder.fingerprint == print_
