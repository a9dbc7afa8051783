"""Channel operator commands as IRC spells them: MODE, KICK, INVITE (RFC 2812 §3.2, RFC 2811).

The rules (who may, what a mode means) are the broker's (:mod:`anychat.rooms`); this module only
turns IRC's syntax into model commands. Syntax errors are answered here, once each: 461 for a
missing parameter, 472 for a letter the server does not know (the model lists the known ones).
"""

from __future__ import annotations

from typing import Final

from ... import model as m
from .. import Inbound, LocalReply
from .state import Pending
from .wire import Wire

__all__ = ["invite", "kick", "mode", "user_mode"]

_USER_MODES: Final = frozenset("iw")
#: ISUPPORT ``MODES``: parameter-taking changes one MODE line may carry.
MAX_MODE_ARGS: Final = 4


def _takes_arg(letter: str, on: bool) -> bool:
    if letter in m.STATUS_MODES or letter in m.LIST_MODES or letter == "k":
        return True
    return letter == "l" and on


def mode(w: Wire, params: tuple[str, ...]) -> list[Inbound]:
    if not params or not params[0]:
        return w.need_params("MODE")
    target = params[0]
    if not m.is_room(target):
        return user_mode(w, params)
    if len(params) == 1:
        return [m.Mode(room=target, ref=w.state.track(Pending("mode", target)))]
    out: list[Inbound] = []
    changes: list[m.ModeChange] = []
    args = list(params[2:])
    on = True
    for letter in params[1]:
        if letter in "+-":
            on = letter == "+"
        elif letter not in m.ROOM_MODES:
            out.append(w.reply("472", letter, ":is unknown mode char to me"))
        elif _takes_arg(letter, on) and letter in m.LIST_MODES and not args:
            changes.append(m.ModeChange(mode=letter, on=on))  # "MODE #a b": the ban list
        elif _takes_arg(letter, on):
            if not args:
                return [*out, *w.need_params("MODE")]
            if len(changes) >= MAX_MODE_ARGS * 2:
                break
            changes.append(m.ModeChange(mode=letter, on=on, arg=args.pop(0)))
        else:
            changes.append(m.ModeChange(mode=letter, on=on))
    if changes:
        ref = w.state.track(Pending("mode", target, extra=params[1]))
        out.append(m.Mode(room=target, changes=tuple(changes), ref=ref))
    return out


def user_mode(w: Wire, params: tuple[str, ...]) -> list[Inbound]:
    target = params[0]
    state = w.state
    if m.casefold(target) != m.casefold(state.nick):
        return [w.reply("502", ":Can't change mode for other users")]
    if len(params) == 1:
        return [w.reply("221", "+" + "".join(sorted(state.modes)))]
    # User modes change nothing here, but clients set +i or +w on connecting and expect
    # the change echoed back (as ngircd does); unknown letters get 501.
    changes, sign, adding = "", "", True
    for char in params[1]:
        if char in "+-":
            adding = char == "+"
        elif char not in _USER_MODES:
            return [w.reply("501", ":Unknown MODE flag")]
        elif adding != (char in state.modes):
            state.set_user_mode(char, adding)
            wanted = "+" if adding else "-"
            changes += char if sign == wanted else wanted + char
            sign = wanted
    if not changes:
        return []
    return [LocalReply(f":{w.mask} MODE {state.nick} :{changes}\r\n".encode())]


def kick(w: Wire, params: tuple[str, ...]) -> list[Inbound]:
    """``KICK #chan nick[,nick...] [:reason]`` (one channel; several nicks as servers allow)."""
    if len(params) < 2 or not params[0] or not params[1]:
        return w.need_params("KICK")
    room, reason = params[0], params[2] if len(params) > 2 else ""
    return [
        m.Kick(room=room, nick=nick, reason=reason, ref=w.state.track(Pending("kick", room, nick)))
        for nick in params[1].split(",")[: m.MAX_BANS]
        if nick
    ]


def invite(w: Wire, params: tuple[str, ...]) -> list[Inbound]:
    if len(params) < 2 or not params[0] or not params[1]:
        return w.need_params("INVITE")
    nick, room = params[0], params[1]
    return [m.Invite(nick=nick, room=room, ref=w.state.track(Pending("invite", room, nick)))]
