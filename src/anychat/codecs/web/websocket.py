"""The WebSocket half of the web codec: JSON lines carried one object per text frame.

After the HTTP upgrade (:mod:`.http`), every text message a browser sends is one JSON command,
parsed by :func:`~anychat.codecs.jsonl.command_from_line`, so a command means the same and a bad
one earns the same error code as on a JSON-lines socket. Every event goes back as one text
frame holding the same JSON (without the newline). wsproto parses the client's frames (masking,
fragmentation, control frames, incremental UTF-8 checking); the server's frames come from
:mod:`.frames`, so an event fanned out to many browsers is framed once.

What ends a WebSocket, with its close code (RFC 6455 §7.4.1):

- a message longer than ``max_message_bytes`` (the JSON line limit): 1009, message too big;
- text that is not UTF-8: 1007; a binary frame: 1003 (the protocol is text);
- broken framing (unmasked frames, bad opcodes, oversized control frames): 1002;
- the client's own close: its code echoed back (the close handshake);
- the server's goodbye (``Bye``): a ``bye`` JSON frame, then 1000, 1001 while shutting down,
  1013 when the server is full, 1008 for other policy reasons (a slow consumer, a ghost).

permessage-deflate is not offered: chat lines are short, so compressing each costs CPU per
recipient (deflate state is per connection, which would also end encode-once fan-out).
"""

from __future__ import annotations

from typing import Final

from wsproto.connection import Connection, ConnectionState, ConnectionType
from wsproto.events import BytesMessage, CloseConnection, Ping, TextMessage
from wsproto.frame_protocol import CloseReason

from ... import model as m
from .. import Inbound, LocalReply
from ..jsonl import JsonServerCodec, command_from_line
from .frames import CloseCode, close_frame, ping_frame, pong_frame, text_frame

__all__ = ["WS_ENCODING_KEY", "WebSocketSession", "close_code_for", "encode_event"]

#: Shared by every WebSocket connection: :func:`encode_event` depends on the event alone.
WS_ENCODING_KEY: Final = "websocket"

_json: Final = JsonServerCodec()  # stateless for encoding: one instance serves every frame

_BYE_CODES: Final[dict[m.ErrorCode | None, CloseCode]] = {
    None: CloseCode.NORMAL,
    m.ErrorCode.SHUTDOWN: CloseCode.GOING_AWAY,
    m.ErrorCode.TOO_MANY_CONNECTIONS: CloseCode.TRY_AGAIN_LATER,
    m.ErrorCode.LINE_TOO_LONG: CloseCode.MESSAGE_TOO_BIG,
    m.ErrorCode.INVALID_UTF8: CloseCode.INVALID_PAYLOAD,
}


def close_code_for(bye: m.Bye) -> CloseCode:
    """The close code that says what a goodbye means, for a browser's ``CloseEvent.code``."""
    return _BYE_CODES.get(bye.code, CloseCode.POLICY_VIOLATION)


def encode_event(event: m.Event) -> bytes:
    """One event as one text frame: the JSON-lines encoding without its newline."""
    line = _json.encode(event)
    if not line:
        return b""  # an event this protocol does not show (codecs/presence.py)
    return text_frame(line[:-1] if line.endswith(b"\n") else line)


class WebSocketSession:
    """One upgraded connection: parses client frames, answers control frames, frames events."""

    __slots__ = ("_close_sent", "_parts", "_size", "_ws", "hangup", "max_message_bytes")

    def __init__(self, *, max_message_bytes: int) -> None:
        self.max_message_bytes = max_message_bytes
        self._ws = Connection(ConnectionType.SERVER)
        self._parts: list[bytes] = []
        self._size = 0
        self._close_sent = False
        #: Set once the WebSocket is over: the glue closes the connection after our output.
        self.hangup: m.Bye | None = None

    def feed(self, data: bytes) -> list[Inbound]:
        out: list[Inbound] = []
        if self.hangup is not None or not data:
            return out
        ws = self._ws
        ws.receive_data(data)
        for event in ws.events():
            if isinstance(event, TextMessage):
                if not self._text(event, out):
                    break
            elif isinstance(event, Ping):
                out.append(LocalReply(pong_frame(bytes(event.payload))))
            elif isinstance(event, CloseConnection):
                self._closed_by_peer(event, out)
                break
            elif isinstance(event, BytesMessage):
                self._fail(
                    out,
                    CloseCode.UNSUPPORTED_DATA,
                    "binary frames are not part of this protocol: send JSON as text",
                )
                break
            # A Pong needs no answer: receiving it already proved the peer alive.
        return out

    def _text(self, event: TextMessage, out: list[Inbound]) -> bool:
        chunk = event.data.encode()
        self._size += len(chunk)
        if self._size > self.max_message_bytes:
            self._parts.clear()
            self._fail(
                out,
                CloseCode.MESSAGE_TOO_BIG,
                f"message longer than {self.max_message_bytes} bytes",
                m.ErrorCode.LINE_TOO_LONG,
            )
            return False
        self._parts.append(chunk)
        if event.message_finished:
            raw = self._parts[0] if len(self._parts) == 1 else b"".join(self._parts)
            self._parts.clear()
            self._size = 0
            if raw.strip():
                out.append(command_from_line(raw))
        return True

    def _closed_by_peer(self, event: CloseConnection, out: list[Inbound]) -> None:
        if self._ws.state is ConnectionState.OPEN:
            # wsproto reports broken framing as a CloseConnection it did not receive: the state
            # is still OPEN, and the code says what was wrong (1002, or 1007 for bad UTF-8).
            code = event.code if event.code in _PEER_FAULTS else CloseCode.PROTOCOL_ERROR
            self._fail(out, code, event.reason or "protocol error")
            return
        if not self._close_sent:
            # The close handshake (RFC 6455 §5.5.1): echo the peer's code, then hang up.
            code = event.code
            echo = int(code) if code not in _NO_ECHO else CloseCode.NORMAL
            out.append(LocalReply(close_frame(echo)))
            self._close_sent = True
        self.hangup = m.Bye(code=None, reason=f"WebSocket closed by the client ({int(event.code)})")

    def _fail(
        self,
        out: list[Inbound],
        code: int,
        reason: str,
        error: m.ErrorCode | None = m.ErrorCode.BAD_COMMAND,
    ) -> None:
        """Close from our side with ``code``: the client learns why from the close reason."""
        if not self._close_sent:
            out.append(LocalReply(close_frame(code, reason)))
            self._close_sent = True
        self.hangup = m.Bye(code=error, reason=f"WebSocket closed ({int(code)}): {reason}")

    # ------------------------------------------------------------------ sending

    def encode_bye(self, bye: m.Bye) -> bytes:
        """The goodbye as the client's last ``bye`` event, then a close frame that says the same
        (nothing at all if the WebSocket already closed: no frame may follow a close)."""
        if self._close_sent:
            return b""
        self._close_sent = True
        return encode_event(bye) + close_frame(close_code_for(bye), bye.reason)

    def keepalive(self, token: str) -> bytes | None:
        """A ping: browsers answer it themselves, so a tab left open stays connected and a dead
        one is found."""
        return None if self._close_sent else ping_frame(token)


#: Codes wsproto uses for broken input that we pass on to the peer as they are.
_PEER_FAULTS: Final = frozenset(
    {CloseReason.PROTOCOL_ERROR, CloseReason.INVALID_FRAME_PAYLOAD_DATA}
)
#: Codes that must not appear in a close frame (RFC 6455 §7.4.1): we answer 1000 instead.
_NO_ECHO: Final = frozenset(
    {CloseReason.NO_STATUS_RCVD, CloseReason.ABNORMAL_CLOSURE, CloseReason.TLS_HANDSHAKE_FAILED}
)
