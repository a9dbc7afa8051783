"""How the terminal client draws what the server says: formatted text, made safe first.

Everything that came from the server goes through :func:`safe`: other people choose their
messages (and, within the server's rules, their nicks and room names), and none of it may reach
the terminal as control characters. Lines are prompt_toolkit formatted text with style classes
(``class:time``, ``class:history``...); the terminal module maps them to colours.
"""

from __future__ import annotations

import time
import zlib
from typing import Final

from prompt_toolkit.formatted_text import StyleAndTextTuples

from .. import model as m
from ..commands import with_hint
from ..safetext import safe_text

#: The colours of the line classes this module draws, for both the line and full-screen modes.
LINE_STYLES: Final = {
    "time": "ansibrightblack",
    "room": "ansibrightblack",
    "notice": "ansibrightblack",
    "error": "ansired bold",
    "private": "ansimagenta bold",
    "action": "italic",
    "offline": "ansired",
    "history": "ansibrightblack",
}

__all__ = [
    "LINE_STYLES",
    "clock",
    "error_line",
    "message_line",
    "nick_style",
    "notice",
    "render",
    "safe",
    "topic_line",
    "whois_text",
]

# Nick colours: no red (errors), magenta (private messages) or grey (presence notices).
_PALETTE: Final = (
    "ansigreen",
    "ansiyellow",
    "ansiblue",
    "ansicyan",
    "ansibrightgreen",
    "ansibrightyellow",
    "ansibrightblue",
    "ansibrightcyan",
    "ansibrightmagenta",
)


def safe(text: str) -> str:
    """``text`` from another user, made harmless for a terminal (:func:`anychat.safetext.safe_text`:
    controls, bidirectional overrides and line separators become U+FFFD)."""
    return safe_text(text)


def nick_style(nick: str) -> str:
    """A colour for ``nick`` that is the same in every session (CRC-32, not the salted ``hash``)."""
    return _PALETTE[zlib.crc32(m.casefold(nick).encode()) % len(_PALETTE)]


def clock(timestamp: float | None = None) -> str:
    return time.strftime("%H:%M", time.localtime(timestamp))


def _stamp(timestamp: float | None = None, *, dated: bool = False) -> StyleAndTextTuples:
    """``12:01 ``; ``dated``: ``2026-11-27 12:01 `` for a time that was not today."""
    if dated and timestamp is not None:
        if time.localtime(timestamp)[:3] != time.localtime()[:3]:
            return [("class:time", time.strftime("%Y-%m-%d %H:%M ", time.localtime(timestamp)))]
    return [("class:time", clock(timestamp) + " ")]


def notice(text: str) -> StyleAndTextTuples:
    """A dimmed line about presence or the connection (already made safe by the caller)."""
    return [*_stamp(), ("class:notice", "-- " + text)]


def error_line(text: str) -> StyleAndTextTuples:
    return [*_stamp(), ("class:error", "!! " + text)]


def _nick(nick: str, me: str) -> tuple[str, str]:
    style = nick_style(nick)
    if m.casefold(nick) == m.casefold(me):
        style += " bold"
    return style, safe(nick)


def message_line(msg: m.Message, *, me: str, room: str | None) -> StyleAndTextTuples:
    """``12:01 <alice> hi``, ``12:01 * alice waves``, ``12:01 [private] <bob> psst``.

    The room is named when it is not the current one; ``me`` sent it if the sender is us.
    """
    line = _stamp(msg.time, dated=msg.history)
    if m.is_room(msg.target):
        if room is None or m.casefold(msg.target) != m.casefold(room):
            line.append(("class:room", safe(msg.target) + " "))
    elif m.casefold(msg.sender) == m.casefold(me):
        line.append(("class:private", f"[private to {safe(msg.target)}] "))
    else:
        line.append(("class:private", "[private] "))
    text = safe(msg.text)
    if msg.kind is m.Kind.ACTION:
        line += [("class:action", "* "), _nick(msg.sender, me), ("class:action", " " + text)]
    elif msg.kind is m.Kind.NOTICE:
        line += [("", "-"), _nick(msg.sender, me), ("", "- " + text)]
    else:
        line += [("", "<"), _nick(msg.sender, me), ("", "> " + text)]
    if msg.history:  # replayed, not live: dimmed from end to end, and said so
        stamp, rest = line[:1], line[1:]
        line = [*stamp, ("class:history", "[earlier] ")]
        line += [("class:history", fragment[1]) for fragment in rest]
    return line


def render(event: m.Event, *, me: str, room: str | None) -> StyleAndTextTuples | None:
    """The line to show for an unsolicited event, or ``None`` for events not shown."""
    match event:
        case m.Message():
            return message_line(event, me=me, room=room)
        case m.Joined(room=where, nick=nick):
            return notice(f"{safe(nick)} joined {safe(where)}")
        case m.Parted(room=where, nick=nick, reason=reason):
            return notice(f"{safe(nick)} left {safe(where)}" + _why(reason))
        case m.Quitted(nick=nick, reason=reason):
            return notice(f"{safe(nick)} quit" + _why(reason))
        case m.NickChanged(old=old, new=new):
            return notice(f"{safe(old)} is now known as {safe(new)}")
        case m.Members(room=where, nicks=nicks):
            return notice(f"in {safe(where)}: {', '.join(safe(n) for n in nicks)}")
        case m.RoomTopic(room=where, text=text, setter=setter):
            if not text:
                return notice(f"{safe(setter) or 'someone'} cleared the topic of {safe(where)}")
            return notice(
                f"{safe(setter) or 'someone'} set the topic of {safe(where)}: {safe(text)}"
            )
        case m.Error(code=code, text=text):
            return error_line(safe(with_hint(code, text)))
    return None


def topic_line(topic: m.RoomTopic) -> StyleAndTextTuples:
    """``-- topic of #rust: ... (set by ada)``, the answer to ``/topic`` and shown on joining."""
    if not topic.text:
        return notice(f"{safe(topic.room)} has no topic")
    by = f" (set by {safe(topic.setter)})" if topic.setter else ""
    return notice(f"topic of {safe(topic.room)}: {safe(topic.text)}{by}")


def whois_text(info: m.UserInfo) -> str:
    """``bob is in #a, #b; away: lunch; connected since 12:01``."""
    parts = [f"{safe(info.nick)} is in {', '.join(safe(r) for r in info.rooms) or 'no rooms'}"]
    if info.away:
        parts.append(f"away: {safe(info.away)}")
    if info.since:
        parts.append(f"connected since {clock(info.since)}")
    if info.idle >= 60:
        parts.append(f"idle {int(info.idle // 60)} min")
    return "; ".join(parts)


def _why(reason: str) -> str:
    return f" ({safe(reason)})" if reason else ""
