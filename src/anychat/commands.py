"""The slash-command grammar people type: ``/join #rust``, ``/msg bob hi``, ``/topic new topic``.

One grammar for every client where a person types lines: the plain-text codec (``nc``/telnet)
and the terminal client parse with :func:`parse_line`, and show the same ``/help`` (from
:data:`COMMANDS`), so a command learnt in one works in the other. A line becomes a model command
(:class:`~anychat.model.Say` for plain text, :class:`~anychat.model.Invalid` for a typo, with the
usage) or :class:`ShowHelp`; what the command *does* stays with each side (the codec hands it to
the broker, the terminal client to its :class:`~anychat.client.Client`).

:func:`hint` is the other half: the broker's error texts say what is wrong in any protocol's
words; how a person who types slash commands fixes it (``/join #room first``) is added here, by
the clients that speak this grammar, and never reaches IRC or JSON clients.

Pure: no I/O, importable without any event loop library.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass
from typing import Final, TypeAlias

from . import model as m
from .codecs import LocalReply, roomops

__all__ = [
    "COMMANDS",
    "HISTORY_PAGE",
    "SECRET_COMMANDS",
    "CommandSpec",
    "Parsed",
    "ShowHelp",
    "help_rows",
    "hint",
    "is_secret",
    "parse_line",
    "room_name",
    "with_hint",
]

#: Messages per ``/history`` page.
HISTORY_PAGE: Final = 20
#: ``/topic #room -delete`` clears a topic (as irssi spells it).
CLEAR_TOPIC: Final = "-delete"


@dataclass(frozen=True, slots=True, kw_only=True)
class ShowHelp:
    """``/help``: each client shows :func:`help_rows` in its own way."""


#: What a typed line means.
Parsed: TypeAlias = m.Command | ShowHelp

_Parser: TypeAlias = Callable[[str], Parsed]


@dataclass(frozen=True, slots=True)
class CommandSpec:
    name: str
    args: str
    what: str
    parse: _Parser
    aliases: tuple[str, ...] = ()

    @property
    def usage(self) -> str:
        return f"/{self.name} {self.args}".rstrip()


def room_name(word: str) -> str:
    """People type ``/join general``; rooms are named ``#general``."""
    return word if word.startswith("#") else "#" + word


def _usage(name: str) -> m.Invalid:
    return m.Invalid(code=m.ErrorCode.BAD_COMMAND, text=f"usage: {COMMANDS[name].usage}")


def _one_word(rest: str) -> str | None:
    return rest if rest and " " not in rest else None


def _nick(rest: str) -> Parsed:
    word = _one_word(rest)
    return m.Nick(nick=word) if word else _usage("nick")


def _join(rest: str) -> Parsed:
    word = _one_word(rest)
    return m.Join(room=room_name(word)) if word else _usage("join")


def _part(rest: str) -> Parsed:
    if m.is_room(rest):
        room, _, reason = rest.partition(" ")
        return m.Part(room=room, reason=reason.strip())
    return m.Part(room=None, reason=rest)


def _msg(rest: str) -> Parsed:
    target, _, text = rest.partition(" ")
    text = text.strip()
    return m.Say(target=target, text=text) if target and text else _usage("msg")


def _me(rest: str) -> Parsed:
    return m.Say(target=None, text=rest, kind=m.Kind.ACTION) if rest else _usage("me")


def _who(rest: str) -> Parsed:
    if not rest:
        return m.Who(room=None)
    word = _one_word(rest)
    return m.Who(room=room_name(word)) if word else _usage("who")


def _rooms(rest: str) -> Parsed:
    return m.ListRooms()


def _topic(rest: str) -> Parsed:
    room: str | None = None
    if m.is_room(rest):
        room, _, rest = rest.partition(" ")
        rest = rest.strip()
    if not rest:
        return m.Topic(room=room, text=None)
    return m.Topic(room=room, text="" if rest == CLEAR_TOPIC else rest)


def _away(rest: str) -> Parsed:
    return m.Away(text=rest)


def _whois(rest: str) -> Parsed:
    word = _one_word(rest)
    return m.Whois(nick=word) if word else _usage("whois")


def _history(rest: str) -> Parsed:
    words = rest.split()
    target: str | None = None
    before: int | None = None
    if words and not _is_id(words[0]):
        target = words.pop(0)
    if len(words) == 1 and _is_id(words[0]):
        before = int(words[0])
    elif words:
        return _usage("history")
    return m.History(target=target, before=before, limit=HISTORY_PAGE)


def _register(rest: str) -> Parsed:
    return m.Register(password=rest) if rest else _usage("register")


def _login(rest: str) -> Parsed:
    nick, _, password = rest.partition(" ")
    if not nick or not password:
        return _usage("login")
    return m.Login(nick=nick, password=password)


def _ping(rest: str) -> Parsed:
    return m.Ping(token=rest)


def _help(rest: str) -> Parsed:
    return ShowHelp()


def _quit(rest: str) -> Parsed:
    return m.Quit(reason=rest)


_SPECS: Final = (
    CommandSpec("join", "#ROOM", "join a room and talk there", _join),
    CommandSpec(
        "part", "[#ROOM] [REASON]", "leave a room (default: the current one)", _part, ("leave",)
    ),
    CommandSpec(
        "msg", "NICK|#ROOM TEXT", "send to a nick privately, or to a room", _msg, ("query",)
    ),
    CommandSpec("me", "ACTION", "act in the current room (* you waves)", _me),
    CommandSpec("nick", "NAME", "change your nick", _nick),
    CommandSpec(
        "topic", "[#ROOM] [TEXT]", f"show or set a room's topic ({CLEAR_TOPIC} clears)", _topic
    ),
    CommandSpec("who", "[#ROOM]", "list the members of a room", _who, ("names",)),
    CommandSpec("rooms", "", "list the rooms and their topics", _rooms, ("list",)),
    CommandSpec("whois", "NICK", "who someone is, where, and whether away", _whois),
    CommandSpec("away", "[MESSAGE]", "mark yourself away (no message: back)", _away),
    CommandSpec("history", "[#ROOM|NICK] [ID]", "earlier messages (before message ID)", _history),
    CommandSpec("register", "PASSWORD", "claim your nick with a password", _register),
    CommandSpec("login", "NICK PASSWORD", "log in to your account", _login),
    CommandSpec("ping", "", "check the server is alive", _ping),
    CommandSpec("help", "", "this list", _help),
    CommandSpec("quit", "[REASON]", "leave", _quit, ("exit",)),
)

#: ``/command`` name -> its spec, in the order of ``/help``.
COMMANDS: Final = {spec.name: spec for spec in _SPECS}
_BY_NAME: Final = {name: spec for spec in _SPECS for name in (spec.name, *spec.aliases)}

#: Commands whose arguments hold a password: clients mask them and keep them out of histories.
SECRET_COMMANDS: Final = frozenset({"register", "login"})


def parse_line(line: str) -> Parsed:
    """What one typed line means (``line`` without its line break).

    A line not starting with ``/`` is said to the current room (``target=None``); ``//text``
    says ``/text``. An unknown command or wrong arguments give an :class:`~anychat.model.Invalid`
    that names the right usage.
    """
    if not line.startswith("/"):
        return m.Say(target=None, text=line)
    if line.startswith("//"):
        return m.Say(target=None, text=line[1:])
    verb, _, rest = line[1:].partition(" ")
    spec = _BY_NAME.get(verb.lower())
    if spec is None:
        operator_command = roomops.TEXT_COMMANDS.get(verb.lower())
        if operator_command is not None:  # room operators' commands: their own block
            parsed = operator_command(rest.strip())
            assert not isinstance(parsed, LocalReply)
            return parsed
        return m.Invalid(
            code=m.ErrorCode.UNKNOWN_COMMAND,
            text=f"unknown command /{verb}; /help lists the commands",
        )
    return spec.parse(rest.strip())


def is_secret(line: str) -> bool:
    """True for a typed line that carries a password (``/login ada hunter2``)."""
    if not line.startswith("/"):
        return False
    spec = _BY_NAME.get(line[1:].split(" ", 1)[0].lower())
    return spec is not None and spec.name in SECRET_COMMANDS


def help_rows() -> list[str]:
    """``/help``: one aligned row per command, then how plain lines work."""
    width = max(len(spec.usage) for spec in _SPECS) + 2
    rows = [spec.usage.ljust(width) + spec.what for spec in _SPECS]
    rows.append("anything else is said to the current room; // says a leading /")
    rows.extend(roomops.TEXT_HELP.splitlines())
    return rows


#: How a person typing slash commands fixes what an error code says is wrong.
_HINTS: Final = {
    m.ErrorCode.NO_ROOM: "/join #room first",
    m.ErrorCode.LOGIN_REQUIRED: "/login NICK PASSWORD",
    m.ErrorCode.NICK_REGISTERED: "/login NICK PASSWORD, or /nick ANOTHER",
    m.ErrorCode.NOT_MEMBER: "/join it first",
}


def hint(code: m.ErrorCode | None) -> str | None:
    """The slash command that fixes an error with ``code``, if there is one."""
    return _HINTS.get(code) if code is not None else None


def with_hint(code: m.ErrorCode | None, text: str) -> str:
    """An error text followed by its slash-command hint (``...; /join #room first``)."""
    fix = hint(code)
    return f"{text}; {fix}" if fix else text


def _is_id(word: str) -> bool:
    """A message id: ASCII digits only (``str.isdigit`` also accepts ``²``, which int() refuses),
    and short enough for a 64-bit integer, the largest id a store keeps."""
    return word.isascii() and word.isdigit() and len(word) <= 18
