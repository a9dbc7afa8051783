"""Plain text for people on ``nc`` or ``telnet``: one line per message, ``/commands`` to act.

Input: CRLF or LF; telnet negotiation (IAC sequences) is ignored; a line that does not start with
``/`` is said to the current room; ``//text`` says ``/text``. Output: human-readable lines such as
``[12:01] #general <alice> hello``, with every terminal control character in other people's text
replaced, so nobody can move a reader's cursor or retitle their terminal.
"""

from __future__ import annotations

import re
import time
from typing import ClassVar, Final

from .. import model as m
from ..commands import HISTORY_PAGE, ShowHelp, help_rows, parse_line, with_hint
from ..safetext import safe_text
from . import DEFAULT_MAX_LINE_BYTES, Inbound, LocalReply, presence, roomops
from ._lines import NOT_UTF8, LineBuffer

__all__ = ["HELP", "MemberNames", "TextCodec"]

# RFC 854: IAC (255) starts a command: WILL/WONT/DO/DONT (251-254) and one option byte, SB (250)
# and an option up to IAC SE (255 240), or one of NOP..GA (241-249). Only those are removed, and
# only with an assigned option number (0-49, as telnet clients send): any other 0xff is part of
# the text, which is then not UTF-8 (0xff never is) and is answered with an error, not dropped.
_TELNET: Final = re.compile(
    rb"\xff(?:[\xfb-\xfe][\x00-\x31]|\xfa[\x00-\x31].*?\xff\xf0|[\xf1-\xf9])", re.DOTALL
)

HELP: Final = "\r\n".join(["*** Commands:", *(f"***   {row}" for row in help_rows())])


def _clock(timestamp: float) -> str:
    return time.strftime("%H:%M", time.localtime(timestamp))


class TextCodec:
    """Server side of the plain-text protocol for one connection."""

    __slots__ = ("_lines",)

    name: ClassVar[str] = "text"
    encoding_key: ClassVar[str] = "text"

    #: A person on nc never asks to leave in a way the protocol must enforce.
    hangup: ClassVar[m.Bye | None] = None

    def __init__(self, *, max_line_bytes: int = DEFAULT_MAX_LINE_BYTES) -> None:
        self._lines = LineBuffer(max_line_bytes)

    def greeting(self) -> list[Inbound]:
        """A person on nc says nothing first: greet them with a guest nick at once."""
        return [m.Hello()]

    def keepalive(self, token: str) -> bytes | None:
        """No ping in plain text: a quiet person is just reading."""
        return None

    def rest(self) -> None:
        """Nothing to drop: an idle connection of this protocol holds no tables."""

    # ------------------------------------------------------------------ receiving

    def feed(self, data: bytes) -> list[Inbound]:
        commands: list[Inbound] = []
        for raw in self._lines.feed(data):
            if raw is None:
                commands.append(self._lines.too_long())
                continue
            if b"\xff" in raw:
                raw = _TELNET.sub(b"", raw)
            try:
                line = raw.decode().strip("\x00 \t\r")
            except UnicodeDecodeError:
                commands.append(NOT_UTF8)
                continue
            if line:
                commands.append(self._parse(line))
        return commands

    def _parse(self, line: str) -> Inbound:
        parsed = parse_line(line)
        if isinstance(parsed, ShowHelp):
            return LocalReply((HELP + "\r\n").encode())
        return parsed

    # -------------------------------------------------------------------- sending

    def encode(self, event: m.Event) -> bytes:
        if isinstance(event, m.Ack) or presence.unshown(event):
            return b""
        if type(event) is m.Members:
            head = safe_text(f"* {event.room} ({len(event.nicks)}): ")
            return (head + _MEMBER_NAMES.names(event.room, event.nicks) + "\r\n").encode()
        # Every line as a whole, not field by field: error texts, room names from older
        # databases and whatever a future event carries are all covered.
        text = _render(event)
        if "\r\n" in text:
            return ("\r\n".join(map(safe_text, text.split("\r\n"))) + "\r\n").encode()
        return (safe_text(text) + "\r\n").encode()


class MemberNames:
    """Rendered member lists, one per room, extended as the room's kept list grows.

    A newcomer to a room of N is sent all N names. In a join storm each newcomer's list is the
    previous one plus one name (the broker keeps the list and extends it), so rendering each
    afresh would join and sanitise N names per join; this keeps the last list rendered for
    each room and its text, and renders only the name that was added. Any other change (a part,
    a nick change) renders the list anew. Shared by every text connection of the process:
    entries are checked by content, never trusted by room name alone.
    """

    #: Rooms remembered at once (the least recently rendered are forgotten first).
    MAX_ROOMS: ClassVar[int] = 64

    def __init__(self) -> None:
        self._rooms: dict[str, tuple[tuple[str, ...], str]] = {}
        #: Names sanitised so far (for tests: a storm of N joins renders N names, not N²/2).
        self.rendered = 0

    def names(self, room: str, nicks: tuple[str, ...]) -> str:
        """``nicks`` as one comma-separated, terminal-safe string."""
        last = self._rooms.pop(room, None)
        if last is not None and last[0] is nicks:
            text = last[1]
        elif last is not None and len(nicks) == len(last[0]) + 1 and nicks[:-1] == last[0]:
            added = safe_text(nicks[-1])
            text = f"{last[1]}, {added}" if last[1] else added
            self.rendered += 1
        else:
            text = safe_text(", ".join(nicks))
            self.rendered += len(nicks)
        self._rooms[room] = (nicks, text)
        if len(self._rooms) > self.MAX_ROOMS:
            del self._rooms[next(iter(self._rooms))]
        return text


_MEMBER_NAMES: Final = MemberNames()


def _render(event: m.Event) -> str:
    match event:
        case m.Message():
            return _render_message(event)
        case m.LoggedIn(nick=nick):
            return f"*** You are logged in as {nick}."
        case m.HistoryPage(target=target, messages=messages):
            if not messages:
                return f"*** no earlier messages in {target}"
            lines = [f"*** history of {target}, messages {messages[0].id}-{messages[-1].id}:"]
            lines += [_render_message(msg) for msg in messages]
            if len(messages) >= HISTORY_PAGE:  # a shorter page has reached the first message
                lines.append(f"*** /history {target} {messages[0].id} for earlier ones")
            return "\r\n".join(lines)
        case m.ConversationList(conversations=found):
            lines = ["* conversations:" if found else "* no conversations"]
            lines += [f"*   {c.target} [{_clock(c.time)}]" for c in found]
            return "\r\n".join(lines)
        case m.Welcome(nick=nick, server=server):
            return (
                f"*** Welcome to {server}, {nick}! You are in the chat: type a line to talk, "
                "/help for commands."
            )
        case m.Joined(room=room, nick=nick):
            return f"* {nick} joined {room}"
        case m.Parted(room=room, nick=nick, reason=reason):
            return f"* {nick} left {room}" + (f" ({safe_text(reason)})" if reason else "")
        case m.Quitted(nick=nick, reason=reason):
            return f"* {nick} quit" + (f" ({safe_text(reason)})" if reason else "")
        case m.NickChanged(old=old, new=new):
            return f"* {old} is now known as {new}"
        case m.Members(room=room, nicks=nicks):
            return f"* {room} ({len(nicks)}): {', '.join(nicks)}"
        case m.RoomList(rooms=rooms):
            if not rooms:
                return "* no rooms"
            lines = ["* rooms:"]
            for r in rooms:
                topic = f": {safe_text(r.topic)}" if r.topic else ""
                lines.append(f"*   {r.name} ({r.members}){topic}")
            return "\r\n".join(lines)
        case m.Pong(token=token):
            return f"* pong {safe_text(token)}".rstrip()
        case m.Error(code=code, text=text):
            return f"! {safe_text(with_hint(code, text))}"
        case m.Bye(reason=reason):
            return f"*** {reason}"
        case m.RoomTopic(room=room, text=text, setter=setter):
            if not text:
                return f"* {room} has no topic"
            by = f" (set by {setter})" if setter else ""
            return f"* topic of {room}: {safe_text(text)}{by}"
        case m.AwayStatus(text=text):
            return f"* you are away: {safe_text(text)}" if text else "* you are back"
        case m.UserInfo(nick=nick, rooms=rooms, away=away):
            where = ", ".join(rooms) or "no rooms"
            return f"* {nick} is in {where}" + (f" (away: {safe_text(away)})" if away else "")
        case _:
            # Room operator events (codecs/roomops.py: the operator commands' own block).
            line = roomops.render_text(event, safe_text) or presence.render_text(event, safe_text)
            if line is None:  # pragma: no cover - Ack is handled by the caller
                raise AssertionError(event)
            return line


def _render_message(msg: m.Message) -> str:
    stamp = "[" + _clock(msg.time) + "]"
    if msg.history:
        stamp += " (history)"
    text = safe_text(msg.text)
    if m.is_room(msg.target):
        where = f"{stamp} {msg.target} "
        if msg.kind is m.Kind.ACTION:
            return f"{where}* {msg.sender} {text}"
        if msg.kind is m.Kind.NOTICE:
            return f"{where}-{msg.sender}- {text}"
        return f"{where}<{msg.sender}> {text}"
    if msg.kind is m.Kind.ACTION:
        return f"{stamp} *{msg.sender}* * {msg.sender} {text}"
    return f"{stamp} *{msg.sender}* {text}"
