"""JSON lines: one JSON object per line, ``"type"`` naming the command or event.

The protocol of the Python client and the CLI; docs/protocol.md documents every field.
:class:`JsonServerCodec` reads commands and writes events; :class:`JsonClientCodec` is its mirror
image, used by :mod:`anychat.client` and by scripts that drive a plain socket.
"""

from __future__ import annotations

import json
from collections.abc import Callable, Mapping
from json.encoder import encode_basestring as _quote  # the same escaping as _dumps (C version)
from typing import Any, ClassVar, Final

from .. import model as m
from . import DEFAULT_MAX_LINE_BYTES, Inbound, presence, roomops
from ._fields import BadField as _BadField
from ._fields import int_field as _int
from ._fields import opt_id_field as _opt_id
from ._fields import opt_str_field as _opt_str
from ._fields import ref_field as _ref
from ._fields import str_field as _str
from ._lines import NOT_UTF8, LineBuffer

__all__ = [
    "JsonClientCodec",
    "JsonServerCodec",
    "command_from_json",
    "command_from_line",
    "command_to_json",
    "event_from_json",
    "event_to_json",
]

_dumps: Final = json.JSONEncoder(ensure_ascii=False, separators=(",", ":")).encode
_loads: Final = json.loads
# The C scanner behind json.loads, without its per-call detours (encoding detection, the
# whitespace regex): one call per line on the hot path. Lines it cannot take whole go the long way.
_scan: Final[Callable[[str, int], tuple[Any, int]]] = json.JSONDecoder().scan_once  # type: ignore[attr-defined]


def _kind(obj: Mapping[str, Any]) -> m.Kind:
    try:
        return m.Kind(obj.get("kind", "plain"))
    except ValueError:
        raise _BadField("'kind' must be one of plain, action, notice") from None


# ------------------------------------------------------------------------------ commands

_COMMAND_PARSERS: Final[dict[str, Callable[[Mapping[str, Any]], m.Command]]] = {
    "hello": lambda o: m.Hello(
        nick=_opt_str(o, "nick"),
        autojoin=bool(o.get("autojoin", True)),
        ref=_ref(o),
        password=_opt_str(o, "password"),
        token=_opt_str(o, "token"),
    ),
    "register": lambda o: m.Register(password=_str(o, "password"), ref=_ref(o)),
    "login": lambda o: m.Login(
        nick=_opt_str(o, "nick"),
        password=_opt_str(o, "password"),
        token=_opt_str(o, "token"),
        ref=_ref(o),
    ),
    "history": lambda o: m.History(
        target=_opt_str(o, "to"),
        before=_opt_id(o, "before"),
        after=_opt_id(o, "after"),
        limit=50 if o.get("limit") is None else _int(o, "limit"),
        ref=_ref(o),
    ),
    "conversations": lambda o: m.Conversations(
        start=_float(o, "start"),
        end=_float(o, "end"),
        limit=50 if o.get("limit") is None else _int(o, "limit"),
        ref=_ref(o),
    ),
    "join": lambda o: m.Join(room=_str(o, "room"), key=_str(o, "key", ""), ref=_ref(o)),
    "part": lambda o: m.Part(room=_opt_str(o, "room"), reason=_str(o, "reason", ""), ref=_ref(o)),
    "say": lambda o: m.Say(
        target=_opt_str(o, "to"),
        text=_str(o, "text"),
        kind=_kind(o),
        ref=_ref(o),
        key=_opt_str(o, "key"),
        resend_by_ref=True,
    ),
    "nick": lambda o: m.Nick(nick=_str(o, "nick"), ref=_ref(o)),
    "who": lambda o: m.Who(room=_opt_str(o, "room"), ref=_ref(o)),
    "rooms": lambda o: m.ListRooms(ref=_ref(o)),
    "ping": lambda o: m.Ping(token=_str(o, "token", ""), ref=_ref(o)),
    "quit": lambda o: m.Quit(reason=_str(o, "reason", ""), ref=_ref(o)),
    "topic": lambda o: m.Topic(room=_opt_str(o, "room"), text=_opt_str(o, "text"), ref=_ref(o)),
    "away": lambda o: m.Away(text=_str(o, "text", ""), ref=_ref(o)),
    "whois": lambda o: m.Whois(nick=_str(o, "nick"), ref=_ref(o)),
    # Room operators (mode, kick, invite) and server counts: codecs/roomops.py.
    **roomops.JSON_COMMANDS,
}


def command_from_json(obj: object) -> m.Command:
    """Validate one decoded JSON value as a command; problems become :class:`~model.Invalid`."""
    if not isinstance(obj, dict):
        return m.Invalid(code=m.ErrorCode.BAD_COMMAND, text="each line must be a JSON object")
    kind = obj.get("type")
    parser = _COMMAND_PARSERS.get(kind) if isinstance(kind, str) else None
    ref = obj.get("ref") if isinstance(obj.get("ref"), str | int) else None
    if parser is None:
        return m.Invalid(
            code=m.ErrorCode.UNKNOWN_COMMAND, text=f"unknown command type {kind!r}", ref=ref
        )
    try:
        return parser(obj)
    except _BadField as exc:
        return m.Invalid(code=m.ErrorCode.BAD_COMMAND, text=f"{kind}: {exc}", ref=ref)


def command_to_json(cmd: m.Command) -> dict[str, Any]:
    match cmd:
        case m.Hello(nick=nick, autojoin=autojoin):
            out: dict[str, Any] = {"type": "hello", "nick": nick}
            if not autojoin:
                out["autojoin"] = False
            if cmd.password is not None:
                out["password"] = cmd.password
            if cmd.token is not None:
                out["token"] = cmd.token
        case m.Register(password=password):
            out = {"type": "register", "password": password}
        case m.Login(nick=nick, password=password, token=token):
            out = {"type": "login", "nick": nick}
            if password is not None:
                out["password"] = password
            if token is not None:
                out["token"] = token
        case m.History(target=target, before=before, after=after, limit=limit):
            out = {"type": "history", "to": target, "limit": limit}
            if before is not None:
                out["before"] = before
            if after is not None:
                out["after"] = after
        case m.Conversations(start=start, end=end, limit=limit):
            out = {"type": "conversations", "start": start, "end": end, "limit": limit}
        case m.Join(room=room):
            out = {"type": "join", "room": room}
            if cmd.key:
                out["key"] = cmd.key
        case m.Part(room=room, reason=reason):
            out = {"type": "part", "room": room, "reason": reason}
        case m.Say(target=target, text=text, kind=kind, key=key):
            out = {"type": "say", "to": target, "text": text, "kind": kind.value}
            if key is not None:
                out["key"] = key
        case m.Nick(nick=nick):
            out = {"type": "nick", "nick": nick}
        case m.Who(room=room):
            out = {"type": "who", "room": room}
        case m.ListRooms():
            out = {"type": "rooms"}
        case m.Ping(token=token):
            out = {"type": "ping", "token": token}
        case m.Quit(reason=reason):
            out = {"type": "quit", "reason": reason}
        case m.Topic(room=room, text=text):
            out = {"type": "topic", "room": room, "text": text}
        case m.Away(text=text):
            out = {"type": "away", "text": text}
        case m.Whois(nick=nick):
            out = {"type": "whois", "nick": nick}
        case m.Invalid():
            raise ValueError("Invalid is produced by codecs, never sent")
        case _:
            ops = roomops.command_to_json(cmd)
            if ops is None:  # pragma: no cover - every command type is handled
                raise AssertionError(cmd)
            out = ops
    if cmd.ref is not None:
        out["ref"] = cmd.ref
    return out


# -------------------------------------------------------------------------------- events


def _message_to_json(event: m.Message) -> dict[str, Any]:
    return {
        "type": "message",
        "id": event.id,
        "time": round(event.time, 6),
        "from": event.sender,
        "to": event.target,
        "text": event.text,
        "kind": event.kind.value,
        "history": event.history,
    }


def event_to_json(event: m.Event) -> dict[str, Any]:
    out: dict[str, Any]
    match event:
        case m.Message():
            return _message_to_json(event)
        case m.LoggedIn(nick=nick, token=token, expires=expires):
            out = {"type": "logged_in", "nick": nick, "token": token, "expires": expires}
        case m.HistoryPage(target=target, messages=messages):
            out = {
                "type": "history",
                "to": target,
                "messages": [_message_to_json(msg) for msg in messages],
            }
        case m.ConversationList(conversations=found):
            out = {
                "type": "conversations",
                "conversations": [
                    {"to": c.target, "time": round(c.time, 6), "id": c.id} for c in found
                ],
            }
        case m.Welcome():
            out = {
                "type": "welcome",
                "nick": event.nick,
                "server": event.server,
                "version": event.version,
                "protocol": event.protocol,
            }
        case m.Ack():
            out = {"type": "ack", "id": event.id, "time": round(event.time, 6), "to": event.target}
        case m.Joined(room=room, nick=nick):
            out = {"type": "joined", "room": room, "nick": nick}
        case m.Parted(room=room, nick=nick, reason=reason):
            out = {"type": "parted", "room": room, "nick": nick, "reason": reason}
        case m.Quitted(nick=nick, reason=reason):
            return {"type": "quit", "nick": nick, "reason": reason}
        case m.NickChanged(old=old, new=new):
            out = {"type": "nick", "old": old, "new": new}
        case m.Members(room=room, nicks=nicks):
            out = {"type": "members", "room": room, "nicks": list(nicks)}
            status = {d.nick: d.status for d in event.details if d.status}
            if status:
                out["status"] = status  # room operators ("o") and voiced members ("v")
        case m.RoomList(rooms=rooms):
            out = {
                "type": "rooms",
                "rooms": [{"name": r.name, "members": r.members, "topic": r.topic} for r in rooms],
            }
        case m.Pong(token=token):
            out = {"type": "pong", "token": token}
        case m.Error(code=code, text=text):
            out = {"type": "error", "code": code.value, "text": text}
            if event.subject:
                out["subject"] = event.subject
        case m.Bye(code=code, reason=reason):
            return {"type": "bye", "code": code.value if code else None, "reason": reason}
        case m.RoomTopic(room=room, text=text, setter=setter, time=when):
            out = {
                "type": "topic",
                "room": room,
                "text": text,
                "setter": setter,
                "time": round(when, 6),
            }
        case m.AwayStatus(text=text):
            out = {"type": "away", "text": text}
        case m.UserInfo(nick=nick, rooms=rooms, away=away, since=since, idle=idle):
            out = {
                "type": "user",
                "nick": nick,
                "rooms": list(rooms),
                "away": away,
                "since": round(since, 6),
                "idle": round(idle, 3),
            }
        case _:
            ops = roomops.event_to_json(event) or presence.event_to_json(event)
            if ops is None:  # pragma: no cover - every event type is handled
                raise AssertionError(event)
            out = ops
    if event.ref is not None:
        out["ref"] = event.ref
    return out


def _error_code(obj: Mapping[str, Any]) -> m.ErrorCode | None:
    value = obj.get("code")
    if value is None:
        return None
    try:
        return m.ErrorCode(value)
    except ValueError:
        # A newer server may add codes; map them to the generic one instead of failing.
        return m.ErrorCode.BAD_COMMAND


def _float(obj: Mapping[str, Any], key: str) -> float:
    value = obj.get(key)
    if not isinstance(value, int | float) or isinstance(value, bool):
        raise _BadField(f"{key!r} must be a number")
    return float(value)


def _message(o: Mapping[str, Any]) -> m.Message:
    return m.Message(
        id=_int(o, "id"),
        time=_float(o, "time"),
        sender=_str(o, "from"),
        target=_str(o, "to"),
        text=_str(o, "text"),
        kind=_kind(o),
        history=bool(o.get("history", False)),
    )


_EVENT_PARSERS: Final[dict[str, Callable[[Mapping[str, Any]], m.Event]]] = {
    "welcome": lambda o: m.Welcome(
        nick=_str(o, "nick"),
        server=_str(o, "server"),
        version=_str(o, "version"),
        protocol=_int(o, "protocol"),
        ref=_ref(o),
    ),
    "message": _message,
    "logged_in": lambda o: m.LoggedIn(
        nick=_str(o, "nick"), token=_str(o, "token"), expires=_float(o, "expires"), ref=_ref(o)
    ),
    "history": lambda o: m.HistoryPage(
        target=_str(o, "to"),
        messages=tuple(_message(x) for x in o.get("messages", ())),
        ref=_ref(o),
    ),
    "conversations": lambda o: m.ConversationList(
        conversations=tuple(
            m.Conversation(target=_str(c, "to"), time=_float(c, "time"), id=_int(c, "id"))
            for c in o.get("conversations", ())
        ),
        ref=_ref(o),
    ),
    "ack": lambda o: m.Ack(
        id=_int(o, "id"), time=_float(o, "time"), target=_str(o, "to"), ref=_ref(o)
    ),
    "joined": lambda o: m.Joined(room=_str(o, "room"), nick=_str(o, "nick"), ref=_ref(o)),
    "parted": lambda o: m.Parted(
        room=_str(o, "room"), nick=_str(o, "nick"), reason=_str(o, "reason", ""), ref=_ref(o)
    ),
    "quit": lambda o: m.Quitted(nick=_str(o, "nick"), reason=_str(o, "reason", "")),
    "nick": lambda o: m.NickChanged(old=_str(o, "old"), new=_str(o, "new"), ref=_ref(o)),
    "members": lambda o: m.Members(
        room=_str(o, "room"), nicks=tuple(str(n) for n in o.get("nicks", ())), ref=_ref(o)
    ),
    "rooms": lambda o: m.RoomList(
        rooms=tuple(
            m.RoomInfo(name=_str(r, "name"), members=_int(r, "members"), topic=_str(r, "topic", ""))
            for r in o.get("rooms", ())
        ),
        ref=_ref(o),
    ),
    "pong": lambda o: m.Pong(token=_str(o, "token", ""), ref=_ref(o)),
    "error": lambda o: m.Error(
        code=_error_code(o) or m.ErrorCode.BAD_COMMAND, text=_str(o, "text", ""), ref=_ref(o)
    ),
    "bye": lambda o: m.Bye(code=_error_code(o), reason=_str(o, "reason", "")),
    "topic": lambda o: m.RoomTopic(
        room=_str(o, "room"),
        text=_str(o, "text", ""),
        setter=_str(o, "setter", ""),
        time=float(o.get("time", 0.0)),
        ref=_ref(o),
    ),
    "away": lambda o: m.AwayStatus(text=_str(o, "text", ""), ref=_ref(o)),
    "user": lambda o: m.UserInfo(
        nick=_str(o, "nick"),
        rooms=tuple(str(r) for r in o.get("rooms", ())),
        away=_str(o, "away", ""),
        since=float(o.get("since", 0.0)),
        idle=float(o.get("idle", 0.0)),
        ref=_ref(o),
    ),
    **roomops.JSON_EVENTS,
    **presence.JSON_EVENTS,
}


def event_from_json(obj: object) -> m.Event:
    """Validate one decoded JSON value as an event; raises ``ValueError`` if it is not one."""
    if not isinstance(obj, dict):
        raise ValueError("event must be a JSON object")
    kind = obj.get("type")
    parser = _EVENT_PARSERS.get(kind) if isinstance(kind, str) else None
    if parser is None:
        raise ValueError(f"unknown event type {kind!r}")
    try:
        return parser(obj)
    except (_BadField, TypeError, AttributeError) as exc:
        raise ValueError(f"bad {kind} event: {exc}") from None


# -------------------------------------------------------------------------------- codecs


class JsonServerCodec:
    """Server side: reads commands, writes events."""

    __slots__ = ("_lines",)

    name: ClassVar[str] = "jsonl"
    encoding_key: ClassVar[str] = "jsonl"

    #: JSON clients close for themselves; the protocol never hangs up on them.
    hangup: ClassVar[m.Bye | None] = None

    def __init__(self, *, max_line_bytes: int = DEFAULT_MAX_LINE_BYTES) -> None:
        self._lines = LineBuffer(max_line_bytes)

    def greeting(self) -> list[Inbound]:
        """JSON clients speak first (their ``hello``)."""
        return []

    def keepalive(self, token: str) -> bytes | None:
        """Clients ping the server (``{"type":"ping"}``), not the other way round."""
        return None

    def rest(self) -> None:
        """Nothing to drop: an idle connection of this protocol holds no tables."""

    def feed(self, data: bytes) -> list[Inbound]:
        commands: list[Inbound] = []
        for raw in self._lines.feed(data):
            if raw is None:
                commands.append(self._lines.too_long())
                continue
            if raw.strip():
                commands.append(command_from_line(raw))
        return commands

    def encode(self, event: m.Event) -> bytes:
        # Relayed messages and their acks are nearly all a busy server writes: format them
        # directly (byte-identical to the general route, which tests check).
        cls = type(event)
        if cls is m.Message:
            return _encode_message(event)  # type: ignore[arg-type]
        if cls is m.Ack:
            return _encode_ack(event)  # type: ignore[arg-type]
        if presence.unshown(event):
            return b""
        return (_dumps(event_to_json(event)) + "\n").encode()


#: The complaint about a ``\\u`` escape that spells half of a UTF-16 surrogate pair.
LONE_SURROGATE: Final = "line contains a lone UTF-16 surrogate (\\ud800-\\udfff), which is not text"


def command_from_line(raw: bytes) -> m.Command:
    """One line (or WebSocket text message) of JSON as a command; every problem, from invalid
    UTF-8 to a lone surrogate or a recursion bomb, becomes an :class:`~model.Invalid` with the
    same code whichever transport carried it."""
    try:
        line = raw.decode()
        obj, end = _scan(line, 0)
        if end != len(line):
            raise ValueError("trailing data")
    except (ValueError, StopIteration, RecursionError):  # UnicodeDecodeError: ValueError
        pass
    else:
        return _checked_command(obj, line)
    try:
        obj = _loads(raw)
    except UnicodeDecodeError:
        return NOT_UTF8
    except RecursionError:
        return m.Invalid(code=m.ErrorCode.BAD_COMMAND, text="line is nested too deeply")
    except ValueError as exc:
        return m.Invalid(code=m.ErrorCode.BAD_COMMAND, text=f"line is not valid JSON: {exc}")
    return _checked_command(obj, raw.decode(errors="replace"))


def _checked_command(obj: object, line: str) -> m.Command:
    """:func:`_command`, unless a ``\\u`` escape smuggled in a lone surrogate.

    JSON may spell UTF-16 halves one at a time (``"\\ud800"``), which decodes to a ``str`` that
    cannot be encoded as UTF-8 again: let one through and every codec, the store and the log
    that meet it later fail. So the line is refused here, at the boundary, with a clear error.
    Only lines with an escape pay for the check.
    """
    if "\\u" in line and not _encodable(obj):
        return m.Invalid(code=m.ErrorCode.INVALID_UTF8, text=LONE_SURROGATE)
    return _command(obj)


def _encodable(obj: object) -> bool:
    """True if every string in ``obj`` (keys included) can be encoded as UTF-8."""
    stack = [obj]
    while stack:
        item = stack.pop()
        if isinstance(item, str):
            if not item.isascii():
                try:
                    item.encode()
                except UnicodeEncodeError:
                    return False
        elif isinstance(item, dict):
            stack.extend(item.keys())
            stack.extend(item.values())
        elif isinstance(item, list):
            stack.extend(item)
    return True


def _command(obj: object) -> m.Command:
    """The common line first: a plain ``say`` with well-typed fields becomes a Say directly;
    anything else (or anything odd) takes the general, validating route."""
    if type(obj) is dict and obj.get("type") == "say" and "kind" not in obj:
        text = obj.get("text")
        to = obj.get("to")
        ref = obj.get("ref")
        key = obj.get("key")
        if (
            type(text) is str
            and (to is None or type(to) is str)
            and (ref is None or type(ref) is int or type(ref) is str)
            and (key is None or type(key) is str)
        ):
            return m.Say(target=to, text=text, ref=ref, key=key, resend_by_ref=True)
    return command_from_json(obj)


def _encode_message(msg: m.Message) -> bytes:
    return (
        f'{{"type":"message","id":{int(msg.id)!r},"time":{round(msg.time, 6)!r},'
        f'"from":{_quote(msg.sender)},"to":{_quote(msg.target)},"text":{_quote(msg.text)},'
        f'"kind":{_quote(msg.kind.value)},"history":{"true" if msg.history else "false"}}}\n'
    ).encode()


def _encode_ack(ack: m.Ack) -> bytes:
    ref = ack.ref
    if ref is None:
        tail = "}\n"
    elif type(ref) is int:
        tail = f',"ref":{ref!r}}}\n'
    elif type(ref) is str:
        tail = f',"ref":{_quote(ref)}}}\n'
    else:
        return (_dumps(event_to_json(ack)) + "\n").encode()
    return (
        f'{{"type":"ack","id":{int(ack.id)!r},"time":{round(ack.time, 6)!r},'
        f'"to":{_quote(ack.target)}{tail}'
    ).encode()


class JsonClientCodec:
    """Client side: writes commands, reads events. Malformed server output raises ValueError.

    Lines of prose before the server's first JSON line are skipped: a server that took the
    client's silence for a person on nc (its hello came after the sniffing moment) greets it in
    plain text first, then starts again in JSON once the hello arrives.
    """

    name: ClassVar[str] = "jsonl"

    def __init__(self, *, max_line_bytes: int = 1 << 20) -> None:
        self._lines = LineBuffer(max_line_bytes)
        self._heard_json = False

    def feed(self, data: bytes) -> list[m.Event]:
        events: list[m.Event] = []
        for raw in self._lines.feed(data):
            if raw is None:
                raise ValueError("server sent an over-long line")
            if not self._heard_json:
                if not raw.lstrip().startswith(b"{"):
                    continue  # the text greeting of a server that spoke first
                self._heard_json = True
            if raw.strip():
                try:
                    obj = json.loads(raw)
                except RecursionError:  # not a ValueError: would escape the reader's handler
                    raise ValueError("server sent a line nested too deeply") from None
                events.append(event_from_json(obj))
        return events

    def encode(self, command: m.Command) -> bytes:
        return (_dumps(command_to_json(command)) + "\n").encode()
