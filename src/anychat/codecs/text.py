"""Plain text for people on ``nc`` or ``telnet``: one line per message, ``/commands`` to act.

Input: CRLF or LF; telnet negotiation (IAC sequences) is ignored; a line that does not start with
``/`` is said to the current room; ``//text`` says ``/text``. Output: human-readable lines such as
``[12:01] #general <alice> hello``, with every terminal control character in other people's text
replaced, so nobody can move a reader's cursor or retitle their terminal.
"""

from __future__ import annotations

import re
import time
from collections.abc import Callable
from typing import ClassVar, Final

from .. import model as m
from . import DEFAULT_MAX_LINE_BYTES, Inbound, LocalReply
from ._lines import LineBuffer

__all__ = ["HELP", "TextCodec", "neutralize"]

# RFC 854: IAC (255) starts a command; WILL/WONT/DO/DONT (251-254) take one option byte;
# SB (250) runs to IAC SE (255 240); IAC IAC is a literal 255, which is never valid UTF-8 anyway.
_TELNET: Final = re.compile(rb"\xff(?:[\xfb-\xfe].?|\xfa.*?\xff\xf0|.?)", re.DOTALL)

# C0 controls, DEL and C1 controls (C1 includes the single-byte CSI) become visible marks, and
# so do the characters that rearrange a line: bidirectional embeddings, overrides and isolates
# (U+202A-U+202E, U+2066-U+2069; "Trojan Source") and the line and paragraph separators
# (U+2028, U+2029), which some terminals and editors treat as line breaks.
_CONTROLS: Final = dict.fromkeys(
    [*range(32), *range(127, 160), *range(0x202A, 0x202F), *range(0x2066, 0x206A), 0x2028, 0x2029],
    "\N{REPLACEMENT CHARACTER}",
)


def neutralize(text: str) -> str:
    """Replace terminal control and reordering characters so untrusted text cannot drive a
    terminal or make a line read differently from what was sent."""
    return text.translate(_CONTROLS)


HELP: Final = "\r\n".join(
    [
        "*** Commands:",
        "***   /nick NAME            change your nick",
        "***   /join #ROOM           join a room (and make it your current room)",
        "***   /part [#ROOM] [WHY]   leave a room (default: the current one)",
        "***   /msg TARGET TEXT      message a nick privately, or a room",
        "***   /me ACTION            act in the current room (* you waves)",
        "***   /who [#ROOM]          list the members of a room",
        "***   /rooms                list the rooms",
        "***   /register PASSWORD    claim your current nick with a password",
        "***   /login NICK PASSWORD  log in to your account",
        "***   /history [TARGET] [BEFORE-ID]  earlier messages of a room or a private chat",
        "***   /ping                 check the server is alive",
        "***   /help                 this list",
        "***   /quit [WHY]           leave",
        "*** Anything else is said to your current room; start with // to say a leading /.",
    ]
)
COMMANDS: Final = (
    "nick",
    "join",
    "part",
    "msg",
    "me",
    "who",
    "rooms",
    "ping",
    "help",
    "quit",
    "register",
    "login",
    "history",
)


def _room_name(word: str) -> str:
    """People type ``/join general``; rooms are named ``#general``."""
    return word if word.startswith("#") else "#" + word


def _is_id(word: str) -> bool:
    """A message id: ASCII digits only (``str.isdigit`` also accepts ``²``, which int() refuses),
    and short enough for a 64-bit integer, the largest id a store keeps."""
    return word.isascii() and word.isdigit() and len(word) <= 18


def _clock(timestamp: float) -> str:
    return time.strftime("%H:%M", time.localtime(timestamp))


class TextCodec:
    """Server side of the plain-text protocol for one connection."""

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

    # ------------------------------------------------------------------ receiving

    def feed(self, data: bytes) -> list[Inbound]:
        commands: list[Inbound] = []
        for raw in self._lines.feed(data):
            if raw is None:
                commands.append(
                    m.Invalid(
                        code=m.ErrorCode.LINE_TOO_LONG,
                        text=f"line longer than {self._lines.max_line_bytes} bytes was dropped",
                    )
                )
                continue
            if b"\xff" in raw:
                raw = _TELNET.sub(b"", raw)
            try:
                line = raw.decode().strip("\x00 \t\r")
            except UnicodeDecodeError:
                commands.append(
                    m.Invalid(code=m.ErrorCode.INVALID_UTF8, text="line was not valid UTF-8")
                )
                continue
            if line:
                commands.append(self._parse(line))
        return commands

    def _parse(self, line: str) -> Inbound:
        if not line.startswith("/"):
            return m.Say(target=None, text=line)
        if line.startswith("//"):
            return m.Say(target=None, text=line[1:])
        verb, _, rest = line[1:].partition(" ")
        rest = rest.strip()
        handler = self._handlers.get(verb.lower())
        if handler is None:
            return m.Invalid(
                code=m.ErrorCode.UNKNOWN_COMMAND,
                text=f"unknown command /{verb}; /help lists the commands",
            )
        return handler(self, rest)

    @staticmethod
    def _usage(text: str) -> m.Invalid:
        return m.Invalid(code=m.ErrorCode.BAD_COMMAND, text=f"usage: {text}")

    def _nick(self, rest: str) -> Inbound:
        return m.Nick(nick=rest) if rest and " " not in rest else self._usage("/nick NAME")

    def _join(self, rest: str) -> Inbound:
        return (
            m.Join(room=_room_name(rest))
            if rest and " " not in rest
            else self._usage("/join #ROOM")
        )

    def _part(self, rest: str) -> Inbound:
        if rest.startswith("#"):
            room, _, reason = rest.partition(" ")
            return m.Part(room=room, reason=reason.strip())
        return m.Part(room=None, reason=rest)

    def _msg(self, rest: str) -> Inbound:
        target, _, text = rest.partition(" ")
        text = text.strip()
        return (
            m.Say(target=target, text=text) if target and text else self._usage("/msg TARGET TEXT")
        )

    def _me(self, rest: str) -> Inbound:
        return (
            m.Say(target=None, text=rest, kind=m.Kind.ACTION) if rest else self._usage("/me ACTION")
        )

    def _who(self, rest: str) -> Inbound:
        return m.Who(room=_room_name(rest) if rest else None)

    def _rooms(self, rest: str) -> Inbound:
        return m.ListRooms()

    def _register(self, rest: str) -> Inbound:
        return m.Register(password=rest) if rest else self._usage("/register PASSWORD")

    def _login(self, rest: str) -> Inbound:
        nick, _, password = rest.partition(" ")
        if not nick or not password:
            return self._usage("/login NICK PASSWORD")
        return m.Login(nick=nick, password=password)

    def _history(self, rest: str) -> Inbound:
        words = rest.split()
        target: str | None = None
        before: int | None = None
        if words and not _is_id(words[0]):
            target = words.pop(0)
        if words and _is_id(words[0]) and len(words) == 1:
            before = int(words[0])
        elif words:
            return self._usage("/history [#ROOM or NICK] [BEFORE-ID]")
        return m.History(target=target, before=before, limit=20)

    def _ping(self, rest: str) -> Inbound:
        return m.Ping(token=rest)

    def _help(self, rest: str) -> Inbound:
        return LocalReply((HELP + "\r\n").encode())

    def _quit(self, rest: str) -> Inbound:
        return m.Quit(reason=rest)

    _handlers: ClassVar[dict[str, Callable[[TextCodec, str], Inbound]]] = {
        "nick": _nick,
        "join": _join,
        "part": _part,
        "leave": _part,
        "msg": _msg,
        "query": _msg,
        "me": _me,
        "who": _who,
        "names": _who,
        "rooms": _rooms,
        "list": _rooms,
        "ping": _ping,
        "register": _register,
        "login": _login,
        "history": _history,
        "help": _help,
        "quit": _quit,
        "exit": _quit,
    }

    # -------------------------------------------------------------------- sending

    def encode(self, event: m.Event) -> bytes:
        if isinstance(event, m.Ack):
            return b""
        # Every line as a whole, not field by field: error texts, room names from older
        # databases and whatever a future event carries are all covered.
        text = _render(event)
        if "\r\n" in text:
            return ("\r\n".join(map(neutralize, text.split("\r\n"))) + "\r\n").encode()
        return (neutralize(text) + "\r\n").encode()


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
            lines.append(f"*** /history {target} {messages[0].id} for earlier ones")
            return "\r\n".join(lines)
        case m.Welcome(nick=nick, server=server):
            return (
                f"*** Welcome to {server}, {nick}! You are in the chat: type a line to talk, "
                "/help for commands."
            )
        case m.Joined(room=room, nick=nick):
            return f"* {nick} joined {room}"
        case m.Parted(room=room, nick=nick, reason=reason):
            return f"* {nick} left {room}" + (f" ({neutralize(reason)})" if reason else "")
        case m.Quitted(nick=nick, reason=reason):
            return f"* {nick} quit" + (f" ({neutralize(reason)})" if reason else "")
        case m.NickChanged(old=old, new=new):
            return f"* {old} is now known as {new}"
        case m.Members(room=room, nicks=nicks):
            return f"* {room} ({len(nicks)}): {', '.join(nicks)}"
        case m.RoomList(rooms=rooms):
            if not rooms:
                return "* no rooms"
            return "* rooms: " + ", ".join(f"{r.name} ({r.members})" for r in rooms)
        case m.Pong(token=token):
            return f"* pong {neutralize(token)}".rstrip()
        case m.Error(text=text):
            return f"! {text}"
        case m.Bye(reason=reason):
            return f"*** {reason}"
        case m.RoomTopic(room=room, text=text, setter=setter):
            if not text:
                return f"* {room} has no topic"
            by = f" (set by {setter})" if setter else ""
            return f"* topic of {room}: {neutralize(text)}{by}"
        case m.AwayStatus(text=text):
            return f"* you are away: {neutralize(text)}" if text else "* you are back"
        case m.UserInfo(nick=nick, rooms=rooms, away=away):
            where = ", ".join(rooms) or "no rooms"
            return f"* {nick} is in {where}" + (f" (away: {neutralize(away)})" if away else "")
        case _:  # pragma: no cover - Ack is handled by the caller
            raise AssertionError(event)


def _render_message(msg: m.Message) -> str:
    stamp = "[" + _clock(msg.time) + "]"
    if msg.history:
        stamp += " (history)"
    text = neutralize(msg.text)
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
