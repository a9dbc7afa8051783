"""Refusals as IRC numerics: the broker's error codes, spelled for what the client asked.

The same code means different numerics for different requests (``no_such_room`` is 403 for a
JOIN but only an empty 366 for NAMES), and many numerics name what was asked (the nick of a 401,
the channel of a 482), so the table is keyed by the request's verb and the code.
"""

from __future__ import annotations

from typing import Final

from ... import model as m
from .state import Context, Pending
from .wire import Wire

__all__ = ["refusal"]

_ERROR_NUMERICS: Final[dict[tuple[str, m.ErrorCode], tuple[str, str]]] = {
    ("hello", m.ErrorCode.NICK_IN_USE): ("433", "Nickname is already in use"),
    ("hello", m.ErrorCode.INVALID_NICK): ("432", "Erroneous nickname"),
    ("nick", m.ErrorCode.NICK_IN_USE): ("433", "Nickname is already in use"),
    ("nick", m.ErrorCode.INVALID_NICK): ("432", "Erroneous nickname"),
    ("join", m.ErrorCode.INVALID_ROOM): ("403", "No such channel"),
    ("join", m.ErrorCode.NO_SUCH_ROOM): ("403", "No such channel"),
    ("join", m.ErrorCode.TOO_MANY_ROOMS): ("405", "You have joined too many channels"),
    ("part", m.ErrorCode.NO_SUCH_ROOM): ("403", "No such channel"),
    ("part", m.ErrorCode.NOT_MEMBER): ("442", "You're not on that channel"),
    ("say", m.ErrorCode.NO_SUCH_NICK): ("401", "No such nick/channel"),
    ("say", m.ErrorCode.NO_SUCH_ROOM): ("401", "No such nick/channel"),
    ("say", m.ErrorCode.NOT_MEMBER): ("404", "Cannot send to channel"),
    ("topic?", m.ErrorCode.NO_SUCH_ROOM): ("403", "No such channel"),
    ("topic", m.ErrorCode.NO_SUCH_ROOM): ("403", "No such channel"),
    ("topic", m.ErrorCode.NOT_MEMBER): ("442", "You're not on that channel"),
    ("join", m.ErrorCode.INVITE_ONLY): ("473", "Cannot join channel (+i)"),
    ("join", m.ErrorCode.BAD_KEY): ("475", "Cannot join channel (+k)"),
    ("join", m.ErrorCode.ROOM_FULL): ("471", "Cannot join channel (+l)"),
    ("join", m.ErrorCode.BANNED): ("474", "Cannot join channel (+b)"),
    ("say", m.ErrorCode.CANNOT_SEND): ("404", "Cannot send to channel"),
    ("topic", m.ErrorCode.NOT_OPERATOR): ("482", "You're not channel operator"),
    ("names", m.ErrorCode.NO_SUCH_ROOM): ("366", "End of /NAMES list"),
    ("who", m.ErrorCode.NO_SUCH_ROOM): ("315", "End of /WHO list"),
    ("who", m.ErrorCode.NO_SUCH_NICK): ("315", "End of /WHO list"),
}
#: Codes that mean the same whatever was asked; they name no target.
_PLAIN_NUMERICS: Final[dict[m.ErrorCode, tuple[str, str]]] = {
    m.ErrorCode.EMPTY_MESSAGE: ("412", "No text to send"),
    m.ErrorCode.HELLO_REQUIRED: ("451", "You have not registered"),
    m.ErrorCode.ALREADY_REGISTERED: ("462", "You may not reregister"),
    m.ErrorCode.UNKNOWN_COMMAND: ("421", "Unknown command"),
    m.ErrorCode.LINE_TOO_LONG: ("417", "Input line was too long"),
}


def _account_error(w: Wire, pending: Pending, event: m.Error) -> list[str] | None:
    """Refusals about accounts, as servers with services answer them; ``None``: not one."""
    if event.code is m.ErrorCode.TLS_REQUIRED and pending.verb in ("sasl", "hello"):
        # Credentials over plaintext from afar (production): say why, as no numeric can.
        # A refused PASS ends the connection (state.py hangs up); SASL may be retried.
        notice = w.num("NOTICE", ":" + event.text)
        if pending.verb == "sasl":
            return [notice, w.num("904", ":SASL authentication failed")]
        return [notice, w.num("464", ":Password incorrect")]
    if pending.verb == "sasl":
        # The same for every cause (unknown account, wrong password, store down).
        return [w.num("904", ":SASL authentication failed")]
    code = event.code
    if pending.verb == "hello" and code is m.ErrorCode.LOGIN_REQUIRED:
        return [
            w.num(
                "NOTICE",
                ":This server admits only registered users: log in with SASL PLAIN, or send "
                "your account password with PASS before NICK and USER",
            ),
            w.num("464", ":Password required"),
        ]
    if pending.verb == "hello" and code in (
        m.ErrorCode.LOGIN_FAILED,
        m.ErrorCode.STORE_UNAVAILABLE,
    ):
        # RFC 2812 §4.1.1: a wrong connection password ends the connection (state.py hangs up).
        if code is m.ErrorCode.STORE_UNAVAILABLE:
            return [w.num("NOTICE", ":" + event.text)]
        return [w.num("464", ":Password incorrect")]
    if pending.verb in ("hello", "nick") and code is m.ErrorCode.NICK_REGISTERED:
        if w.state.account:
            hint = f"You are logged in as {w.state.account}: your nick is your account's"
        else:
            hint = (
                f"{pending.target} is a registered nick: log in to it with SASL PLAIN (or PASS "
                "before NICK and USER), or choose another nick"
            )
        return [
            w.num("433", pending.target, ":Nickname is already in use"),
            w.num("NOTICE", ":" + hint),
        ]
    return None


#: CHATHISTORY refusals as IRCv3 standard-replies codes.
_HISTORY_FAILS: Final = {
    m.ErrorCode.NOT_MEMBER: "INVALID_TARGET",
    m.ErrorCode.NO_SUCH_ROOM: "INVALID_TARGET",
    m.ErrorCode.NO_ROOM: "INVALID_TARGET",
    m.ErrorCode.LOGIN_REQUIRED: "INVALID_TARGET",
    m.ErrorCode.BAD_COMMAND: "INVALID_PARAMS",
}

#: MODE, KICK and INVITE refusals about the channel itself.
_CHANNEL_NUMERICS: Final = {
    m.ErrorCode.NO_SUCH_ROOM: ("403", "No such channel"),
    m.ErrorCode.INVALID_ROOM: ("403", "No such channel"),
    m.ErrorCode.NOT_MEMBER: ("442", "You're not on that channel"),
    m.ErrorCode.NOT_OPERATOR: ("482", "You're not channel operator"),
}


def _channel_refusal(w: Wire, pending: Pending, event: m.Error) -> list[str] | None:
    if pending.verb not in ("mode", "kick", "invite"):
        return None
    room, code = pending.target, event.code
    nick = event.subject or pending.text
    if code in _CHANNEL_NUMERICS:
        numeric, text = _CHANNEL_NUMERICS[code]
        return [w.num(numeric, room, ":" + text)]
    if code is m.ErrorCode.NO_SUCH_NICK:
        return [w.num("401", nick, ":No such nick/channel")]
    if code is m.ErrorCode.TARGET_NOT_MEMBER:
        return [w.num("441", nick, room, ":They aren't on that channel")]
    if code is m.ErrorCode.ALREADY_MEMBER:
        return [w.num("443", nick, room, ":is already on channel")]
    if code is m.ErrorCode.UNKNOWN_MODE:
        return [w.num("472", event.subject or "*", ":is unknown mode char to me")]
    if code is m.ErrorCode.BAD_COMMAND and pending.verb == "mode":
        # IRCv3 ERR_INVALIDMODEPARAM: <target> <mode char> <parameter> :<description>
        return [w.num("696", room, event.subject or "*", "*", ":" + event.text)]
    return None


def refusal(w: Wire, event: m.Error, ctx: Context) -> list[str]:
    pending = ctx.pending
    if pending is not None:
        if pending.verb == "say" and pending.kind is m.Kind.NOTICE:
            return []  # RFC 2812 §3.3.2: never answer a NOTICE automatically
        account_lines = _account_error(w, pending, event)
        if account_lines is not None:
            return account_lines
        numeric = _ERROR_NUMERICS.get((pending.verb, event.code))
        if numeric is not None:
            code, text = numeric
            return [w.num(code, pending.target, ":" + text)]
        if pending.verb == "userhost":
            return [w.num("302", ":")]
        if pending.verb == "ison":
            return [] if ctx.ison is None else [w.num("303", ":" + " ".join(ctx.ison))]
        if pending.verb == "chathistory":
            if not pending.last:
                return []  # AROUND asks twice: its last half answers for both
            fail = _HISTORY_FAILS.get(event.code, "MESSAGE_ERROR")
            context = " ".join(part for part in (pending.extra, pending.target) if part)
            return [f":{w.server} FAIL CHATHISTORY {fail} {context} :{event.text}"]
        if pending.verb == "setname":
            return [f":{w.server} FAIL SETNAME INVALID_REALNAME :{event.text}"]
        channel_lines = _channel_refusal(w, pending, event)
        if channel_lines is not None:
            return channel_lines
        if pending.verb == "whois" and event.code is m.ErrorCode.NO_SUCH_NICK:
            return [
                w.num("401", pending.target, ":No such nick/channel"),
                w.num("318", pending.target, ":End of /WHOIS list"),
            ]
    plain = _PLAIN_NUMERICS.get(event.code)
    if plain is not None:
        return [w.num(plain[0], ":" + plain[1])]
    return [w.num("NOTICE", ":" + event.text)]
