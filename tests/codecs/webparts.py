"""Client-side parsing for the web codec's tests: h11 and wsproto read what the server wrote.

Reading the codec's output with the same libraries a real client is built on (rather than with
string matching) is what makes these tests say something about interoperability.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from itertools import pairwise

import h11
from wsproto import ConnectionType, WSConnection
from wsproto.events import AcceptConnection, Event, RejectConnection, Request

from anychat.codecs import Inbound, LocalReply
from anychat.codecs.web import WebCodec
from anychat.codecs.web.assets import Assets

HOST = b"chat.test:3000"
ORIGIN = b"http://chat.test:3000"


@dataclass
class Reply:
    status: int
    headers: dict[bytes, bytes]
    body: bytes

    def header(self, name: str) -> str | None:
        value = self.headers.get(name.lower().encode())
        return None if value is None else value.decode()


def request(
    target: str = "/",
    method: str = "GET",
    headers: Sequence[tuple[str, str]] = (),
    *,
    host: bytes | None = HOST,
    version: str = "1.1",
) -> bytes:
    lines = [f"{method} {target} HTTP/{version}".encode()]
    if host is not None:
        lines.append(b"Host: " + host)
    lines += [f"{k}: {v}".encode() for k, v in headers]
    return b"\r\n".join(lines) + b"\r\n\r\n"


def replies_bytes(out: Sequence[Inbound]) -> bytes:
    assert all(isinstance(item, LocalReply) for item in out), out
    return b"".join(item.data for item in out if isinstance(item, LocalReply))


def parse_replies(data: bytes, methods: Sequence[str]) -> list[Reply]:
    """Parse consecutive responses (one per request method given), as a client would."""
    replies: list[Reply] = []
    for method in methods:
        client = h11.Connection(h11.CLIENT)
        client.send(h11.Request(method=method, target="/", headers=[("Host", "x")]))
        client.send(h11.EndOfMessage())
        client.receive_data(data)
        status = 0
        headers: dict[bytes, bytes] = {}
        body = b""
        while True:
            event = client.next_event()
            if isinstance(event, h11.Response):
                status = event.status_code
                headers = dict(event.headers)
            elif isinstance(event, h11.Data):
                body += event.data
            elif isinstance(event, h11.EndOfMessage):
                break
            else:
                raise AssertionError(f"incomplete response: {event!r}")
        replies.append(Reply(status, headers, body))
        data = client.trailing_data[0]
    assert data == b"", f"unparsed output: {data[:200]!r}"
    return replies


def get(codec: WebCodec, raw: bytes, method: str = "GET") -> Reply:
    (reply,) = parse_replies(replies_bytes(codec.feed(raw)), [method])
    return reply


def small_assets() -> Assets:
    return Assets(
        {
            "index.html": b"<!doctype html><title>anychat</title>" + b"<p>chat</p>" * 100,
            "app.js": b"export const x = 1;\n" * 50,
            "tiny.css": b"body{}",
            "logo.png": bytes(range(256)) * 4,
        }
    )


class WsClient:
    """wsproto's client side, talking to a :class:`WebCodec` through plain bytes."""

    def __init__(self, codec: WebCodec, *, origin: bytes | None = ORIGIN) -> None:
        self.codec = codec
        self.ws = WSConnection(ConnectionType.CLIENT)
        headers = [] if origin is None else [(b"Origin", origin)]
        self.handshake = self.ws.send(
            Request(host=HOST.decode(), target="/ws", extra_headers=headers)
        )
        self.inbound: list[Inbound] = []

    def open(self) -> WsClient:
        accepted = self.receive(self.send_raw(self.handshake))
        assert any(isinstance(e, AcceptConnection) for e in accepted), accepted
        return self

    def refused(self) -> RejectConnection:
        events = self.receive(self.send_raw(self.handshake))
        assert events and isinstance(events[0], RejectConnection), events
        return events[0]

    def send_raw(self, data: bytes) -> bytes:
        out = self.codec.feed(data)
        self.inbound += [item for item in out if not isinstance(item, LocalReply)]
        return b"".join(item.data for item in out if isinstance(item, LocalReply))

    def send(self, event: Event) -> bytes:
        return self.send_raw(self.ws.send(event))

    def receive(self, data: bytes) -> list[Event]:
        self.ws.receive_data(data)
        return list(self.ws.events())

    def commands(self) -> list[Inbound]:
        taken, self.inbound = self.inbound, []
        return taken


def chunked(data: bytes, cuts: Sequence[int]) -> list[bytes]:
    """``data`` cut at the given offsets (taken modulo its length): the same bytes, any chunks."""
    points = sorted({0, len(data), *(cut % (len(data) + 1) for cut in cuts)})
    return [data[a:b] for a, b in pairwise(points)]
