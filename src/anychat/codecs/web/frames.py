"""Server-to-client WebSocket frames, built by hand so one frame can serve every recipient.

RFC 6455 §5.1: a server never masks its frames, so a frame's bytes depend on its payload alone.
Fan-out encodes an event once per codec (DESIGN.md); building the frame here, from a payload
that is already bytes, keeps that true for WebSocket recipients: one header, one join, and the
same ``bytes`` object appended to every recipient's buffer. (wsproto's ``send`` would copy the
payload through a ``bytearray`` per call and needs a connection object in the OPEN state.)
Tests check these frames against wsproto's client-side parser.
"""

from __future__ import annotations

import struct
from enum import IntEnum
from typing import Final

__all__ = [
    "MAX_CONTROL_PAYLOAD",
    "CloseCode",
    "close_frame",
    "ping_frame",
    "pong_frame",
    "text_frame",
]

#: RFC 6455 §5.5: control frames carry at most 125 bytes of payload.
MAX_CONTROL_PAYLOAD: Final = 125

_FIN_TEXT: Final = 0x81
_FIN_CLOSE: Final = 0x88
_FIN_PING: Final = 0x89
_FIN_PONG: Final = 0x8A
_SHORT: Final = struct.Struct("!BB")
_MEDIUM: Final = struct.Struct("!BBH")
_LONG: Final = struct.Struct("!BBQ")


class CloseCode(IntEnum):
    """The close codes this server sends (RFC 6455 §7.4.1; 1013 from the IANA registry)."""

    NORMAL = 1000
    GOING_AWAY = 1001
    PROTOCOL_ERROR = 1002
    UNSUPPORTED_DATA = 1003
    INVALID_PAYLOAD = 1007
    POLICY_VIOLATION = 1008
    MESSAGE_TOO_BIG = 1009
    INTERNAL_ERROR = 1011
    TRY_AGAIN_LATER = 1013


def _header(opcode_byte: int, length: int) -> bytes:
    if length < 126:
        return _SHORT.pack(opcode_byte, length)
    if length < 1 << 16:
        return _MEDIUM.pack(opcode_byte, 126, length)
    return _LONG.pack(opcode_byte, 127, length)


def text_frame(payload: bytes) -> bytes:
    """One final, unmasked text frame carrying ``payload`` (which must be UTF-8)."""
    return _header(_FIN_TEXT, len(payload)) + payload


def _truncated(text: str, limit: int) -> bytes:
    """``text`` as UTF-8 in at most ``limit`` bytes, never cutting a character in half."""
    data = text.encode()
    if len(data) <= limit:
        return data
    return data[:limit].decode(errors="ignore").encode()


def close_frame(code: int, reason: str = "") -> bytes:
    """A close frame; the reason is shortened to fit a control frame (123 bytes after the
    code), at a character boundary, since a close reason must be valid UTF-8."""
    payload = struct.pack("!H", code) + _truncated(reason, MAX_CONTROL_PAYLOAD - 2)
    return _header(_FIN_CLOSE, len(payload)) + payload


def ping_frame(payload: str) -> bytes:
    """A ping; browsers answer with a pong carrying the same payload."""
    data = _truncated(payload, MAX_CONTROL_PAYLOAD)
    return _header(_FIN_PING, len(data)) + data


def pong_frame(payload: bytes) -> bytes:
    """The answer to a ping: RFC 6455 §5.5.3 wants the ping's payload echoed unchanged (a ping
    can carry no more than a control frame holds, so it always fits)."""
    return _header(_FIN_PONG, len(payload)) + payload
