"""The web codec: HTTP/1.1 (h11) for the page, upgraded to a WebSocket (wsproto) for the chat.

A connection whose first bytes are an HTTP request line gets one :class:`WebCodec`. While it
speaks HTTP, every request is answered at once, from memory, as a :class:`~anychat.codecs.
LocalReply` (the broker never hears of it):

- ``GET /`` and the page's files: from :class:`~.assets.Assets`, with ``ETag`` /
  ``If-None-Match`` (304), ``Cache-Control: no-cache`` (always revalidate: file names carry no
  version, so a cached script must never outlive an upgrade of the server) and the gzip body
  when the client accepts it;
- ``GET /healthz``: 200 while serving, 503 once shutdown began;
- ``GET /metrics``: Prometheus text, from the snapshot callable given at construction;
- ``GET /ws`` with a WebSocket upgrade: 101, and the connection becomes a
  :class:`~.websocket.WebSocketSession` carrying JSON lines;
- anything else: 404; methods other than GET and HEAD: 405; malformed requests: 400 (505 for an
  HTTP version other than 1.0 and 1.1); a request body past the limit: 413; a request head past
  16 KiB: 431. Errors close the connection.

Keep-alive and pipelining follow h11: requests are answered in order, the next one parsed once
the previous response is out; at most :data:`MAX_PIPELINED` from one received chunk, the last
of them with ``Connection: close``. Every response carries the security headers (a strict
Content-Security-Policy with no inline script and no ``eval``, ``nosniff``, no referrer, no
framing). Nothing here raises out of :meth:`WebCodec.feed`: bad input becomes an error response
or a close code, and :attr:`WebCodec.hangup` tells the glue to close once the output is sent.
"""

from __future__ import annotations

import base64
import binascii
import hashlib
import re
from collections.abc import Callable, Collection, Iterable, Sequence
from http import HTTPStatus
from typing import ClassVar, Final

import h11
from h11._state import MIGHT_SWITCH_PROTOCOL  # public in h11's docs, not in __all__

from ... import model as m
from ...metrics import CONTENT_TYPE as METRICS_TYPE
from ...metrics import ServerStats, render_prometheus
from .. import DEFAULT_MAX_LINE_BYTES, Inbound, LocalReply
from .assets import Asset, Assets, default_assets
from .origin import OriginPolicy
from .websocket import WS_ENCODING_KEY, WebSocketSession, encode_event

__all__ = ["HTTP_ENCODING_KEY", "MAX_HEAD_BYTES", "MAX_PIPELINED", "WS_PATH", "WebCodec"]

#: Where the page opens its WebSocket (``ws://host:port/ws``).
WS_PATH: Final = "/ws"
#: h11's default bound on a request head; past it the client gets 431.
MAX_HEAD_BYTES: Final = 16 * 1024
#: Requests answered from one received chunk before the connection is closed after the last
#: of them. Browsers do not pipeline at all; without a bound, 64 KiB of tiny requests would
#: queue thousands of copies of the page in one go (an amplification attack).
MAX_PIPELINED: Final = 16
#: Before the upgrade a connection receives no chat events: it shares one key with all others.
HTTP_ENCODING_KEY: Final = "http"

_WS_GUID: Final = b"258EAFA5-E914-47DA-95CA-C5AB0DC85B11"  # RFC 6455 §1.3
_ALLOW: Final = b"GET, HEAD"
#: A Host header we are willing to repeat in the CSP (anything else is left out of it).
_SAFE_HOST: Final = re.compile(rb"[A-Za-z0-9.\-]+(:[0-9]{1,5})?|\[[0-9A-Fa-f:.]+\](:[0-9]{1,5})?")
_SECURITY: Final[tuple[tuple[bytes, bytes], ...]] = (
    (b"x-content-type-options", b"nosniff"),
    (b"referrer-policy", b"no-referrer"),
    (b"x-frame-options", b"DENY"),
    (b"cross-origin-opener-policy", b"same-origin"),
    (b"cross-origin-resource-policy", b"same-origin"),
    (b"permissions-policy", b"camera=(), microphone=(), geolocation=()"),
)
_CSP: Final = (
    b"default-src 'self'; script-src 'self'; style-src 'self'; img-src 'self' data:; "
    b"connect-src 'self'%s; base-uri 'none'; form-action 'self'; frame-ancestors 'none'; "
    b"object-src 'none'"
)
_NOT_FOUND: Final = b"""<!doctype html>
<html lang="en"><head><meta charset="utf-8"><title>Not found</title></head>
<body><h1>Not found</h1><p>There is nothing here. The chat is at <a href="/">/</a>.</p></body>
</html>
"""
_TEXT: Final = b"text/plain; charset=utf-8"
#: Goodbyes that mean "come back later": a fresh HTTP connection hears them as a 503.
_UNAVAILABLE: Final = frozenset({m.ErrorCode.SHUTDOWN, m.ErrorCode.TOO_MANY_CONNECTIONS})
#: What an upgraded connection holds instead of its own HTTP state, never used again: every
#: use of ``_http`` and ``_origins`` is for a connection not yet upgraded (``_ws is None``).
_UPGRADED: Final = h11.Connection(h11.SERVER)
_UPGRADED_ORIGINS: Final = OriginPolicy()


def accept_key(key: bytes) -> bytes:
    """RFC 6455 §4.2.2: the server proves it read the handshake by hashing the client's key."""
    return base64.b64encode(hashlib.sha1(key + _WS_GUID).digest())


def _header(headers: Sequence[tuple[bytes, bytes]], name: bytes) -> bytes | None:
    """The header's value (repeated ones joined with commas, as RFC 9110 §5.3 allows)."""
    values = [value for key, value in headers if key == name]
    return b", ".join(values) if values else None


def _tokens(value: bytes | None) -> set[bytes]:
    return {part.strip().lower() for part in value.split(b",")} if value else set()


def _accepts_gzip(value: bytes | None) -> bool:
    """Whether Accept-Encoding admits gzip (an explicit ``q=0`` refuses it, even after ``*``)."""
    if not value:
        return False
    verdict: dict[bytes, bool] = {}
    for part in value.split(b","):
        coding, *params = part.split(b";")
        q = 1.0
        for param in params:
            key, _, number = param.strip().partition(b"=")
            if key.strip().lower() == b"q":
                try:
                    q = float(number.strip())
                except ValueError:
                    q = 0.0
        verdict[coding.strip().lower()] = q > 0
    for name in (b"gzip", b"x-gzip", b"*"):
        if name in verdict:
            return verdict[name]
    return False


def _matches(if_none_match: bytes | None, etag: str) -> bool:
    """RFC 9110 §13.1.2: weak comparison, a list of tags, or ``*``."""
    if if_none_match is None:
        return False
    wanted = etag.encode()
    for tag in if_none_match.split(b","):
        tag = tag.strip()
        if tag == b"*" or tag.removeprefix(b"W/") == wanted:
            return True
    return False


def _path(target: bytes) -> str:
    """The path part of a request target, also in absolute form (``http://host/path``)."""
    if target.startswith((b"http://", b"https://")):
        rest = target.split(b"//", 1)[1]
        slash = rest.find(b"/")
        target = rest[slash:] if slash >= 0 else b"/"
    path = target.split(b"?", 1)[0].split(b"#", 1)[0]
    return path.decode("ascii", errors="replace")


def replies_data(out: Iterable[Inbound]) -> bytes:
    return b"".join(item.data for item in out if isinstance(item, LocalReply))


class WebCodec:
    """Server side of one HTTP connection, and of the WebSocket it may become."""

    name: ClassVar[str] = "web"

    def __init__(
        self,
        *,
        assets: Assets | None = None,
        status: Callable[[], ServerStats] | None = None,
        allowed_origins: Collection[str] = (),
        max_message_bytes: int = DEFAULT_MAX_LINE_BYTES,
        version: str = "",
    ) -> None:
        self._assets = assets if assets is not None else default_assets()
        self._status = status
        self._origins = OriginPolicy(allowed_origins)
        self._max_message_bytes = max_message_bytes
        self._version = version
        self._http = h11.Connection(h11.SERVER, max_incomplete_event_size=MAX_HEAD_BYTES)
        self._request: h11.Request | None = None
        self._body_bytes = 0
        self._ws: WebSocketSession | None = None
        self._answered = False
        self._in_batch = 0
        #: Set when the connection should close once its output is sent.
        self.hangup: m.Bye | None = None

    # ------------------------------------------------------------------ the codec protocol

    @property
    def protocol(self) -> str:
        """``"http"`` until the upgrade, ``"websocket"`` after (for statistics)."""
        return "http" if self._ws is None else "websocket"

    @property
    def encoding_key(self) -> str:
        return HTTP_ENCODING_KEY if self._ws is None else WS_ENCODING_KEY

    def greeting(self) -> list[Inbound]:
        """Browsers speak first (their request, then their ``hello``)."""
        return []

    def keepalive(self, token: str) -> bytes | None:
        return None if self._ws is None else self._ws.keepalive(token)

    def rest(self) -> None:
        """Nothing to drop: an idle connection of this protocol holds no tables."""

    def feed(self, data: bytes) -> list[Inbound]:
        if self.hangup is not None or not data:
            return []
        if self._ws is not None:
            out = self._ws.feed(data)
            self.hangup = self._ws.hangup
            return out
        out = []
        self._in_batch = 0
        try:
            self._feed_http(data, out)
        except h11.ProtocolError:
            # Our own state machine refused a step: never the client's problem to see as a
            # traceback, and never the server's. End this connection cleanly.
            self.hangup = m.Bye(code=None, reason="HTTP protocol error")
        return out

    def encode(self, event: m.Event) -> bytes:
        """Events as WebSocket frames; a plain HTTP connection gets no chat events.

        One exception: a connection refused as it opens has sent no request we answered yet,
        so it gets a response that says why: a 503 when the server is full or shutting down (a
        load balancer probing ``/healthz`` then learns the server is going away), a 403 when
        the server takes only TLS (the browser shows that ``https://`` is needed).
        """
        if self._ws is None:
            if type(event) is m.Bye and self._fresh():
                if event.code in _UNAVAILABLE:
                    return self._unavailable(event)
                if event.code is m.ErrorCode.TLS_REQUIRED:
                    return self._plaintext_refused(event)
            return b""
        if type(event) is m.Bye:
            return self._ws.encode_bye(event)
        return encode_event(event)

    def _fresh(self) -> bool:
        http = self._http
        return http.our_state is h11.IDLE and self._request is None and not self._answered

    def _unavailable(self, bye: m.Bye) -> bytes:
        out: list[Inbound] = []
        self._refuse(out, 503, f"{bye.reason}\n", [(b"retry-after", b"5")])
        return replies_data(out)

    def _plaintext_refused(self, bye: m.Bye) -> bytes:
        out: list[Inbound] = []
        self._refuse(out, 403, f"{bye.reason} (https:// in a browser)\n")
        return replies_data(out)

    # ------------------------------------------------------------------ HTTP

    def _feed_http(self, data: bytes, out: list[Inbound]) -> None:
        http = self._http
        http.receive_data(data)
        while self.hangup is None and self._ws is None:
            try:
                event = http.next_event()
            except h11.RemoteProtocolError as exc:
                self._refuse(out, exc.error_status_hint, f"Bad request: {exc}\n")
                return
            if event is h11.NEED_DATA:
                return
            if event is h11.PAUSED:
                if http.our_state is h11.DONE and http.their_state is h11.DONE:
                    self._next_cycle()
                    continue
                return
            if isinstance(event, h11.Request):
                self._start(event, out)
            elif isinstance(event, h11.Data):
                self._body_bytes += len(event.data)
                if self._body_bytes > self._max_message_bytes:
                    self._refuse(out, 413, "Request body too large\n")
            elif isinstance(event, h11.EndOfMessage):
                self._answer(out)
            elif isinstance(event, h11.ConnectionClosed):
                self.hangup = m.Bye(code=None, reason="connection closed")

    def _start(self, request: h11.Request, out: list[Inbound]) -> None:
        """A request head: refuse early what no body could fix, so its body is never read."""
        self._request = request
        self._body_bytes = 0
        if request.http_version not in (b"1.0", b"1.1"):
            self._refuse(out, 505, "This server speaks HTTP/1.1\n")
            return
        if request.method not in (b"GET", b"HEAD"):
            self._refuse(out, 405, "Method not allowed\n", ((b"allow", _ALLOW),))
            return
        length = _header(request.headers, b"content-length")
        if length is not None and length.isdigit() and int(length) > self._max_message_bytes:
            self._refuse(out, 413, "Request body too large\n")

    def _answer(self, out: list[Inbound]) -> None:
        request = self._request
        if request is None or self._http.our_state is not h11.SEND_RESPONSE:
            return  # already answered (refused early)
        path = _path(request.target)
        head = request.method == b"HEAD"
        if path == WS_PATH:
            self._upgrade(request, out)
            if self._ws is not None:
                return  # upgraded: its HTTP state is given back, nothing more to answer
        elif path == "/healthz":
            serving = self._status is None or self._status().serving
            status, body = (200, b"ok\n") if serving else (503, b"shutting down\n")
            self._respond(out, status, [(b"content-type", _TEXT)], body, head=head)
        elif path == "/metrics" and self._status is not None:
            body = render_prometheus(self._status(), version=self._version)
            self._respond(out, 200, [(b"content-type", METRICS_TYPE.encode())], body, head=head)
        else:
            asset = self._assets.get(path)
            if asset is None:
                html = [(b"content-type", b"text/html; charset=utf-8")]
                self._respond(out, 404, html, _NOT_FOUND, head=head)
            else:
                self._send_asset(request, asset, out, head=head)
        state: object = self._http.our_state  # (not narrowed: the calls above changed it)
        if state is h11.MUST_CLOSE:
            self.hangup = m.Bye(code=None, reason="HTTP connection closed")
        elif state is h11.DONE and self._http.their_state is h11.DONE:
            self._next_cycle()

    def _next_cycle(self) -> None:
        """Keep-alive: the response is out, so the next pipelined request may be parsed."""
        self._http.start_next_cycle()
        self._request = None

    def _send_asset(
        self, request: h11.Request, asset: Asset, out: list[Inbound], *, head: bool
    ) -> None:
        body, etag = asset.body, asset.etag
        headers: list[tuple[bytes, bytes]] = [
            (b"content-type", asset.content_type.encode()),
            (b"cache-control", b"no-cache"),
        ]
        if asset.gzip_body is not None:
            headers.append((b"vary", b"Accept-Encoding"))
            if _accepts_gzip(_header(request.headers, b"accept-encoding")):
                body, etag = asset.gzip_body, asset.gzip_etag
                headers.append((b"content-encoding", b"gzip"))
        headers.append((b"etag", etag.encode()))
        if _matches(_header(request.headers, b"if-none-match"), etag):
            self._respond(out, 304, headers, b"", head=True, length=False)
        else:
            self._respond(out, 200, headers, body, head=head)

    def _upgrade(self, request: h11.Request, out: list[Inbound]) -> None:
        """RFC 6455 §4.2: check the handshake and the Origin, then switch to WebSocket."""
        headers = request.headers
        upgrade = b"websocket" in _tokens(_header(headers, b"upgrade"))
        if not upgrade:
            self._refuse(
                out,
                426,
                "This is the WebSocket endpoint: connect with a WebSocket client\n",
                ((b"upgrade", b"websocket"),),
            )
            return
        if _header(headers, b"sec-websocket-version") != b"13":
            self._refuse(
                out,
                426,
                "Unsupported WebSocket version: this server speaks version 13\n",
                ((b"sec-websocket-version", b"13"),),
            )
            return
        key = _header(headers, b"sec-websocket-key") or b""
        try:
            valid_key = len(base64.b64decode(key, validate=True)) == 16
        except (binascii.Error, ValueError):
            valid_key = False
        if (
            not valid_key
            or request.method != b"GET"
            or request.http_version != b"1.1"
            or b"upgrade" not in _tokens(_header(headers, b"connection"))
            or self._http.their_state is not MIGHT_SWITCH_PROTOCOL
        ):
            self._refuse(out, 400, "Bad WebSocket handshake\n")
            return
        origin = _header(headers, b"origin")
        if not self._origins.allows(origin, _header(headers, b"host")):
            self._refuse(out, 403, "This origin may not open a WebSocket here\n")
            return
        reply = h11.InformationalResponse(
            status_code=101,
            reason=b"Switching Protocols",
            headers=[
                (b"upgrade", b"websocket"),
                (b"connection", b"Upgrade"),
                (b"sec-websocket-accept", accept_key(key)),
            ],
        )
        out.append(LocalReply(self._http.send(reply) or b""))
        trailing, _ = self._http.trailing_data
        self._ws = WebSocketSession(max_message_bytes=self._max_message_bytes)
        # The HTTP side is over for good (everything from here goes to the WebSocket): its
        # state machine, buffers and request, about 2.5 KB, would otherwise stay for as long as
        # the WebSocket lives, idle or not.
        self._http = _UPGRADED
        self._request = None
        self._origins = _UPGRADED_ORIGINS
        if trailing:
            out.extend(self._ws.feed(trailing))
            self.hangup = self._ws.hangup

    # ------------------------------------------------------------------ responses

    def _security_headers(self) -> list[tuple[bytes, bytes]]:
        host = None
        if self._request is not None:
            host = _header(self._request.headers, b"host")
        extra = b""
        if host is not None and _SAFE_HOST.fullmatch(host):
            extra = b" ws://%s wss://%s" % (host, host)
        return [(b"content-security-policy", _CSP % extra), *_SECURITY]

    def _respond(
        self,
        out: list[Inbound],
        status: int,
        headers: Iterable[tuple[bytes, bytes]],
        body: bytes,
        *,
        head: bool = False,
        close: bool = False,
        length: bool = True,
    ) -> None:
        http = self._http
        all_headers = [*self._security_headers(), *headers]
        if length:
            all_headers.append((b"content-length", str(len(body)).encode()))
        self._in_batch += 1
        if close or self._in_batch >= MAX_PIPELINED:
            all_headers.append((b"connection", b"close"))
        reason = HTTPStatus(status).phrase.encode()
        response = h11.Response(status_code=status, headers=all_headers, reason=reason)
        data = http.send(response) or b""
        if body and not head:
            data += http.send(h11.Data(data=body)) or b""
        data += http.send(h11.EndOfMessage()) or b""
        self._answered = True
        out.append(LocalReply(data))

    def _refuse(
        self,
        out: list[Inbound],
        status: int,
        text: str,
        headers: Iterable[tuple[bytes, bytes]] = (),
    ) -> None:
        """An error response, then close: after a bad request the stream cannot be trusted."""
        if self._http.our_state in (h11.IDLE, h11.SEND_RESPONSE):
            head = self._request is not None and self._request.method == b"HEAD"
            all_headers = [(b"content-type", _TEXT), (b"cache-control", b"no-store"), *headers]
            self._respond(out, status, all_headers, text.encode(), head=head, close=True)
        self.hangup = m.Bye(code=None, reason=f"HTTP {status}")
