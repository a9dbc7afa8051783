"""HTTP and WebSocket clients for socket tests: h11 and wsproto's client sides over AnyIO.

Both are the libraries real clients are built on, driven over a real socket to the server on
127.0.0.1; every wait is bounded by a deadline.
"""

from __future__ import annotations

import json
from dataclasses import dataclass
from typing import Any

import anyio
import h11
from anyio.abc import SocketStream
from wsproto import ConnectionType, WSConnection
from wsproto.events import (
    AcceptConnection,
    CloseConnection,
    Event,
    Ping,
    RejectConnection,
    RejectData,
    Request,
    TextMessage,
)


@dataclass
class HttpReply:
    status: int
    headers: dict[bytes, bytes]
    body: bytes

    def header(self, name: str) -> str | None:
        value = self.headers.get(name.lower().encode())
        return None if value is None else value.decode()


class HttpClient:
    """One keep-alive HTTP/1.1 connection."""

    def __init__(self, stream: SocketStream, host: str) -> None:
        self.stream = stream
        self.host = host
        self.http = h11.Connection(h11.CLIENT)

    @classmethod
    async def open(cls, port: int) -> HttpClient:
        return cls(await anyio.connect_tcp("127.0.0.1", port), f"127.0.0.1:{port}")

    async def get(
        self, target: str, headers: list[tuple[str, str]] | None = None, method: str = "GET"
    ) -> HttpReply:
        if self.http.our_state is h11.DONE:
            self.http.start_next_cycle()
        request = h11.Request(
            method=method, target=target, headers=[("Host", self.host), *(headers or [])]
        )
        await self.stream.send(
            self.http.send(request) + (self.http.send(h11.EndOfMessage()) or b"")
        )
        return await self.reply()

    async def reply(self, timeout: float = 5) -> HttpReply:
        status, headers, body = 0, {}, b""
        with anyio.fail_after(timeout):
            while True:
                event = self.http.next_event()
                if event is h11.NEED_DATA:
                    try:
                        data = await self.stream.receive()
                    except anyio.EndOfStream:
                        data = b""
                    self.http.receive_data(data)
                elif isinstance(event, h11.Response):
                    status, headers = event.status_code, dict(event.headers)
                elif isinstance(event, h11.Data):
                    body += event.data
                elif isinstance(event, h11.EndOfMessage):
                    return HttpReply(status, headers, body)
                else:
                    raise AssertionError(f"unexpected {event!r}")

    async def aclose(self) -> None:
        await self.stream.aclose()

    async def __aenter__(self) -> HttpClient:
        return self

    async def __aexit__(self, *exc: object) -> None:
        await self.aclose()


async def http_get(
    port: int, target: str, headers: list[tuple[str, str]] | None = None
) -> HttpReply:
    async with await HttpClient.open(port) as client:
        return await client.get(target, headers)


class WsRefused(Exception):
    def __init__(self, status: int, body: bytes) -> None:
        super().__init__(f"WebSocket refused with {status}")
        self.status = status
        self.body = body


class WsPeer:
    """A WebSocket client speaking the chat's JSON, one object per text frame."""

    def __init__(self, stream: SocketStream) -> None:
        self.stream = stream
        self.ws = WSConnection(ConnectionType.CLIENT)
        self._events: list[Event] = []
        self._text: list[str] = []
        self.closed: CloseConnection | None = None

    @classmethod
    async def open(cls, port: int, *, origin: str | None = "same", target: str = "/ws") -> WsPeer:
        peer = cls(await anyio.connect_tcp("127.0.0.1", port))
        host = f"127.0.0.1:{port}"
        headers = []
        if origin is not None:
            headers.append((b"Origin", (f"http://{host}" if origin == "same" else origin).encode()))
        await peer.stream.send(
            peer.ws.send(Request(host=host, target=target, extra_headers=headers))
        )
        first = await peer.next()
        if isinstance(first, RejectConnection):
            body = b""
            while first.has_body:
                more = await peer.next()
                assert isinstance(more, RejectData)
                body += more.data
                if more.body_finished:
                    break
            await peer.stream.aclose()
            raise WsRefused(first.status_code, body)
        assert isinstance(first, AcceptConnection), first
        return peer

    async def next(self, timeout: float = 5) -> Event:
        """The next event; text fragments are joined into one ``TextMessage``."""
        with anyio.fail_after(timeout):
            while True:
                while self._events:
                    event = self._events.pop(0)
                    if isinstance(event, TextMessage):
                        self._text.append(event.data)
                        if not event.message_finished:
                            continue
                        text, self._text = "".join(self._text), []
                        return TextMessage(data=text)
                    if isinstance(event, CloseConnection):
                        self.closed = event
                    return event
                try:
                    data: bytes | None = await self.stream.receive()
                except (anyio.EndOfStream, anyio.BrokenResourceError):
                    data = None
                self.ws.receive_data(data)
                self._events.extend(self.ws.events())

    async def send_text(self, text: str) -> None:
        await self.stream.send(self.ws.send(TextMessage(data=text)))

    async def send_json(self, **obj: Any) -> None:
        await self.send_text(json.dumps(obj))

    async def json_event(self, type_: str, timeout: float = 5) -> dict[str, Any]:
        """Skip frames until a JSON event of ``type_`` arrives (answering pings on the way)."""
        with anyio.fail_after(timeout):
            while True:
                event = await self.next()
                if isinstance(event, Ping):
                    await self.stream.send(self.ws.send(event.response()))
                elif isinstance(event, CloseConnection):
                    raise AssertionError(
                        f"closed ({event.code} {event.reason}) waiting for {type_}"
                    )
                elif isinstance(event, TextMessage):
                    obj: dict[str, Any] = json.loads(event.data)
                    if obj["type"] == type_:
                        return obj

    async def wait_closed(self, timeout: float = 5) -> CloseConnection:
        with anyio.fail_after(timeout):
            while True:
                event = await self.next()
                if isinstance(event, CloseConnection):
                    return event

    async def aclose(self) -> None:
        await self.stream.aclose()

    async def __aenter__(self) -> WsPeer:
        return self

    async def __aexit__(self, *exc: object) -> None:
        await self.aclose()
