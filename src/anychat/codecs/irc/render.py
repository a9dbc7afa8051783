"""Model events as IRC lines (RFC 2812 replies and numerics): pure, it only reads the state.

Every state change an event implies was made by :meth:`.state.IrcState.observe` before this
runs, which hands over a :class:`.state.Context` (the request the event answers). Every function
returns lines without CRLF; the codec joins and encodes them once.
"""

from __future__ import annotations

from typing import Final

from ... import model as m
from .parse import MAX_TARGETS
from .state import Context, Pending
from .wire import Wire, clean

__all__ = ["render"]

#: RFC 2812 §2.3: a line, CRLF included, is at most 512 bytes (tags aside).
_LINE_BYTES: Final = 510

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


def _fit(tags: str, head: str, text: str, action: bool) -> list[str]:
    """``head + text`` as one line, or several when it would pass 512 bytes (split, not cut)."""
    start = "@" + tags + " " if tags else ""
    body = f"\x01ACTION {text}\x01" if action else text
    line = head + body
    if len(line) * 4 <= _LINE_BYTES or len(line.encode()) <= _LINE_BYTES:
        return [start + line]
    room = _LINE_BYTES - len(head.encode()) - (9 if action else 0)
    data = text.encode()
    lines = []
    while data:
        cut = min(room, len(data))
        while cut < len(data) and cut > 0 and (data[cut] & 0xC0) == 0x80:
            cut -= 1  # never split a UTF-8 sequence
        cut = max(cut, 1)
        chunk = data[:cut].decode(errors="replace")
        data = data[cut:]
        lines.append(start + head + (f"\x01ACTION {chunk}\x01" if action else chunk))
    return lines


def _say_lines(
    w: Wire, when: float, sender: str, target: str, text: str, kind: m.Kind
) -> list[str]:
    verb = "NOTICE" if kind is m.Kind.NOTICE else "PRIVMSG"
    head = f":{w.mask_of(sender)} {verb} {target} :"
    return _fit(w.time_tag(when), head, clean(text), kind is m.Kind.ACTION)


def _welcome(w: Wire, event: m.Welcome) -> list[str]:
    isupport = (
        f"AWAYLEN={m.MAX_TOPIC_LENGTH} CASEMAPPING=ascii CHANMODES=b,,,nt "
        f"CHANNELLEN={m.MAX_ROOM_LENGTH} CHANTYPES=# MAXTARGETS={MAX_TARGETS} NETWORK={w.network} "
        f"NICKLEN={m.MAX_NICK_LENGTH} PREFIX=(ov)@+ TOPICLEN={m.MAX_TOPIC_LENGTH}"
    )
    return [
        w.num("001", f":Welcome to the {w.network} IRC Network {w.mask}"),
        w.num("002", f":Your host is {w.server}, running version anychat-{w.version}"),
        w.num("003", ":This server was created when it started"),
        w.num("004", w.server, f"anychat-{w.version}", "i", "bnt"),
        w.num("005", *isupport.split(), ":are supported by this server"),
        w.num("422", ":MOTD File is missing"),
    ]


def _names(w: Wire, room: str, nicks: tuple[str, ...]) -> list[str]:
    head = w.num("353", "=", room, ":")
    lines: list[str] = []
    batch: list[str] = []
    size = len(head.encode())
    for nick in nicks:
        if batch and size + len(nick) + 1 > _LINE_BYTES:
            lines.append(head + " ".join(batch))
            batch, size = [], len(head.encode())
        batch.append(nick)
        size += len(nick) + 1
    if batch:
        lines.append(head + " ".join(batch))
    lines.append(w.num("366", room, ":End of /NAMES list"))
    return lines


def _who_line(w: Wire, where: str, nick: str, away: str = "") -> str:
    flag = "G" if away else "H"
    return w.num("352", where, nick, w.server, w.server, nick, flag, f":0 {nick}")


def _members(w: Wire, event: m.Members, pending: Pending | None) -> list[str]:
    if pending is not None and pending.verb == "who":
        lines = [_who_line(w, event.room, nick) for nick in event.nicks]
        return [*lines, w.num("315", pending.target, ":End of /WHO list")]
    return _names(w, event.room, event.nicks)


def _user_info(w: Wire, event: m.UserInfo, ctx: Context) -> list[str]:
    pending = ctx.pending
    nick = event.nick
    if pending is not None and pending.verb == "ison":
        return _ison(w, ctx)
    if pending is not None and pending.verb == "userhost":
        return [w.num("302", f":{nick}={'-' if event.away else '+'}{nick}@{w.server}")]
    if pending is not None and pending.verb == "who":
        return [
            _who_line(w, "*", nick, event.away),
            w.num("315", pending.target, ":End of /WHO list"),
        ]
    lines = [w.num("311", nick, nick, w.server, "*", f":{nick}")]
    if event.rooms:
        lines.append(w.num("319", nick, ":" + " ".join(event.rooms)))
    lines.append(w.num("312", nick, w.server, ":anychat"))
    if event.away:
        lines.append(w.num("301", nick, ":" + event.away))
    lines.append(w.num("317", nick, "0", str(int(event.since)), ":seconds idle, signon time"))
    lines.append(w.num("318", nick, ":End of /WHOIS list"))
    return lines


def _ison(w: Wire, ctx: Context) -> list[str]:
    """One 303 line for all the nicks asked, once the last answer is in."""
    if ctx.ison is None:
        return []
    return [w.num("303", ":" + " ".join(ctx.ison))]


def _room_list(w: Wire, event: m.RoomList, pending: Pending | None) -> list[str]:
    wanted = pending.rooms if pending is not None else frozenset()
    lines = [w.num("321", "Channel", ":Users  Name")]
    for info in event.rooms:
        if not wanted or m.casefold(info.name) in wanted:
            lines.append(w.num("322", info.name, str(info.members), ":" + info.topic))
    lines.append(w.num("323", ":End of /LIST"))
    return lines


def _topic(w: Wire, event: m.RoomTopic, pending: Pending | None) -> list[str]:
    if pending is not None and pending.verb in ("topic?", "join"):
        if not event.text:
            return [w.num("331", event.room, ":No topic is set")]
        return [
            w.num("332", event.room, ":" + event.text),
            w.num("333", event.room, event.setter or w.server, str(int(event.time))),
        ]
    return [f":{w.mask_of(event.setter)} TOPIC {event.room} :{clean(event.text)}"]


def _logged_in(w: Wire, event: m.LoggedIn, pending: Pending | None) -> list[str]:
    """900 RPL_LOGGEDIN, and 903 when it answers SASL (a PASS login is answered by 001)."""
    lines = [
        w.num(
            "900",
            w.mask_of(w.state.nick or "*"),
            event.nick,
            f":You are now logged in as {event.nick}",
        )
    ]
    if pending is not None and pending.verb == "sasl":
        lines.append(w.num("903", ":SASL authentication successful"))
    return lines


def _account_error(w: Wire, pending: Pending, event: m.Error) -> list[str] | None:
    """Refusals about accounts, as servers with services answer them; ``None``: not one."""
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


def _error(w: Wire, event: m.Error, ctx: Context) -> list[str]:
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
            return _ison(w, ctx)
        if pending.verb == "whois" and event.code is m.ErrorCode.NO_SUCH_NICK:
            return [
                w.num("401", pending.target, ":No such nick/channel"),
                w.num("318", pending.target, ":End of /WHOIS list"),
            ]
    plain = _PLAIN_NUMERICS.get(event.code)
    if plain is not None:
        return [w.num(plain[0], ":" + plain[1])]
    return [w.num("NOTICE", ":" + event.text)]


def render(w: Wire, event: m.Event, ctx: Context) -> list[str]:
    """The lines for ``event``; ``ctx`` is what the state learnt from it (see module docs)."""
    pending = ctx.pending
    match event:
        case m.Message():
            return _say_lines(w, event.time, event.sender, event.target, event.text, event.kind)
        case m.Ack():
            if pending is None or "echo-message" not in w.state.caps:
                return []
            nick = w.state.nick
            return _say_lines(w, event.time, nick, event.target, pending.text, pending.kind)
        case m.Joined(room=room, nick=nick):
            return [f":{w.mask_of(nick)} JOIN {room}"]
        case m.Parted(room=room, nick=nick, reason=reason):
            line = f":{w.mask_of(nick)} PART {room}"
            return [f"{line} :{clean(reason)}" if reason else line]
        case m.Quitted(nick=nick, reason=reason):
            return [f":{w.mask_of(nick)} QUIT :{clean(reason)}"]
        case m.NickChanged(old=old, new=new):
            return [f":{w.mask_of(old)} NICK :{new}"]
        case m.Members():
            return _members(w, event, pending)
        case m.Welcome():
            return _welcome(w, event)
        case m.LoggedIn():
            return _logged_in(w, event, pending)
        case m.Error():
            return _error(w, event, ctx)
        case m.RoomTopic():
            return _topic(w, event, pending)
        case m.RoomList():
            return _room_list(w, event, pending)
        case m.UserInfo():
            return _user_info(w, event, ctx)
        case m.AwayStatus(text=text):
            if text:
                return [w.num("306", ":You have been marked as being away")]
            return [w.num("305", ":You are no longer marked as being away")]
        case m.Pong(token=token):
            return [f":{w.server} PONG {w.server} :{clean(token)}"]
        case m.Bye(reason=reason):
            return [f"ERROR :Closing Link: {w.me} ({clean(reason)})"]
    return []  # HistoryPage: IRC has no way to show one yet
