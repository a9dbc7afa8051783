"""Per-address limits apply to TLS handshakes: a connection counts from accept, so a flood of
handshakes (stalled or completed) from one address is held to the same limits as chatters."""

from __future__ import annotations

import json
import ssl
from collections.abc import AsyncIterator
from pathlib import Path

import anyio
import pytest
from anyio.abc import ByteStream
from anyio.streams.tls import TLSStream

import anychat

from .helpers import LineClient
from .tls_support import Certs, make_certs

pytestmark = pytest.mark.timeout(60)

#: The start of a ClientHello, then nothing: a handshake stalled until the handshake timeout.
_STALLED_HELLO = b"\x16\x03\x01\x02\x00\x01"


@pytest.fixture
def certs(tmp_path: Path) -> Certs:
    return make_certs(tmp_path / "certs")


async def _tls_from(port: int, source: str, certs: Certs) -> ByteStream:
    """A completed TLS handshake from ``source`` (raises if the server will not do it)."""
    stream = await anyio.connect_tcp("127.0.0.1", port, local_host=source)
    try:
        with anyio.fail_after(10):
            return await TLSStream.wrap(
                stream, hostname="localhost", ssl_context=certs.client_context()
            )
    except BaseException:
        await anyio.aclose_forcefully(stream)
        raise


async def _handshake_refused(port: int, source: str, certs: Certs) -> bool:
    try:
        stream = await _tls_from(port, source, certs)
    except (ssl.SSLError, OSError, anyio.BrokenResourceError, anyio.EndOfStream):
        return True
    await anyio.aclose_forcefully(stream)
    return False


async def _json_first(port: int, source: str, nick: str) -> dict[str, object]:
    async with LineClient(await anyio.connect_tcp("127.0.0.1", port, local_host=source)) as c:
        await c.send_json(type="hello", nick=nick)
        first: dict[str, object] = json.loads(await c.line())
        return first


@pytest.fixture
async def stalled() -> AsyncIterator[list[ByteStream]]:
    held: list[ByteStream] = []
    yield held
    for stream in held:
        await stream.aclose()


async def test_stalled_handshakes_hold_their_address_places(
    certs: Certs, stalled: list[ByteStream]
) -> None:
    async with anychat.serve(
        port=0,
        tls_cert=str(certs.cert_file),
        tls_key=str(certs.key_file),
        max_connections_per_address=3,
        connection_rate_per_address=0,
        tls_handshake_seconds=60,
        sniff_seconds=5,
    ) as server:
        for _ in range(3):
            stream = await anyio.connect_tcp("127.0.0.1", server.port, local_host="127.0.0.5")
            stalled.append(stream)
            await stream.send(_STALLED_HELLO)
        # The three half-done handshakes fill the address: a chatter from it is refused...
        with anyio.fail_after(10):
            while (first := await _json_first(server.port, "127.0.0.5", "late"))["type"] != "bye":
                assert first["type"] == "welcome"
        assert first["code"] == "too_many_connections"
        # ...and so is a fourth handshake, closed before any TLS work is done...
        assert await _handshake_refused(server.port, "127.0.0.5", certs)
        # ...while another address handshakes and chats as usual.
        other = await _tls_from(server.port, "127.0.0.6", certs)
        await other.send(b'{"type":"hello","nick":"other"}\n')
        with anyio.fail_after(10):
            answer = b""
            while b"\n" not in answer:
                answer += await other.receive()
        assert json.loads(answer.partition(b"\n")[0])["type"] == "welcome"
        await other.aclose()
        # A stalled handshake that gives up frees its place.
        await stalled.pop().aclose()
        with anyio.fail_after(10):
            while await _handshake_refused(server.port, "127.0.0.5", certs):
                pass


async def test_handshakes_count_against_the_connection_rate(certs: Certs) -> None:
    async with anychat.serve(
        port=0,
        tls_cert=str(certs.cert_file),
        tls_key=str(certs.key_file),
        tls_port=0,
        connection_rate_per_address=0.01,
        connection_burst_per_address=2,
    ) as server:
        assert server.tls_port is not None
        for port in (server.port, server.tls_port):  # the burst: two handshakes
            stream = await _tls_from(port, "127.0.0.7", certs)
            await stream.aclose()
        # The third gets no handshake, on either port; another address still does.
        assert await _handshake_refused(server.port, "127.0.0.7", certs)
        assert await _handshake_refused(server.tls_port, "127.0.0.7", certs)
        stream = await _tls_from(server.tls_port, "127.0.0.8", certs)
        await stream.aclose()


async def test_loopback_handshakes_stay_exempt(certs: Certs, stalled: list[ByteStream]) -> None:
    async with anychat.serve(
        port=0,
        tls_cert=str(certs.cert_file),
        tls_key=str(certs.key_file),
        max_connections_per_address=2,
        connection_rate_per_address=0,
        tls_handshake_seconds=60,
    ) as server:
        for _ in range(3):
            raw = await anyio.connect_tcp("127.0.0.1", server.port)
            stalled.append(raw)
            await raw.send(_STALLED_HELLO)
        stream = await _tls_from(server.port, "127.0.0.1", certs)
        await stream.aclose()
