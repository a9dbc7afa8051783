"""IRC commands that become model commands (or local answers) once a client is registered.

Each handler takes the connection's :class:`.wire.Wire` and the line's parameters and returns
what the codec's ``feed`` yields. Requests the broker answers are tracked in the state with what
the answer needs to be rendered (the nick a 401 names, the text an ``echo-message`` repeats).
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Final

from ... import model as m
from .. import Inbound, LocalReply
from .channel import invite, kick, mode
from .history import chathistory
from .parse import MAX_TARGETS
from .presence import monitor, setname
from .state import Pending
from .wire import Wire

__all__ = ["HANDLERS"]

#: RFC 2812 §2.3: a line, CRLF included, is at most 512 bytes (tags aside).
_LINE_BYTES: Final = 510


def join(w: Wire, params: tuple[str, ...]) -> list[Inbound]:
    if not params or not params[0]:
        return w.need_params("JOIN")
    if params[0] == "0":  # RFC 2812 §3.2.1: leave every channel
        return [
            m.Part(room=name, ref=w.state.track(Pending("part", name)))
            for name in w.state.rooms.values()
        ]
    keys = params[1].split(",") if len(params) > 1 else []
    return [
        m.Join(
            room=name,
            key=keys[i] if i < len(keys) else "",
            ref=w.state.track(Pending("join", name)),
        )
        for i, name in enumerate(params[0].split(","))
        if name
    ]


def part(w: Wire, params: tuple[str, ...]) -> list[Inbound]:
    if not params or not params[0]:
        return w.need_params("PART")
    reason = params[1] if len(params) > 1 else ""
    return [
        m.Part(room=name, reason=reason, ref=w.state.track(Pending("part", name)))
        for name in params[0].split(",")
        if name
    ]


def privmsg(w: Wire, params: tuple[str, ...], kind: m.Kind = m.Kind.PLAIN) -> list[Inbound]:
    verb = "NOTICE" if kind is m.Kind.NOTICE else "PRIVMSG"
    if not params or not params[0]:
        return [] if kind is m.Kind.NOTICE else [w.reply("411", f":No recipient given ({verb})")]
    if len(params) < 2 or not params[1]:
        return [] if kind is m.Kind.NOTICE else [w.reply("412", ":No text to send")]
    text = params[1]
    if kind is m.Kind.PLAIN and text.startswith("\x01ACTION ") and len(text) > 8:
        kind = m.Kind.ACTION
        text = text[8:].removesuffix("\x01")
    out: list[Inbound] = []
    targets = [t for t in params[0].split(",") if t]
    if len(targets) > MAX_TARGETS:
        # One line must not fan out without bound; 407 is what servers answer.
        return (
            []
            if kind is m.Kind.NOTICE
            else [w.reply("407", params[0], f":Too many recipients (at most {MAX_TARGETS})")]
        )
    tags = w.state.client_tags
    for target in targets:
        fitted = _fit_relayed(w, verb, target, text, kind)
        ref = w.state.track(Pending("say", target, fitted, kind, extra=tags))
        out.append(m.Say(target=target, text=fitted, kind=kind, ref=ref, tags=tags))
    return out


def _fit_relayed(w: Wire, verb: str, target: str, text: str, kind: m.Kind) -> str:
    """The text cut (at a UTF-8 character boundary, as ngircd and ergo do) so that the line
    every IRC recipient gets fits 512 bytes, and to the longest message anychat keeps: one
    IRC message is always one message and one line, never several."""
    text = text[: m.MAX_TEXT_LENGTH]
    head = len(f":{w.mask} {verb} {target} :".encode()) + (9 if kind is m.Kind.ACTION else 0)
    budget = max(_LINE_BYTES - head, 1)
    data = text.encode()
    if len(data) <= budget:
        return text
    cut = budget
    while cut > 0 and (data[cut] & 0xC0) == 0x80:
        cut -= 1  # never split a UTF-8 sequence
    return data[:cut].decode()


def notice(w: Wire, params: tuple[str, ...]) -> list[Inbound]:
    return privmsg(w, params, m.Kind.NOTICE)


def topic(w: Wire, params: tuple[str, ...]) -> list[Inbound]:
    if not params or not params[0]:
        return w.need_params("TOPIC")
    room = params[0]
    if len(params) == 1:
        return [m.Topic(room=room, ref=w.state.track(Pending("topic?", room)))]
    return [m.Topic(room=room, text=params[1], ref=w.state.track(Pending("topic", room)))]


def names(w: Wire, params: tuple[str, ...]) -> list[Inbound]:
    rooms = [r for r in params[0].split(",") if r] if params else []
    if not rooms:
        return [w.reply("366", "*", ":End of /NAMES list")]
    return [m.Who(room=r, ref=w.state.track(Pending("names", r))) for r in rooms]


def who(w: Wire, params: tuple[str, ...]) -> list[Inbound]:
    mask = params[0] if params else ""
    # WHOX: ``WHO <mask> %<fields>[,<token>]`` picks the fields of 354 replies.
    whox = params[1][1:] if len(params) > 1 and params[1].startswith("%") else ""
    if m.is_room(mask):
        return [m.Who(room=mask, ref=w.state.track(Pending("who", mask, extra=whox)))]
    if m.valid_nick(mask):
        return [m.Whois(nick=mask, ref=w.state.track(Pending("who", mask, extra=whox)))]
    return [w.reply("315", mask or "*", ":End of /WHO list")]


def whois(w: Wire, params: tuple[str, ...]) -> list[Inbound]:
    if not params or not params[-1]:
        return [w.reply("431", ":No nickname given")]
    return [
        m.Whois(nick=n, ref=w.state.track(Pending("whois", n))) for n in params[-1].split(",") if n
    ]


def list_rooms(w: Wire, params: tuple[str, ...]) -> list[Inbound]:
    wanted = frozenset(m.casefold(r) for r in params[0].split(",") if r) if params else None
    pending = Pending("list", rooms=wanted or frozenset())
    return [m.ListRooms(ref=w.state.track(pending))]


def away(w: Wire, params: tuple[str, ...]) -> list[Inbound]:
    text = params[0] if params else ""
    return [m.Away(text=text, ref=w.state.track(Pending("away")))]


def ison(w: Wire, params: tuple[str, ...]) -> list[Inbound]:
    nicks = [n for p in params for n in p.split() if m.valid_nick(n)]
    if not nicks:
        return w.need_params("ISON") if not params else [w.reply("303", ":")]
    batch = w.state.begin_ison()
    final = len(nicks) - 1
    return [
        m.Whois(nick=n, ref=w.state.track(Pending("ison", n, batch=batch, last=i == final)))
        for i, n in enumerate(nicks)
    ]


def userhost(w: Wire, params: tuple[str, ...]) -> list[Inbound]:
    if not params:
        return w.need_params("USERHOST")
    return [
        m.Whois(nick=n, ref=w.state.track(Pending("userhost", n)))
        for n in params[:5]  # RFC 2812 §4.8: up to five nicks
        if m.valid_nick(n)
    ]


def tagmsg(w: Wire, params: tuple[str, ...]) -> list[Inbound]:
    """IRCv3 ``TAGMSG`` (typing notifications...): its client-only tags go to the target like
    a message would, and nowhere if it has none (or the client did not negotiate
    ``message-tags``)."""
    if not params or not params[0]:
        return [w.reply("411", ":No recipient given (TAGMSG)")]
    tags = w.state.client_tags
    targets = [t for t in params[0].split(",") if t]
    if not tags:
        return []
    if len(targets) > MAX_TARGETS:
        return [w.reply("407", params[0], f":Too many recipients (at most {MAX_TARGETS})")]
    return [
        m.TagMsg(target=t, tags=tags, ref=w.state.track(Pending("say", t, extra=tags)))
        for t in targets
    ]


def lusers(w: Wire, params: tuple[str, ...]) -> list[Inbound]:
    return [m.Stats(ref=w.state.track(Pending("lusers")))]


def ping(w: Wire, params: tuple[str, ...]) -> list[Inbound]:
    if not params:
        return [w.reply("409", ":No origin specified")]
    return [LocalReply((w.line("PONG", w.server, params[0]) + "\r\n").encode())]


def pong(w: Wire, params: tuple[str, ...]) -> list[Inbound]:
    return []  # the server glue counts any input as a sign of life


def quit_(w: Wire, params: tuple[str, ...]) -> list[Inbound]:
    return [m.Quit(reason=params[0] if params else "")]


def motd(w: Wire, params: tuple[str, ...]) -> list[Inbound]:
    return [w.reply("422", ":MOTD File is missing")]


def whowas(w: Wire, params: tuple[str, ...]) -> list[Inbound]:
    # Clients ask after a 401 from WHOIS; no history of nicks is kept.
    if not params or not params[0]:
        return [w.reply("431", ":No nickname given")]
    return [
        w.reply("406", params[0], ":There was no such nickname"),
        w.reply("369", params[0], ":End of WHOWAS"),
    ]


def version(w: Wire, params: tuple[str, ...]) -> list[Inbound]:
    return [w.reply("351", f"anychat-{w.version}", w.server, ":")]


Handler = Callable[[Wire, tuple[str, ...]], list[Inbound]]

#: Commands of registered clients (registration, CAP and SASL live in the codec).
HANDLERS: Final[dict[str, Handler]] = {
    "JOIN": join,
    "PART": part,
    "PRIVMSG": privmsg,
    "NOTICE": notice,
    "TOPIC": topic,
    "NAMES": names,
    "WHO": who,
    "WHOIS": whois,
    "LIST": list_rooms,
    "AWAY": away,
    "MODE": mode,
    "KICK": kick,
    "INVITE": invite,
    "LUSERS": lusers,
    "CHATHISTORY": chathistory,
    "MONITOR": monitor,
    "SETNAME": setname,
    "USERHOST": userhost,
    "ISON": ison,
    "PING": ping,
    "PONG": pong,
    "TAGMSG": tagmsg,
    "QUIT": quit_,
    "MOTD": motd,
    "VERSION": version,
    "WHOWAS": whowas,
}
