"""WebSocket for the load generator: the handshake, masked client frames, and server frames
turned back into lines in bulk.

The generator must stay cheaper than the server it measures, so nothing here walks frames one
by one in Python:

- server frames (RFC 6455 §5.2, never masked) carry one JSON event each, ASCII only, so the
  byte 0x81 (FIN + text) appears in a stream of them only in headers. One ``re.sub`` replaces
  every complete header by a newline, which gives the JSON lines the verifier already reads;
  only the last frame of a receive is looked at on its own, to see whether it is complete;
- client frames must be masked (§5.3): a batch of equal-length messages is one numpy array,
  XORed with a fresh random key per frame in one operation.

The handshake runs once per client, blocking, before the load starts.
"""

from __future__ import annotations

import base64
import hashlib
import os
import re
import socket

import numpy as np

GUID = b"258EAFA5-E914-47DA-95CA-C5AB0DC85B11"
#: A complete text-frame header: 0x81, then a 7-bit length, or 126 and a 16-bit length.
_HEADER = re.compile(rb"\x81(?:\x7e..|[\x00-\x7d])", re.DOTALL)


class FrameError(ValueError):
    pass


def handshake(sock: socket.socket, host: str, path: str = "/ws") -> bytes:
    """The client's opening handshake on a blocking socket; returns what followed the 101."""
    key = base64.b64encode(os.urandom(16))
    sock.sendall(
        b"GET %s HTTP/1.1\r\nHost: %s\r\nUpgrade: websocket\r\nConnection: Upgrade\r\n"
        b"Sec-WebSocket-Key: %s\r\nSec-WebSocket-Version: 13\r\n\r\n"
        % (path.encode(), host.encode(), key)
    )
    data = b""
    while b"\r\n\r\n" not in data:
        chunk = sock.recv(4096)
        if not chunk:
            raise FrameError(f"closed during the WebSocket handshake: {data[:200]!r}")
        data += chunk
    head, rest = data.split(b"\r\n\r\n", 1)
    accept = base64.b64encode(hashlib.sha1(key + GUID).digest())
    if not head.startswith(b"HTTP/1.1 101") or accept not in head:
        raise FrameError(f"WebSocket handshake refused: {head[:200]!r}")
    return rest


def _header(length: int, masked: bool) -> bytes:
    bit = 0x80 if masked else 0
    if length < 126:
        return bytes((0x81, bit | length))
    if length < 1 << 16:
        return bytes((0x81, bit | 126, length >> 8, length & 0xFF))
    raise FrameError("frames over 64 KiB are not needed here")


def client_frame(payload: bytes) -> bytes:
    """One masked text frame (setup-time messages)."""
    key = os.urandom(4)
    masked = (
        np.frombuffer(payload, np.uint8) ^ np.resize(np.frombuffer(key, np.uint8), len(payload))
    ).tobytes()
    return _header(len(payload), True) + key + masked


def client_frames_of_lines(data: bytes) -> bytes:
    """Each newline-terminated line of ``data`` as one masked frame, without its newline."""
    return b"".join(client_frame(line) for line in data.split(b"\n") if line.strip())


def client_frames(payloads: list[bytes]) -> bytes:
    """Equal-length payloads as masked frames, in one numpy pass (the hot path)."""
    count, size = len(payloads), len(payloads[0])
    header = np.frombuffer(_header(size, True), np.uint8)
    h = header.size
    out = np.empty((count, h + 4 + size), np.uint8)
    out[:, :h] = header
    keys = np.frombuffer(os.urandom(4 * count), np.uint8).reshape(count, 4)
    out[:, h : h + 4] = keys
    body = np.frombuffer(b"".join(payloads), np.uint8).reshape(count, size)
    out[:, h + 4 :] = body ^ np.tile(keys, (1, size // 4 + 1))[:, :size]
    return out.tobytes()


def split(raw: bytes | bytearray | memoryview) -> tuple[bytes, bytes]:
    """Server frames -> (their payloads as newline-terminated lines, an incomplete last frame).

    ``raw`` must start at a frame boundary (the previous call's second result, then what
    arrived since). Only text frames are expected; anything else surfaces as corrupt lines in
    the verifier, or as :class:`FrameError` here when the stream stops making sense."""
    raw = bytes(raw)
    if not raw:
        return b"", b""
    if raw[0] != 0x81:
        raise FrameError(f"not at a text frame: {raw[:40]!r}")
    lines = _HEADER.sub(b"\n", raw)
    last = lines.rfind(b"\n")
    if last < 0:  # only part of the first header so far
        return b"", raw
    # Every header before the last one shrank to one byte: where the last one ends in ``raw``.
    end = last + 1 + len(raw) - len(lines)
    if raw[end - 2] == 0x81:
        size, start = raw[end - 1], end - 2
    else:
        size, start = (raw[end - 2] << 8) | raw[end - 1], end - 4
    got = len(raw) - end
    if got == size:
        return lines[1:] + b"\n", b""
    if got < size:
        return lines[1 : last + 1], raw[start:]
    # The last complete frame is followed by the first bytes of a header.
    if got - size > 3:
        raise FrameError(f"bad frame after {raw[start : start + 40]!r}")
    return lines[1 : last + 1] + raw[end : end + size] + b"\n", raw[end + size :]
