"""Client-to-server text frames read directly, for the one shape browsers nearly always send.

A browser sends each chat command as one final, masked text frame with no extension bits.
Parsing those through wsproto costs a generator step, a buffer copy, a byte-wise unmasking
(``bytes.translate`` four times), an incremental UTF-8 decoder and an event object per frame:
about a quarter of the server's time in the WebSocket fan-out benchmark, paid once per message
a sender sends. :func:`read_text_frames` reads a run of such frames at the start of a buffer
with one integer XOR and one strict UTF-8 check each, and stops at the first frame of any
other kind, at a partial frame, at one longer than the limit and at one whose payload is not
UTF-8. Everything from there on is wsproto's to parse (:mod:`.websocket`), so every error, its
close code and its reason stay wsproto's, whatever shape the bytes take.

RFC 6455 §5.2 is the reference for the header: FIN and opcode in the first byte, the mask bit
and a 7-bit length (126: a 16-bit length follows, 127: a 64-bit one) in the second, then the
4-byte masking key. A length not in its shortest form is left to wsproto, which refuses it
(1002); so is one with the reserved top bit set, being past any limit.
"""

from __future__ import annotations

from typing import Final

__all__ = ["read_text_frames", "unmask"]

#: FIN set, no RSV bits, opcode 1 (text): the first byte of every frame read here.
_FIN_TEXT: Final = 0x81
_MASKED: Final = 0x80
#: A header and its masking key: the smallest frame (an empty payload) is this long.
_MIN_FRAME: Final = 6


def unmask(payload: bytes, key: bytes) -> bytes:
    """``payload`` XORed with the repeating 4-byte ``key``: one big-integer XOR, which CPython
    does a machine word at a time (RFC 6455 §5.3; masking and unmasking are the same)."""
    size = len(payload)
    if not size:
        return b""
    mask = (key * ((size >> 2) + 1))[:size]
    return (int.from_bytes(payload, "little") ^ int.from_bytes(mask, "little")).to_bytes(
        size, "little"
    )


def read_text_frames(data: bytes, limit: int) -> tuple[list[bytes], int]:
    """The payloads of the complete, final, masked text frames at the start of ``data``, each
    at most ``limit`` bytes and valid UTF-8, and the offset of the first byte not read.

    The caller hands ``data[offset:]`` to the general parser, and may only call this while that
    parser holds no part of a frame or message: a frame read here must start a message.
    """
    payloads: list[bytes] = []
    pos = 0
    end = len(data)
    while end - pos >= _MIN_FRAME and data[pos] == _FIN_TEXT:
        second = data[pos + 1]
        if not second & _MASKED:
            break  # an unmasked client frame: wsproto's protocol error
        size = second & 0x7F
        if size < 126:
            key_at = pos + 2
        elif size == 126:
            key_at = pos + 4
            size = int.from_bytes(data[pos + 2 : key_at], "big")
            if size < 126:
                break  # not the shortest length form
        else:
            key_at = pos + 10
            size = int.from_bytes(data[pos + 2 : key_at], "big")
            if size < 1 << 16:
                break  # not the shortest length form
        start = key_at + 4
        stop = start + size
        if size > limit or stop > end:
            break  # too long (the general path says so, 1009) or not all here yet
        payload = unmask(data[start:stop], data[key_at:start])
        try:
            payload.decode()
        except UnicodeDecodeError:
            break  # the general path closes with 1007 and says where
        payloads.append(payload)
        pos = stop
    return payloads, pos
