"""Does a new connection open with a TLS ClientHello? (pure, no I/O, no ``ssl`` import).

The main port serves plaintext and TLS side by side, so the server looks at the first bytes
before the protocol sniffer does (:func:`anychat.codecs.sniff.sniff`). A TLS connection opens
with a record header: content type 22 (handshake), then the record-layer version, whose major
byte is 3 and whose minor byte is 0 (SSL 3.0) to 4 (TLS 1.3 would be 4; in practice clients
send 1 for compatibility, RFC 8446 §5.1). None of the plaintext protocols can start that way:
byte 0x16 is a control character (Ctrl-V) that no text, JSON or IRC client sends first.
"""

from __future__ import annotations

from typing import Final

__all__ = ["looks_like_tls"]

#: TLS record content type "handshake" (RFC 8446 §5.1).
_HANDSHAKE: Final = 0x16
#: Record-layer protocol version: major 3, minor 0 (SSL 3.0) through 4.
_MAJOR: Final = 0x03
_MAX_MINOR: Final = 0x04


def looks_like_tls(first: bytes) -> bool | None:
    """Whether ``first`` starts a TLS handshake record; ``None``: too few bytes to tell.

    Three bytes decide. A prefix of a record header (``16``, ``16 03``) needs more bytes; any
    other start is plaintext at once, so the protocol sniffer loses no time on ordinary clients.
    """
    if not first:
        return None
    if first[0] != _HANDSHAKE:
        return False
    if len(first) < 2:
        return None
    if first[1] != _MAJOR:
        return False
    if len(first) < 3:
        return None
    return first[2] <= _MAX_MINOR
