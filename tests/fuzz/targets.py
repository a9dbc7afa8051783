"""Fuzz targets for every codec: hostile bytes in, and what they decode to rendered back out.

Pure functions of one ``bytes`` input, so the coverage-guided runner (:mod:`tests.fuzz.run`,
on atheris), the hypothesis properties and a plain loop can all drive them. Each target:

- feeds the input to a fresh codec in one piece and, to another, in chunks whose sizes come from
  the input's first bytes: both must give the same commands (a TCP segment boundary may fall
  anywhere, and must never change what a client said);
- lets no exception escape ``feed()`` (the JSON client codec may raise ``ValueError``, its
  documented answer to a broken server, and nothing else);
- turns every command into the events a server would answer it with, keeping only what the
  broker would let through (valid names, sendable text), and renders each event with every
  server codec, including the one that parsed the command (the IRC codec's replies depend on
  what it asked), so text that one codec let in can be shown by all of them.
"""

from __future__ import annotations

import random
import zlib
from collections.abc import Callable, Iterator

from anychat import model as m
from anychat.codecs import Inbound, LocalReply
from anychat.codecs.irc import IrcCodec
from anychat.codecs.jsonl import JsonClientCodec, JsonServerCodec
from anychat.codecs.text import TextCodec

__all__ = ["TARGETS", "chunks", "events_for", "fuzz_irc", "fuzz_json_client", "fuzz_jsonl"]

#: Chunk sizes a split is made of: single bytes, odd sizes, and whole reads.
_SIZES = (1, 2, 3, 7, 64, 511, 4096)
#: Small lines so the fuzzer reaches the over-long-line paths with short inputs.
_SMALL_LINE = 64


_CODES = tuple(m.ErrorCode)


def chunks(payload: bytes, seed: bytes) -> Iterator[bytes]:
    """``payload`` cut at points chosen by ``seed`` (deterministic, so failures replay)."""
    rng = random.Random(seed)
    i = 0
    while i < len(payload):
        size = rng.choice(_SIZES)
        yield payload[i : i + size]
        i += size


def _split(data: bytes) -> tuple[bytes, bytes]:
    return data[:2], data[2:]


def _sendable(text: str) -> bool:
    try:
        text.encode()
    except UnicodeEncodeError:
        return False
    return not any(c in text for c in "\r\n\x00")


def events_for(cmd: Inbound, me: str = "ada") -> list[m.Event]:
    """The events a server could answer ``cmd`` with (or fan out because of it)."""
    if isinstance(cmd, LocalReply):
        return []
    ref = cmd.ref
    # One refusal per command, its code rotating with the ref (the IRC codec maps codes to
    # numerics depending on what was asked, so every pairing gets its turn).
    code = _CODES[zlib.crc32(repr(ref).encode()) % len(_CODES)]
    out: list[m.Event] = [m.Error(code=code, text="refused", ref=ref)]
    match cmd:
        case m.Hello(nick=nick) | m.Login(nick=nick):
            name = nick if nick is not None and m.valid_nick(nick) else me
            out += [
                m.Welcome(nick=name, server="anychat", version="1", ref=ref),
                m.LoggedIn(nick=name, token="t", expires=1.0, ref=ref),
            ]
        case m.Join(room=room) if m.valid_room(room):
            out += [
                m.Joined(room=room, nick=me, ref=ref),
                m.Members(room=room, nicks=(me, "bob"), ref=ref),
                m.RoomTopic(room=room, text="topic", setter="bob", time=1.0, ref=ref),
            ]
        case m.Part(room=room, reason=reason) if room is not None and m.valid_room(room):
            if _sendable(reason):
                out.append(m.Parted(room=room, nick=me, reason=reason, ref=ref))
        case m.Say(target=target, text=text, kind=kind) if _sendable(text):
            to = target or "#general"
            if m.valid_room(to) or m.valid_nick(to):
                out += [
                    m.Ack(id=7, time=1.5, target=to, ref=ref),
                    m.Message(id=7, time=1.5, sender=me, target=to, text=text, kind=kind),
                    m.Message(id=7, time=1.5, sender="bob", target=to, text=text, history=True),
                ]
        case m.Nick(nick=nick) if m.valid_nick(nick):
            out.append(m.NickChanged(old=me, new=nick, ref=ref))
        case m.Who(room=room):
            out.append(m.Members(room=room or "#general", nicks=(me,), ref=ref))
        case m.Whois(nick=nick) if m.valid_nick(nick):
            out.append(m.UserInfo(nick=nick, rooms=("#general",), away="", since=1.0, ref=ref))
        case m.ListRooms():
            out.append(m.RoomList(rooms=(m.RoomInfo(name="#general", members=2),), ref=ref))
        case m.Topic(room=str(room), text=text) if m.valid_room(room):
            if text is None or _sendable(text):
                out.append(m.RoomTopic(room=room, text=text or "", setter=me, time=2.0, ref=ref))
        case m.Away(text=text) if _sendable(text):
            out.append(m.AwayStatus(text=text, ref=ref))
        case m.History(target=target):
            msg = m.Message(id=3, time=1.0, sender="bob", target="#general", text="hi")
            out.append(m.HistoryPage(target=target or "#general", messages=(msg,), ref=ref))
        case m.Ping(token=token) if _sendable(token):
            out.append(m.Pong(token=token, ref=ref))
        case m.Quit(reason=reason) if _sendable(reason):
            out += [m.Quitted(nick=me, reason=reason), m.Bye(code=None, reason=reason)]
        case _:
            pass
    return out


def _server_codec(make: Callable[[], TextCodec | JsonServerCodec | IrcCodec], data: bytes) -> None:
    seed, payload = _split(data)
    whole = make().feed(payload)
    codec = make()
    split: list[Inbound] = []
    for part in chunks(payload, seed):
        split.extend(codec.feed(part))
    assert whole == split, (whole, split)
    # The codec that parsed the commands renders the answers (its state decides how), and so
    # does one other server codec, chosen by the input.
    others = (TextCodec, JsonServerCodec, IrcCodec)
    other = others[seed[0] % len(others)]() if seed else TextCodec()
    for cmd in whole:
        for event in events_for(cmd):
            assert isinstance(codec.encode(event), bytes)
            assert isinstance(other.encode(event), bytes)


def fuzz_text(data: bytes) -> None:
    _server_codec(lambda: TextCodec(max_line_bytes=_SMALL_LINE), data)


def fuzz_jsonl(data: bytes) -> None:
    _server_codec(lambda: JsonServerCodec(max_line_bytes=_SMALL_LINE * 4), data)


def _irc() -> IrcCodec:
    codec = IrcCodec(max_line_bytes=_SMALL_LINE * 8)
    return codec


def fuzz_irc(data: bytes) -> None:
    _server_codec(_irc, data)


_REGISTRATION = b"CAP LS 302\r\nCAP REQ :server-time echo-message\r\nNICK ada\r\nUSER a 0 * :A\r\n"


def fuzz_irc_registered(data: bytes) -> None:
    """The IRC codec past registration (CAP, NICK, USER, then the welcome), where every chat
    command is reachable."""

    def make() -> IrcCodec:
        codec = _irc()
        codec.feed(_REGISTRATION + b"CAP END\r\n")
        codec.state.registered = True
        return codec

    _server_codec(make, data)


def _client_feed(codec: JsonClientCodec, parts: Iterator[bytes]) -> list[m.Event] | ValueError:
    events: list[m.Event] = []
    try:
        for part in parts:
            events.extend(codec.feed(part))
    except ValueError as exc:
        return exc
    return events


def fuzz_json_client(data: bytes) -> None:
    seed, payload = _split(data)
    whole = _client_feed(JsonClientCodec(max_line_bytes=_SMALL_LINE * 4), iter((payload,)))
    split = _client_feed(JsonClientCodec(max_line_bytes=_SMALL_LINE * 4), chunks(payload, seed))
    if isinstance(whole, ValueError):
        # The split feed meets the same bad line (it may first return the good ones before it).
        assert isinstance(split, ValueError), split
    else:
        assert split == whole, (whole, split)
    encoder = JsonClientCodec()
    # Commands the client sends are built by its own code, never from the network; rendering a
    # fuzzed event's fields as commands still must not raise.
    for event in whole if isinstance(whole, list) else ():
        text = getattr(event, "text", "")
        if isinstance(text, str) and _sendable(text):
            assert encoder.encode(m.Say(target="#general", text=text, ref=1)).endswith(b"\n")


TARGETS: dict[str, Callable[[bytes], None]] = {
    "text": fuzz_text,
    "jsonl": fuzz_jsonl,
    "irc": fuzz_irc,
    "irc-registered": fuzz_irc_registered,
    "json-client": fuzz_json_client,
}
