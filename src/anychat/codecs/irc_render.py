"""Model events as IRC lines (RFC 2812 replies and numerics), for :class:`~.irc.IrcCodec`.

Kept apart from the parser and registration logic so each stays small. Every function returns
lines without CRLF; the codec joins and encodes them once.
"""

from __future__ import annotations

from typing import TYPE_CHECKING, Final

from .. import model as m
from .irc_parse import MAX_TARGETS

if TYPE_CHECKING:
    from .irc import IrcCodec, _Pending

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
    c: IrcCodec, when: float, sender: str, target: str, text: str, kind: m.Kind
) -> list[str]:
    verb = "NOTICE" if kind is m.Kind.NOTICE else "PRIVMSG"
    head = f":{c.mask_of(sender)} {verb} {target} :"
    return _fit(c.time_tag(when), head, c.clean(text), kind is m.Kind.ACTION)


def _welcome(c: IrcCodec, event: m.Welcome) -> list[str]:
    c.take(event.ref)
    c.registered = True
    c.nick = event.nick
    c.password = None  # checked (or not needed): no reason to keep it
    isupport = (
        f"AWAYLEN={m.MAX_TOPIC_LENGTH} CASEMAPPING=ascii CHANMODES=b,,,nt "
        f"CHANNELLEN={m.MAX_ROOM_LENGTH} CHANTYPES=# MAXTARGETS={MAX_TARGETS} NETWORK={c.network} "
        f"NICKLEN={m.MAX_NICK_LENGTH} PREFIX=(ov)@+ TOPICLEN={m.MAX_TOPIC_LENGTH}"
    )
    return [
        c.num("001", f":Welcome to the {c.network} IRC Network {c.mask}"),
        c.num("002", f":Your host is {c.server}, running version anychat-{c.version}"),
        c.num("003", ":This server was created when it started"),
        c.num("004", c.server, f"anychat-{c.version}", "i", "bnt"),
        c.num("005", *isupport.split(), ":are supported by this server"),
        c.num("422", ":MOTD File is missing"),
    ]


def _names(c: IrcCodec, room: str, nicks: tuple[str, ...]) -> list[str]:
    head = c.num("353", "=", room, ":")
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
    lines.append(c.num("366", room, ":End of /NAMES list"))
    return lines


def _who_line(c: IrcCodec, where: str, nick: str, away: str = "") -> str:
    flag = "G" if away else "H"
    return c.num("352", where, nick, c.server, c.server, nick, flag, f":0 {nick}")


def _members(c: IrcCodec, event: m.Members) -> list[str]:
    pending = c.take(event.ref)
    if pending is not None and pending.verb == "who":
        lines = [_who_line(c, event.room, nick) for nick in event.nicks]
        return [*lines, c.num("315", pending.target, ":End of /WHO list")]
    return _names(c, event.room, event.nicks)


def _user_info(c: IrcCodec, event: m.UserInfo) -> list[str]:
    pending = c.take(event.ref)
    nick = event.nick
    if pending is not None and pending.verb == "ison":
        return _ison(c, pending, nick)
    if pending is not None and pending.verb == "userhost":
        return [c.num("302", f":{nick}={'-' if event.away else '+'}{nick}@{c.server}")]
    if pending is not None and pending.verb == "who":
        return [
            _who_line(c, "*", nick, event.away),
            c.num("315", pending.target, ":End of /WHO list"),
        ]
    lines = [c.num("311", nick, nick, c.server, "*", f":{nick}")]
    if event.rooms:
        lines.append(c.num("319", nick, ":" + " ".join(event.rooms)))
    lines.append(c.num("312", nick, c.server, ":anychat"))
    if event.away:
        lines.append(c.num("301", nick, ":" + event.away))
    idle = str(int(event.idle))
    lines.append(c.num("317", nick, idle, str(int(event.since)), ":seconds idle, signon time"))
    lines.append(c.num("318", nick, ":End of /WHOIS list"))
    return lines


def _ison(c: IrcCodec, pending: _Pending, nick: str | None) -> list[str]:
    """Replies arrive in the order asked (one client, one broker), so the last one answers."""
    online = c.ison.get(pending.batch)
    if online is None:
        return []
    if nick is not None:
        online.append(nick)
    if not pending.last:
        return []
    del c.ison[pending.batch]
    return [c.num("303", ":" + " ".join(online))]


def _room_list(c: IrcCodec, event: m.RoomList) -> list[str]:
    pending = c.take(event.ref)
    wanted = pending.rooms if pending is not None else frozenset()
    lines = [c.num("321", "Channel", ":Users  Name")]
    for info in event.rooms:
        if not wanted or m.casefold(info.name) in wanted:
            lines.append(c.num("322", info.name, str(info.members), ":" + info.topic))
    lines.append(c.num("323", ":End of /LIST"))
    return lines


def _topic(c: IrcCodec, event: m.RoomTopic) -> list[str]:
    pending = c.take(event.ref, final=False)
    if pending is not None and pending.verb in ("topic?", "join"):
        if pending.verb == "topic?":
            c.take(event.ref)
        if not event.text:
            return [c.num("331", event.room, ":No topic is set")]
        return [
            c.num("332", event.room, ":" + event.text),
            c.num("333", event.room, event.setter or c.server, str(int(event.time))),
        ]
    c.take(event.ref)
    return [f":{c.mask_of(event.setter)} TOPIC {event.room} :{c.clean(event.text)}"]


def _logged_in(c: IrcCodec, event: m.LoggedIn) -> list[str]:
    """900 RPL_LOGGEDIN, and 903 when it answers SASL (a PASS login is answered by 001)."""
    pending = c.take(event.ref, final=False)
    c.account = event.nick
    lines = [
        c.num(
            "900",
            c.mask_of(c.nick or "*"),
            event.nick,
            f":You are now logged in as {event.nick}",
        )
    ]
    if pending is not None and pending.verb == "sasl":
        lines.append(c.num("903", ":SASL authentication successful"))
        if not c.registered or m.casefold(c.nick) == m.casefold(event.nick):
            c.take(event.ref)  # else the nick change to the account's answers it too
    return lines


def _account_error(c: IrcCodec, pending: _Pending, event: m.Error) -> list[str] | None:
    """Refusals about accounts, as servers with services answer them; ``None``: not one."""
    if pending.verb == "sasl":
        # The same for every cause (unknown account, wrong password, store down).
        return [c.num("904", ":SASL authentication failed")]
    code = event.code
    if pending.verb == "hello" and code is m.ErrorCode.LOGIN_REQUIRED:
        c.hangup = m.Bye(code=code, reason="Access denied: this server admits only accounts")
        return [
            c.num(
                "NOTICE",
                ":This server admits only registered users: log in with SASL PLAIN, or send "
                "your account password with PASS before NICK and USER",
            ),
            c.num("464", ":Password required"),
        ]
    if pending.verb == "hello" and code in (
        m.ErrorCode.LOGIN_FAILED,
        m.ErrorCode.STORE_UNAVAILABLE,
    ):
        # RFC 2812 §4.1.1: a wrong connection password ends the connection.
        c.hangup = m.Bye(code=code, reason="Access denied: bad password")
        if code is m.ErrorCode.STORE_UNAVAILABLE:
            return [c.num("NOTICE", ":" + event.text)]
        return [c.num("464", ":Password incorrect")]
    if pending.verb in ("hello", "nick") and code is m.ErrorCode.NICK_REGISTERED:
        if c.account:
            hint = f"You are logged in as {c.account}: your nick is your account's"
        else:
            hint = (
                f"{pending.target} is a registered nick: log in to it with SASL PLAIN (or PASS "
                "before NICK and USER), or choose another nick"
            )
        return [
            c.num("433", pending.target, ":Nickname is already in use"),
            c.num("NOTICE", ":" + hint),
        ]
    return None


def _error(c: IrcCodec, event: m.Error) -> list[str]:
    pending = c.take(event.ref)
    if pending is not None:
        if pending.verb == "say" and pending.kind is m.Kind.NOTICE:
            return []  # RFC 2812 §3.3.2: never answer a NOTICE automatically
        if pending.verb == "hello":
            c.hello_sent = False  # back to waiting for a usable NICK
        account_lines = _account_error(c, pending, event)
        if account_lines is not None:
            return account_lines
        numeric = _ERROR_NUMERICS.get((pending.verb, event.code))
        if numeric is not None:
            code, text = numeric
            return [c.num(code, pending.target, ":" + text)]
        if pending.verb == "userhost":
            return [c.num("302", ":")]
        if pending.verb == "ison":
            return _ison(c, pending, None)
        if pending.verb == "whois" and event.code is m.ErrorCode.NO_SUCH_NICK:
            return [
                c.num("401", pending.target, ":No such nick/channel"),
                c.num("318", pending.target, ":End of /WHOIS list"),
            ]
    plain = _PLAIN_NUMERICS.get(event.code)
    if plain is not None:
        return [c.num(plain[0], ":" + plain[1])]
    return [c.num("NOTICE", ":" + event.text)]


def render(c: IrcCodec, event: m.Event) -> list[str]:
    match event:
        case m.Message():
            return _say_lines(c, event.time, event.sender, event.target, event.text, event.kind)
        case m.Ack():
            pending = c.take(event.ref)
            if pending is None or "echo-message" not in c.caps:
                return []
            return _say_lines(c, event.time, c.nick, event.target, pending.text, pending.kind)
        case m.Joined(room=room, nick=nick):
            if event.ref is not None and c.take(event.ref, final=False) is not None:
                c.joined(room)
            return [f":{c.mask_of(nick)} JOIN {room}"]
        case m.Parted(room=room, nick=nick, reason=reason):
            if c.take(event.ref) is not None:
                c.parted(room)
            line = f":{c.mask_of(nick)} PART {room}"
            return [f"{line} :{c.clean(reason)}" if reason else line]
        case m.Quitted(nick=nick, reason=reason):
            return [f":{c.mask_of(nick)} QUIT :{c.clean(reason)}"]
        case m.NickChanged(old=old, new=new):
            if c.take(event.ref) is not None:
                c.nick = new
            return [f":{c.mask_of(old)} NICK :{new}"]
        case m.Members():
            return _members(c, event)
        case m.Welcome():
            return _welcome(c, event)
        case m.LoggedIn():
            return _logged_in(c, event)
        case m.Error():
            return _error(c, event)
        case m.RoomTopic():
            return _topic(c, event)
        case m.RoomList():
            return _room_list(c, event)
        case m.UserInfo():
            return _user_info(c, event)
        case m.AwayStatus(text=text):
            c.take(event.ref)
            if text:
                return [c.num("306", ":You have been marked as being away")]
            return [c.num("305", ":You are no longer marked as being away")]
        case m.Pong(token=token):
            c.take(event.ref)
            return [f":{c.server} PONG {c.server} :{c.clean(token)}"]
        case m.Bye(reason=reason):
            return [f"ERROR :Closing Link: {c.me} ({c.clean(reason)})"]
    return []  # pragma: no cover - every event type is handled above
