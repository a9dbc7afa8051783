"""What a nick and a room name may be, and when two are the same.

Re-exported by :mod:`anychat.model` (use it from there); kept in its own module so each stays
small. Every codec relies on these rules: a nick valid here is a valid IRC nick, and a room
name is always one IRC parameter that any client can show as it is.
"""

from __future__ import annotations

import re
import unicodedata
from typing import Final

__all__ = ["MAX_NICK_LENGTH", "MAX_ROOM_LENGTH", "casefold", "is_room", "valid_nick", "valid_room"]

#: Fits the IRC NICKLEN most servers advertise, so nicks travel to every codec unchanged.
MAX_NICK_LENGTH: Final = 30
MAX_ROOM_LENGTH: Final = 50
# Letters, digits and the IRC "special" characters (RFC 2812 §2.3.1), never a digit or '-' first,
# so every nick is also a valid IRC nick.
_NICK_RE: Final = re.compile(r"[A-Za-z\[\]\\`_^{|}][A-Za-z0-9\[\]\\`_^{|}\-]*")
# RFC 2812 §1.3: channel names exclude space, comma, BELL and NUL; we also exclude the other
# control characters and ':' so a room name is always a single IRC middle parameter.
_ROOM_RE: Final = re.compile(r"#[^\x00-\x20,:\x7f]+")


def casefold(name: str) -> str:
    """The identity of a nick or room: ASCII case-insensitive (IRC ``CASEMAPPING=ascii``).

    A name already in lower case is its own identity, the same object: a session's nick, its
    index entry and its rooms' member keys then share one string instead of a copy each
    (about 160 bytes per idle connection).
    """
    folded = name.lower()
    return name if folded == name else folded


def valid_nick(nick: str) -> bool:
    """IRC's nick characters only (ASCII), so no control, format or look-alike character can be
    part of one."""
    return 0 < len(nick) <= MAX_NICK_LENGTH and _NICK_RE.fullmatch(nick) is not None


def valid_room(room: str) -> bool:
    """``#`` and a name any client can show as it is: beyond ASCII, no character of the Unicode
    categories C (controls, including C1 with the one-byte CSI; format characters such as bidi
    overrides, isolates and zero-width joiners; surrogates, private use, unassigned) or Z (spaces
    other than the ASCII one, excluded anyway, and the line and paragraph separators), which
    could drive a terminal or make one room look like another."""
    if not (1 < len(room) <= MAX_ROOM_LENGTH and _ROOM_RE.fullmatch(room) is not None):
        return False
    return room.isascii() or not any(
        unicodedata.category(char)[0] in "CZ" for char in room if not char.isascii()
    )


def is_room(target: str) -> bool:
    return target.startswith("#")
