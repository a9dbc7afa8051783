"""The sniffing deadline on a busy server: bytes or an end that arrived by the deadline but
were not read yet (the event loop was behind) must count as what they are. A TLS client that
handshakes and leaves at once must not be greeted as a silent person and joined to the rooms."""

from __future__ import annotations

import socket
from collections.abc import Iterator

import anyio
import pytest

from anychat.codecs.sniff import Protocol
from anychat.opening import _late, _sniff
from anychat.transport import TcpTransport


@pytest.fixture
def pair() -> Iterator[tuple[socket.socket, TcpTransport]]:
    with socket.create_server(("127.0.0.1", 0)) as listener:
        client = socket.create_connection(listener.getsockname())
        server, peer = listener.accept()
    server.setblocking(False)
    try:
        yield client, TcpTransport(server, peer)
    finally:
        client.close()
        server.close()


async def test_silence_at_the_deadline_is_a_person_on_nc(
    pair: tuple[socket.socket, TcpTransport],
) -> None:
    _, transport = pair
    assert _late(transport) == b""
    assert await _sniff(transport, 0.01) == (Protocol.TEXT, b"")


async def test_words_waiting_at_the_deadline_are_read(
    pair: tuple[socket.socket, TcpTransport],
) -> None:
    client, transport = pair
    client.sendall(b"NICK ada\r\n")
    with anyio.fail_after(5):
        await transport.wait_readable()
    assert _late(transport) == b"NICK ada\r\n"


async def test_a_peer_gone_by_the_deadline_is_gone(
    pair: tuple[socket.socket, TcpTransport],
) -> None:
    client, transport = pair
    client.close()
    with anyio.fail_after(5):
        await transport.wait_readable()
    assert _late(transport) is None  # not b"": that would read as a silent person
