"""A goodbye is the last thing a client hears, even when it waits behind a backlog."""

from __future__ import annotations

import socket

import anyio

from anychat import model as m
from anychat.codecs.web.http import WebCodec
from anychat.connection import Connection
from anychat.transport import TcpTransport


async def test_nothing_follows_a_websocket_close_frame_even_after_a_backlog() -> None:
    ours, theirs = socket.socketpair()
    ours.setblocking(False)
    theirs.setblocking(False)
    codec = _upgraded()
    conn = Connection(
        TcpTransport(ours, ("127.0.0.1", 1)), codec, max_queue_bytes=1 << 30, on_dirty=_ignore
    )
    big = codec.encode(m.Message(id=1, time=0.0, sender="a", target="#g", text="x" * (1 << 21)))
    late = codec.encode(m.Message(id=2, time=0.0, sender="a", target="#g", text="late"))
    bye = _upgraded().encode(m.Bye(code=None, reason="bye"))  # what the goodbye looks like
    received = b""
    with anyio.fail_after(10):
        async with anyio.create_task_group() as tg:
            conn.task_group = tg
            conn.push(big)
            conn.flush()
            assert conn.writing  # the kernel took only part: the rest waits in the backlog
            conn.close(m.Bye(code=None, reason="bye"))
            conn.push(late)  # e.g. a room message fanned out while the goodbye drains
            conn.flush()
            while len(received) < len(big) + len(bye):
                await anyio.wait_readable(theirs)
                try:
                    received += theirs.recv(1 << 20)
                except BlockingIOError:
                    continue
    ours.close()
    theirs.setblocking(True)
    theirs.settimeout(5)
    while chunk := theirs.recv(1 << 20):
        received += chunk
    theirs.close()
    assert conn.closed
    assert received == big + bye  # the goodbye last; the late frame never sent
    assert late not in received


def _upgraded() -> WebCodec:
    codec = WebCodec()
    codec.feed(
        b"GET /ws HTTP/1.1\r\nHost: x\r\nUpgrade: websocket\r\nConnection: Upgrade\r\n"
        b"Sec-WebSocket-Key: AAAAAAAAAAAAAAAAAAAAAA==\r\nSec-WebSocket-Version: 13\r\n\r\n"
    )
    assert codec.protocol == "websocket"
    return codec


def _ignore(conn: Connection) -> None:
    """No hub here: the test flushes by hand."""
