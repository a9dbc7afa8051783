"""IRC message syntax: one line to (tags, source, command, params) and back (pure).

Follows RFC 1459 §2.3.1 / RFC 2812 §2.3.1 as real servers apply it, plus the IRCv3
``message-tags`` prefix: ``[@tags SPACE] [:source SPACE] command *(SPACE middle) [SPACE :trailing]``.
Servers are liberal in what they accept (several spaces between parameters, a bare LF instead of
CRLF, more than 15 parameters), so this parser is too; it never raises on any input.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Final

__all__ = [
    "MAX_LINE_BYTES",
    "MAX_TARGETS",
    "IrcLine",
    "escape_tag",
    "format_line",
    "parse_line",
    "unescape_tag",
]

#: RFC 2812 §2.3: 512 bytes including the CRLF, not counting IRCv3 tags.
MAX_LINE_BYTES: Final = 512
#: Recipients one PRIVMSG/NOTICE may name (ISUPPORT ``MAXTARGETS``).
MAX_TARGETS: Final = 4

_UNESCAPES: Final = {":": ";", "s": " ", "\\": "\\", "r": "\r", "n": "\n"}
_ESCAPES: Final = str.maketrans({";": "\\:", " ": "\\s", "\\": "\\\\", "\r": "\\r", "\n": "\\n"})


@dataclass(frozen=True, slots=True)
class IrcLine:
    """One parsed line. ``command`` is upper-cased; numerics stay three digits."""

    command: str
    params: tuple[str, ...] = ()
    source: str | None = None
    tags: dict[str, str] = field(default_factory=dict)


def unescape_tag(value: str) -> str:
    """IRCv3 message-tags escaping: ``\\:`` is ``;``, ``\\s`` a space; unknown escapes drop the
    backslash and a trailing lone backslash is dropped."""
    if "\\" not in value:
        return value
    out: list[str] = []
    chars = iter(value)
    for char in chars:
        if char == "\\":
            nxt = next(chars, "")
            out.append(_UNESCAPES.get(nxt, nxt))
        else:
            out.append(char)
    return "".join(out)


def escape_tag(value: str) -> str:
    return value.translate(_ESCAPES)


def _parse_tags(text: str) -> dict[str, str]:
    tags: dict[str, str] = {}
    for item in text.split(";"):
        if not item:
            continue
        key, _, value = item.partition("=")
        if key:
            tags[key] = unescape_tag(value)
    return tags


def parse_line(line: str) -> IrcLine | None:
    """Parse one line without its line ending; ``None`` for a line with no command."""
    rest = line.lstrip(" ")
    tags: dict[str, str] = {}
    if rest.startswith("@"):
        raw, _, rest = rest[1:].partition(" ")
        tags = _parse_tags(raw)
        rest = rest.lstrip(" ")
    source = None
    if rest.startswith(":"):
        source, _, rest = rest[1:].partition(" ")
        rest = rest.lstrip(" ")
    command, _, rest = rest.partition(" ")
    if not command:
        return None
    params: list[str] = []
    while rest:
        rest = rest.lstrip(" ")
        if not rest:
            break
        if rest.startswith(":"):
            params.append(rest[1:])
            break
        middle, _, rest = rest.partition(" ")
        params.append(middle)
    return IrcLine(command=command.upper(), params=tuple(params), source=source, tags=tags)


def format_line(
    source: str | None,
    command: str,
    *params: str,
    tags: str = "",
) -> str:
    """Render one line, without CRLF. The last parameter is sent as a trailing one when it must
    be (empty, has a space or starts with ``:``); the others must be non-empty single words.

    ``tags`` is the already-escaped tag string (``time=...;msgid=1``), shared by fan-out.
    """
    parts: list[str] = []
    if tags:
        parts.append("@" + tags)
    if source:
        parts.append(":" + source)
    parts.append(command)
    if params:
        parts.extend(params[:-1])
        last = params[-1]
        if not last or " " in last or last.startswith(":"):
            last = ":" + last
        parts.append(last)
    return " ".join(parts)
