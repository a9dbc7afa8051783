"""Room operator commands and events for the JSON-lines and text protocols (pure).

IRC spells these as MODE/KICK/INVITE/LUSERS (:mod:`.irc.channel`); JSON and nc users get the same
powers through the commands here, so that all protocols share one set of rules (the broker's,
:mod:`anychat.rooms`). docs/protocol.md documents the JSON fields and the error codes.
"""

from __future__ import annotations

from collections.abc import Callable, Mapping
from typing import Any, Final

from .. import model as m
from . import Inbound
from ._fields import BadField
from ._fields import ref_field as _ref
from ._fields import str_field as _str

__all__ = [
    "JSON_COMMANDS",
    "JSON_EVENTS",
    "TEXT_COMMANDS",
    "TEXT_HELP",
    "command_to_json",
    "event_to_json",
    "render_text",
]


def _change(o: object) -> m.ModeChange:
    if not isinstance(o, dict):
        raise BadField("each change must be an object")
    mode = _str(o, "mode")
    if len(mode) != 1:
        raise BadField("'mode' must be one letter")
    on = o.get("on", True)
    if not isinstance(on, bool):
        raise BadField("'on' must be true or false")
    return m.ModeChange(mode=mode, on=on, arg=_str(o, "arg", ""))


def _changes(o: Mapping[str, Any]) -> tuple[m.ModeChange, ...]:
    raw = o.get("changes", [])
    if not isinstance(raw, list) or len(raw) > 16:
        raise BadField("'changes' must be a list of at most 16 changes")
    return tuple(_change(c) for c in raw)


def _change_json(c: m.ModeChange) -> dict[str, Any]:
    return {"mode": c.mode, "on": c.on, "arg": c.arg}


# ------------------------------------------------------------------------------ JSON

#: Command parsers, merged into the JSON codec's table (``BadField`` is its bad-field error).
JSON_COMMANDS: Final[dict[str, Callable[[Mapping[str, Any]], m.Command]]] = {
    "mode": lambda o: m.Mode(room=_str(o, "room"), changes=_changes(o), ref=_ref(o)),
    "kick": lambda o: m.Kick(
        room=_str(o, "room"), nick=_str(o, "nick"), reason=_str(o, "reason", ""), ref=_ref(o)
    ),
    "invite": lambda o: m.Invite(nick=_str(o, "nick"), room=_str(o, "room"), ref=_ref(o)),
    "stats": lambda o: m.Stats(ref=_ref(o)),
}


def command_to_json(cmd: m.Command) -> dict[str, Any] | None:
    match cmd:
        case m.Mode(room=room, changes=changes):
            return {"type": "mode", "room": room, "changes": [_change_json(c) for c in changes]}
        case m.Kick(room=room, nick=nick, reason=reason):
            return {"type": "kick", "room": room, "nick": nick, "reason": reason}
        case m.Invite(nick=nick, room=room):
            return {"type": "invite", "nick": nick, "room": room}
        case m.Stats():
            return {"type": "stats"}
    return None


def event_to_json(event: m.Event) -> dict[str, Any] | None:
    match event:
        case m.ServerStats():
            return {
                "type": "stats",
                "users": event.users,
                "unregistered": event.unregistered,
                "rooms": event.rooms,
                "max_users": event.max_users,
            }
        case m.RoomModes(room=room, modes=modes, args=args, created=created):
            return {
                "type": "modes",
                "room": room,
                "modes": modes,
                "args": list(args),
                "created": round(created, 6),
            }
        case m.ModeChanged(room=room, by=by, changes=changes):
            return {
                "type": "mode",
                "room": room,
                "by": by,
                "changes": [_change_json(c) for c in changes],
            }
        case m.BanList(room=room, bans=bans):
            return {
                "type": "bans",
                "room": room,
                "bans": [{"mask": b.mask, "setter": b.setter, "time": b.time} for b in bans],
            }
        case m.Kicked(room=room, nick=nick, by=by, reason=reason):
            return {"type": "kicked", "room": room, "nick": nick, "by": by, "reason": reason}
        case m.Invited(room=room, nick=nick, by=by):
            return {"type": "invited", "room": room, "nick": nick, "by": by}
    return None


def _float(o: Mapping[str, Any], key: str) -> float:
    value = o.get(key, 0.0)
    if not isinstance(value, int | float) or isinstance(value, bool):
        raise BadField(f"{key!r} must be a number")
    return float(value)


def _int(o: Mapping[str, Any], key: str) -> int:
    value = o.get(key, 0)
    if not isinstance(value, int) or isinstance(value, bool):
        raise BadField(f"{key!r} must be an integer")
    return value


#: Event parsers for the client side.
JSON_EVENTS: Final[dict[str, Callable[[Mapping[str, Any]], m.Event]]] = {
    "stats": lambda o: m.ServerStats(
        users=_int(o, "users"),
        unregistered=_int(o, "unregistered"),
        rooms=_int(o, "rooms"),
        max_users=_int(o, "max_users"),
        ref=_ref(o),
    ),
    "modes": lambda o: m.RoomModes(
        room=_str(o, "room"),
        modes=_str(o, "modes"),
        args=tuple(str(a) for a in o.get("args", ())),
        created=_float(o, "created"),
        ref=_ref(o),
    ),
    "mode": lambda o: m.ModeChanged(
        room=_str(o, "room"), by=_str(o, "by"), changes=_changes(o), ref=_ref(o)
    ),
    "bans": lambda o: m.BanList(
        room=_str(o, "room"),
        bans=tuple(
            m.Ban(mask=_str(b, "mask"), setter=_str(b, "setter", ""), time=_float(b, "time"))
            for b in o.get("bans", ())
        ),
        ref=_ref(o),
    ),
    "kicked": lambda o: m.Kicked(
        room=_str(o, "room"),
        nick=_str(o, "nick"),
        by=_str(o, "by"),
        reason=_str(o, "reason", ""),
        ref=_ref(o),
    ),
    "invited": lambda o: m.Invited(
        room=_str(o, "room"), nick=_str(o, "nick"), by=_str(o, "by"), ref=_ref(o)
    ),
}


# ------------------------------------------------------------------------------ text

TEXT_HELP: Final = (
    "/op #ROOM NICK, /deop, /voice, /devoice    give or take operator or voice\n"
    "/kick #ROOM NICK [REASON]   /invite NICK #ROOM   /stats\n"
    "/mode #ROOM [+-LETTERS [ARGS]]   e.g. /mode #room +tn, /mode #room +k secret, "
    "/mode #room +b bob"
)


def _usage(text: str) -> m.Invalid:
    return m.Invalid(code=m.ErrorCode.BAD_COMMAND, text=f"usage: {text}")


def _status(mode: str, on: bool, verb: str) -> Callable[[str], Inbound]:
    def parse(rest: str) -> Inbound:
        words = rest.split()
        if len(words) != 2 or not words[0].startswith("#"):
            return _usage(f"/{verb} #ROOM NICK")
        return m.Mode(room=words[0], changes=(m.ModeChange(mode=mode, on=on, arg=words[1]),))

    return parse


def _mode(rest: str) -> Inbound:
    words = rest.split()
    if not words or not words[0].startswith("#"):
        return _usage("/mode #ROOM [+-LETTERS [ARGS]]")
    room, letters, args = words[0], words[1] if len(words) > 1 else "", words[2:]
    changes: list[m.ModeChange] = []
    on = True
    for letter in letters:
        if letter in "+-":
            on = letter == "+"
            continue
        takes = letter in m.STATUS_MODES or letter == "k" or (letter == "l" and on)
        takes = takes or (letter in m.LIST_MODES and bool(args))
        if takes and not args:
            return _usage(f"/mode {room} {letters}: +{letter} needs an argument")
        changes.append(m.ModeChange(mode=letter, on=on, arg=args.pop(0) if takes else ""))
    return m.Mode(room=room, changes=tuple(changes))


def _kick(rest: str) -> Inbound:
    words = rest.split(maxsplit=2)
    if len(words) < 2 or not words[0].startswith("#"):
        return _usage("/kick #ROOM NICK [REASON]")
    return m.Kick(room=words[0], nick=words[1], reason=words[2] if len(words) > 2 else "")


def _invite(rest: str) -> Inbound:
    words = rest.split()
    if len(words) != 2 or not words[1].startswith("#"):
        return _usage("/invite NICK #ROOM")
    return m.Invite(nick=words[0], room=words[1])


#: Slash commands for nc users (``rest`` is the line after the verb).
TEXT_COMMANDS: Final[dict[str, Callable[[str], Inbound]]] = {
    "op": _status("o", True, "op"),
    "deop": _status("o", False, "deop"),
    "voice": _status("v", True, "voice"),
    "devoice": _status("v", False, "devoice"),
    "mode": _mode,
    "kick": _kick,
    "invite": _invite,
    "stats": lambda rest: m.Stats(),
}


def _changes_text(changes: tuple[m.ModeChange, ...]) -> str:
    return " ".join(
        ("+" if c.on else "-") + c.mode + (f" {c.arg}" if c.arg else "") for c in changes
    )


def render_text(event: m.Event, clean: Callable[[str], str]) -> str | None:
    """One line for an nc user, or ``None`` for an event this module does not cover."""
    match event:
        case m.ServerStats(users=users, rooms=rooms, unregistered=waiting):
            return f"* {users} users in {rooms} rooms ({waiting} connecting)"
        case m.RoomModes(room=room, modes=modes, args=args):
            return f"* {room} modes: {' '.join((modes, *args))}"
        case m.ModeChanged(room=room, by=by, changes=changes):
            if not changes:
                return f"* no mode of {room} changed"
            return f"* {by} sets {room} {_changes_text(changes)}"
        case m.BanList(room=room, bans=bans):
            if not bans:
                return f"* {room} bans nobody"
            return f"* {room} bans: " + ", ".join(b.mask for b in bans)
        case m.Kicked(room=room, nick=nick, by=by, reason=reason):
            return f"* {by} kicked {nick} from {room} ({clean(reason)})"
        case m.Invited(room=room, nick=nick, by=by):
            return f"* {by} invited {nick} to {room} (/join {room})"
    return None
