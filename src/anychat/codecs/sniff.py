"""Which protocol a new connection speaks, judged from its first bytes (pure, no I/O).

The server calls :func:`sniff` with everything received so far. ``None`` means "cannot tell yet":
the server reads more, and a connection that stays silent for a short moment is a person on
nc/telnet waiting for a greeting (:attr:`Protocol.TEXT`).
"""

from __future__ import annotations

import re
from enum import Enum
from typing import Final

__all__ = ["Protocol", "late_undecided", "sniff", "sniff_late"]


class Protocol(Enum):
    #: A person on nc/telnet, or anything we do not recognise.
    TEXT = "text"
    #: JSON lines (the Python client, the CLI): the first byte is ``{``.
    JSONL = "jsonl"
    #: An IRC client: its first line is a registration verb (compared case-insensitively).
    IRC = "irc"
    #: A browser (the page, or a WebSocket upgrade): an HTTP/1.1 request line.
    HTTP = "http"


#: Leading bytes that identify a protocol; later codecs (IRC, HTTP, TLS) add theirs here.
_PREFIXES: Final[tuple[tuple[bytes, Protocol], ...]] = (
    (b"{", Protocol.JSONL),
    (b"CAP ", Protocol.IRC),
    (b"NICK ", Protocol.IRC),
    (b"USER ", Protocol.IRC),
    (b"PASS ", Protocol.IRC),
)
#: RFC 9110 §9 methods followed by the space of a request line. Methods are case-sensitive, so
#: a person on nc who types "get lost" quickly is still a person.
_HTTP_METHODS: Final = (
    b"GET ",
    b"HEAD ",
    b"POST ",
    b"PUT ",
    b"DELETE ",
    b"OPTIONS ",
    b"PATCH ",
    b"CONNECT ",
    b"TRACE ",
)
_LONGEST: Final = max(len(prefix) for prefix in (*_HTTP_METHODS, *(p for p, _ in _PREFIXES)))


def sniff(first: bytes) -> Protocol | None:
    """The protocol ``first`` starts, or ``None`` if more bytes are needed to tell."""
    raw = first.lstrip(b"\r\n\t ")[:_LONGEST]
    data = raw.upper()
    if not data:
        return None
    if raw.startswith(_HTTP_METHODS):
        return Protocol.HTTP
    for prefix, protocol in _PREFIXES:
        if data.startswith(prefix):
            return protocol
    complete = b"\n" in data or len(data) >= _LONGEST
    if not complete and (
        any(prefix.startswith(data) for prefix, _ in _PREFIXES)
        or any(method.startswith(raw) for method in _HTTP_METHODS)
    ):
        return None
    return Protocol.TEXT


#: What a program's first line starts with, and nothing a person on nc types first by chance:
#: a JSON object's first key, or an IRC registration verb in capitals (as IRC clients send
#: them; a person who types "nick bob" is still a person).
_UNMISTAKABLE: Final[tuple[tuple[bytes, Protocol], ...]] = (
    (b'{"', Protocol.JSONL),
    *((prefix, protocol) for prefix, protocol in _PREFIXES if protocol is Protocol.IRC),
)
#: A whole HTTP/1.x request line: what a browser or a WebSocket client sends first, and no
#: person's first chat line.
_REQUEST_LINE: Final = re.compile(
    rb"(?:" + rb"|".join(method.rstrip() for method in _HTTP_METHODS) + rb") [!-~]+ HTTP/1\.\d\r?\n"
)
#: Past this many bytes without a line end, first words are a person's (a request line is
#: far shorter; the text codec then deals with the long line as it always does).
_LATE_LINE_MAX: Final = 8192
_BLANKS: Final = b"\r\n\t "


def sniff_late(first: bytes) -> Protocol | None:
    """The protocol of a program that spoke after the server took its silence for a person on
    nc (its hello came later than the sniffing moment: a slow link, a busy server), or ``None``
    when ``first`` is a person's words after all.

    Stricter than :func:`sniff`, since a wrong guess here ends a greeted person's session: only
    unmistakable first words count, and HTTP only as a whole request line. Caught here, a JSON
    client's hello (a password in it) or a browser's request (its cookies in it) is never said
    to a room as a line of text.
    """
    data = first.lstrip(_BLANKS)
    for prefix, protocol in _UNMISTAKABLE:
        if data.startswith(prefix):
            return protocol
    if _REQUEST_LINE.match(data):
        return Protocol.HTTP
    return None


def late_undecided(first: bytes) -> bool:
    """Whether :func:`sniff_late` needs more bytes to judge ``first``: it could still become a
    program's first words (a prefix of them, or a request line not yet ended).

    Waiting costs a person nothing: the text codec says nothing before a line ends either.
    """
    data = first.lstrip(_BLANKS)
    if b"\n" in data or len(data) >= _LATE_LINE_MAX:
        return False
    return (
        any(prefix.startswith(data) for prefix, _ in _UNMISTAKABLE)
        or any(method.startswith(data) for method in _HTTP_METHODS)
        or data.startswith(_HTTP_METHODS)
    )
