"""The server side of the IRC client protocol (RFC 1459/2812 subset plus IRCv3 basics).

Sans-IO like every codec: :meth:`IrcCodec.feed` turns received bytes into model commands (or
:class:`LocalReply` bytes for what needs no broker: PING, CAP, MODE, error numerics for bad
input), and :meth:`IrcCodec.encode` renders model events as IRC lines. Registration (PASS, NICK,
USER, ``CAP LS 302``/``REQ``/``END``) runs here and ends in one ``Hello(autojoin=False)``: IRC
clients choose their own channels.

Accounts: SASL PLAIN (``AUTHENTICATE``) becomes a ``Login(hello=False)`` that the server checks
against the store like any login, and registration then uses the account's nick; a ``PASS``
before registration is the account password of the nick the client registers with, carried in
the ``Hello``. A refusal the client cannot recover from (a wrong ``PASS``, a server that admits
only accounts) sets :attr:`IrcCodec.hangup`, which the glue sends as the last word.

Replies need context the model does not carry (a 401 names the nick that was missing; an
``echo-message`` repeats the text that was sent). The codec therefore tags each command with its
own ``ref`` and remembers what it asked; the broker copies the ref onto its answer.

Fan-out shares one rendering between all IRC clients with the same ``encoding_key`` (the
capabilities that change the bytes). Events that fan out (messages, joins, parts, quits, nick and
topic changes) never depend on the recipient, and the codec never learns state from them, because
only one codec of a key gets to see each one. Numerics name the recipient, but they answer one
client's request and go to that client alone.
"""

from __future__ import annotations

import time
from collections.abc import Callable, Hashable
from typing import ClassVar, Final, NamedTuple

from .. import model as m
from . import Inbound, LocalReply
from ._lines import LineBuffer
from .irc_parse import MAX_LINE_BYTES, MAX_TARGETS, IrcLine, format_line, parse_line
from .irc_render import render
from .irc_sasl import PlainExchange, SaslRefused

__all__ = ["CAPABILITIES", "IrcCodec"]

#: What ``CAP LS`` offers (``sasl`` as ``sasl=PLAIN`` to clients of ``CAP LS 302``).
CAPABILITIES: Final = ("echo-message", "multi-prefix", "sasl", "server-time")
#: IRCv3 message-tags: up to 4094 bytes of tags may precede the 512-byte RFC line.
DEFAULT_IRC_LINE_BYTES: Final = 4096 + MAX_LINE_BYTES
#: Commands allowed before registration completes (RFC 2812 §3.1; IRCv3 capability negotiation).
_BEFORE_REGISTRATION: Final = frozenset(
    {"CAP", "NICK", "USER", "PASS", "PING", "PONG", "QUIT", "AUTHENTICATE"}
)
_MAX_PENDING: Final = 1024
_USER_MODES: Final = frozenset("iw")
_BAD_TEXT: Final = str.maketrans({"\r": " ", "\n": " ", "\x00": " "})


def _clean(text: str) -> str:
    """Free text from other codecs must not end a line early (header injection)."""
    return text.translate(_BAD_TEXT)


def _time_tag(when: float) -> str:
    """IRCv3 ``server-time``: ISO 8601 UTC with milliseconds, as ``2026-01-31T12:00:00.000Z``."""
    millis = int(when * 1000) % 1000
    return time.strftime("time=%Y-%m-%dT%H:%M:%S", time.gmtime(when)) + f".{millis:03d}Z"


class _Pending(NamedTuple):
    """What one of our commands asked, kept until the broker answers it."""

    verb: str
    target: str = ""
    text: str = ""
    kind: m.Kind = m.Kind.PLAIN
    rooms: frozenset[str] = frozenset()
    #: For ISON: the question's id, and whether this is its last nick.
    batch: int = 0
    last: bool = False


class IrcCodec:
    """Server side of the IRC protocol for one connection."""

    name: ClassVar[str] = "irc"

    def __init__(
        self,
        *,
        server_name: str = "anychat",
        version: str = "0",
        network: str | None = None,
        max_line_bytes: int = DEFAULT_IRC_LINE_BYTES,
    ) -> None:
        self.server = server_name
        self.version = version
        self.network = network or server_name
        self.encoding_key: Hashable = ("irc", False)
        self._lines = LineBuffer(max(max_line_bytes, MAX_LINE_BYTES))
        self.nick = ""
        self.user: str | None = None
        self.password: str | None = None
        #: The account this connection logged in to (learnt from the server's answer).
        self.account: str | None = None
        #: A goodbye the glue must send and close with (a refusal that ends the connection).
        self.hangup: m.Bye | None = None
        self._sasl: PlainExchange | None = None
        self._cap_302 = False
        #: Welcome seen; ``hello_sent`` is true from our Hello until the broker refuses it, so
        #: lines that follow NICK/USER in the same batch reach the broker in order.
        self.registered = False
        self.hello_sent = False
        self.caps: set[str] = set()
        self._negotiating = False
        self._next_ref = 1
        self._pending: dict[int, _Pending] = {}
        #: Rooms we are in, folded -> name, learnt from our own join/part replies (for JOIN 0).
        self._rooms: dict[str, str] = {}
        self._modes: set[str] = set()
        #: ISON answers being collected: one 303 line answers all of its nicks.
        self.ison: dict[int, list[str]] = {}

    # ================================================================== receiving

    def feed(self, data: bytes) -> list[Inbound]:
        out: list[Inbound] = []
        for raw in self._lines.feed(data):
            if raw is None:
                out.append(self._reply("417", ":Input line was too long"))
                continue
            body = raw.partition(b" ")[2] if raw.startswith(b"@") else raw
            if len(body) > MAX_LINE_BYTES - 2:
                # RFC 2812 §2.3 caps lines at 512 bytes with CRLF; 417 is what IRCv3 servers say.
                out.append(self._reply("417", ":Input line was too long"))
                continue
            try:
                text = raw.decode()
            except UnicodeDecodeError:
                text = raw.decode("latin-1")  # legacy clients: keep their text readable
            line = parse_line(text)
            if line is not None:
                out.extend(self._dispatch(line))
        return out

    def _dispatch(self, line: IrcLine) -> list[Inbound]:
        verb = line.command
        if not self.hello_sent and verb not in _BEFORE_REGISTRATION:
            return [self._reply("451", ":You have not registered")]
        handler = self._handlers.get(verb)
        if handler is None:
            return [self._reply("421", verb, ":Unknown command")]
        return handler(self, line.params)

    # ----------------------------------------------------------------- helpers

    @property
    def me(self) -> str:
        """Who numerics address: ``*`` until registered, as servers do."""
        return self.nick if self.registered else "*"

    @property
    def mask(self) -> str:
        return self.mask_of(self.nick)

    def mask_of(self, nick: str) -> str:
        # Hosts are cloaked: the prefix identifies the nick, never a client's address.
        return f"{nick}!{nick}@{self.server}"

    def _line(self, *params: str) -> str:
        """A numeric or server line; a last parameter given with ``:`` is trailing.

        Parameters may echo what a client sent, so each is forced into a legal shape.
        """
        *middle, last = params
        words = [_clean(p).replace(" ", "_").lstrip(":") or "*" for p in middle]
        if last.startswith(":"):
            return " ".join((f":{self.server}", *words, _clean(last)))
        return format_line(self.server, *words, _clean(last))

    def num(self, code: str, *params: str) -> str:
        return self._line(code, self.me, *params)

    def _reply(self, code: str, *params: str) -> LocalReply:
        return LocalReply((self.num(code, *params) + "\r\n").encode())

    def _track(self, pending: _Pending) -> int:
        ref = self._next_ref
        self._next_ref = ref + 1
        if len(self._pending) >= _MAX_PENDING:  # a reply never came: forget the oldest
            del self._pending[next(iter(self._pending))]
        self._pending[ref] = pending
        return ref

    def _need_params(self, verb: str) -> list[Inbound]:
        return [self._reply("461", verb, ":Not enough parameters")]

    # ----------------------------------------------------------------- registration

    def _register(self) -> list[Inbound]:
        if self.hello_sent or self._negotiating or not self.nick or self.user is None:
            return []
        self.hello_sent = True
        # After SASL the nick is the account's, as for every logged-in client (a client that
        # ends CAP before the SASL answer arrives registers with its NICK, checked as usual).
        nick = self.account or self.nick
        ref = self._track(_Pending("hello", nick))
        password = None if self.account else self.password
        return [m.Hello(nick=nick, autojoin=False, ref=ref, password=password)]

    def _cap(self, params: tuple[str, ...]) -> list[Inbound]:
        if not params:
            return self._need_params("CAP")
        sub = params[0].upper()
        if sub == "LS":
            if not self.hello_sent:
                self._negotiating = True
            version = params[1] if len(params) > 1 else ""
            # str.isdigit() is true for '²' too, which int() refuses: ASCII digits only.
            self._cap_302 = self._cap_302 or (
                version.isascii() and version.isdigit() and int(version) >= 302
            )
            # IRCv3: capability values only for clients that announced 302.
            offered = (f"{c}=PLAIN" if c == "sasl" and self._cap_302 else c for c in CAPABILITIES)
            return [self._cap_reply("LS", " ".join(offered))]
        if sub == "LIST":
            return [self._cap_reply("LIST", " ".join(sorted(self.caps)))]
        if sub == "REQ":
            if not self.hello_sent:
                self._negotiating = True
            wanted = params[1].split() if len(params) > 1 else []
            changes = {c.lstrip("-"): not c.startswith("-") for c in wanted}
            if not wanted or not set(changes) <= set(CAPABILITIES):
                return [self._cap_reply("NAK", " ".join(wanted))]
            for cap, on in changes.items():
                if on:
                    self.caps.add(cap)
                else:
                    self.caps.discard(cap)
            self.encoding_key = ("irc", "server-time" in self.caps)
            return [self._cap_reply("ACK", " ".join(wanted))]
        if sub == "END":
            if self.hello_sent or not self._negotiating:
                return []
            self._negotiating = False
            return self._register()
        return [self._reply("410", params[0], ":Invalid CAP command")]

    def _cap_reply(self, sub: str, text: str) -> LocalReply:
        return LocalReply((self._line("CAP", self.me, sub, ":" + text) + "\r\n").encode())

    def _pass(self, params: tuple[str, ...]) -> list[Inbound]:
        if self.hello_sent:
            return [self._reply("462", ":You may not reregister")]
        if not params:
            return self._need_params("PASS")
        # The account password of the nick this client registers with, checked at registration.
        # Some clients (Python's ``irc``) send a password with spaces without the ':' it needs:
        # the words are the password, not extra parameters (those are for server links only).
        self.password = " ".join(params)
        return []

    def _user(self, params: tuple[str, ...]) -> list[Inbound]:
        if self.hello_sent:
            return [self._reply("462", ":You may not reregister")]
        if len(params) < 4 or not params[0]:
            return self._need_params("USER")
        if self.user is not None:
            return []
        self.user = params[0]
        return self._register()

    def _nick(self, params: tuple[str, ...]) -> list[Inbound]:
        if not params or not params[0]:
            return [self._reply("431", ":No nickname given")]
        nick = params[0]
        if not m.valid_nick(nick):
            return [self._reply("432", nick, ":Erroneous nickname")]
        if not self.hello_sent:
            self.nick = nick
            return self._register()
        if nick == self.nick:
            return []
        return [m.Nick(nick=nick, ref=self._track(_Pending("nick", nick)))]

    def _authenticate(self, params: tuple[str, ...]) -> list[Inbound]:
        """IRCv3 SASL: ``AUTHENTICATE PLAIN``, ``+`` from us, then the credentials in chunks."""
        if not params or not params[0]:
            return self._need_params("AUTHENTICATE")
        arg = params[0]
        if arg == "*":
            self._sasl = None
            return [self._reply("906", ":SASL authentication aborted")]
        exchange = self._sasl
        if exchange is None:
            if self.account:
                return [self._reply("907", ":You have already authenticated using SASL")]
            if arg.upper() != "PLAIN":
                return [
                    self._reply("908", "PLAIN", ":are available SASL mechanisms"),
                    self._reply("904", ":SASL authentication failed"),
                ]
            self._sasl = PlainExchange()
            return [LocalReply(b"AUTHENTICATE +\r\n")]
        try:
            credentials = exchange.feed(arg)
        except SaslRefused as exc:
            self._sasl = None
            return [self._reply(exc.numeric, ":" + exc.text)]
        if credentials is None:
            return []
        self._sasl = None
        ref = self._track(_Pending("sasl", credentials.authcid))
        return [
            m.Login(nick=credentials.authcid, password=credentials.password, hello=False, ref=ref)
        ]

    # ----------------------------------------------------------------- chat commands

    def _join(self, params: tuple[str, ...]) -> list[Inbound]:
        if not params or not params[0]:
            return self._need_params("JOIN")
        if params[0] == "0":  # RFC 2812 §3.2.1: leave every channel
            return [
                m.Part(room=name, ref=self._track(_Pending("part", name)))
                for name in self._rooms.values()
            ]
        return [
            m.Join(room=name, ref=self._track(_Pending("join", name)))
            for name in params[0].split(",")
            if name
        ]

    def _part(self, params: tuple[str, ...]) -> list[Inbound]:
        if not params or not params[0]:
            return self._need_params("PART")
        reason = params[1] if len(params) > 1 else ""
        return [
            m.Part(room=name, reason=reason, ref=self._track(_Pending("part", name)))
            for name in params[0].split(",")
            if name
        ]

    def _privmsg(self, params: tuple[str, ...], kind: m.Kind = m.Kind.PLAIN) -> list[Inbound]:
        verb = "NOTICE" if kind is m.Kind.NOTICE else "PRIVMSG"
        if not params or not params[0]:
            return (
                []
                if kind is m.Kind.NOTICE
                else [self._reply("411", f":No recipient given ({verb})")]
            )
        if len(params) < 2 or not params[1]:
            return [] if kind is m.Kind.NOTICE else [self._reply("412", ":No text to send")]
        text = params[1]
        if kind is m.Kind.PLAIN and text.startswith("\x01ACTION ") and len(text) > 8:
            kind = m.Kind.ACTION
            text = text[8:].removesuffix("\x01")
        # Our lines may carry more than a message holds: split rather than refuse.
        limit = m.MAX_TEXT_LENGTH
        chunks = [text[i : i + limit] for i in range(0, len(text), limit)]
        out: list[Inbound] = []
        targets = [t for t in params[0].split(",") if t]
        if len(targets) > MAX_TARGETS:
            # One line must not fan out without bound; 407 is what servers answer.
            return (
                []
                if kind is m.Kind.NOTICE
                else [
                    self._reply("407", params[0], f":Too many recipients (at most {MAX_TARGETS})")
                ]
            )
        for target in targets:
            for chunk in chunks:
                ref = self._track(_Pending("say", target, chunk, kind))
                out.append(m.Say(target=target, text=chunk, kind=kind, ref=ref))
        return out

    def _notice(self, params: tuple[str, ...]) -> list[Inbound]:
        return self._privmsg(params, m.Kind.NOTICE)

    def _topic(self, params: tuple[str, ...]) -> list[Inbound]:
        if not params or not params[0]:
            return self._need_params("TOPIC")
        room = params[0]
        if len(params) == 1:
            return [m.Topic(room=room, ref=self._track(_Pending("topic?", room)))]
        return [m.Topic(room=room, text=params[1], ref=self._track(_Pending("topic", room)))]

    def _names(self, params: tuple[str, ...]) -> list[Inbound]:
        rooms = [r for r in params[0].split(",") if r] if params else []
        if not rooms:
            return [self._reply("366", "*", ":End of /NAMES list")]
        return [m.Who(room=r, ref=self._track(_Pending("names", r))) for r in rooms]

    def _who(self, params: tuple[str, ...]) -> list[Inbound]:
        mask = params[0] if params else ""
        if m.is_room(mask):
            return [m.Who(room=mask, ref=self._track(_Pending("who", mask)))]
        if m.valid_nick(mask):
            return [m.Whois(nick=mask, ref=self._track(_Pending("who", mask)))]
        return [self._reply("315", mask or "*", ":End of /WHO list")]

    def _whois(self, params: tuple[str, ...]) -> list[Inbound]:
        if not params or not params[-1]:
            return [self._reply("431", ":No nickname given")]
        return [
            m.Whois(nick=n, ref=self._track(_Pending("whois", n)))
            for n in params[-1].split(",")
            if n
        ]

    def _list(self, params: tuple[str, ...]) -> list[Inbound]:
        wanted = frozenset(m.casefold(r) for r in params[0].split(",") if r) if params else None
        pending = _Pending("list", rooms=wanted or frozenset())
        return [m.ListRooms(ref=self._track(pending))]

    def _away(self, params: tuple[str, ...]) -> list[Inbound]:
        text = params[0] if params else ""
        return [m.Away(text=text, ref=self._track(_Pending("away")))]

    def _mode(self, params: tuple[str, ...]) -> list[Inbound]:
        if not params or not params[0]:
            return self._need_params("MODE")
        target = params[0]
        if m.is_room(target):
            if len(params) == 1:
                return [self._reply("324", target, "+nt")]
            if params[1].lstrip("+") == "b":  # ban list query: it is always empty
                return [self._reply("368", target, ":End of channel ban list")]
            return [self._reply("482", target, ":You're not channel operator")]
        if m.casefold(target) != m.casefold(self.nick):
            return [self._reply("502", ":Can't change mode for other users")]
        if len(params) == 1:
            return [self._reply("221", "+" + "".join(sorted(self._modes)))]
        # User modes change nothing here, but clients set +i or +w on connecting and expect
        # the change echoed back (as ngircd does); unknown letters get 501.
        changes, sign, adding = "", "", True
        for char in params[1]:
            if char in "+-":
                adding = char == "+"
            elif char not in _USER_MODES:
                return [self._reply("501", ":Unknown MODE flag")]
            elif adding != (char in self._modes):
                (self._modes.add if adding else self._modes.discard)(char)
                wanted = "+" if adding else "-"
                changes += char if sign == wanted else wanted + char
                sign = wanted
        if not changes:
            return []
        return [LocalReply(f":{self.mask} MODE {self.nick} :{changes}\r\n".encode())]

    def _ison(self, params: tuple[str, ...]) -> list[Inbound]:
        nicks = [n for p in params for n in p.split() if m.valid_nick(n)]
        if not nicks:
            return self._need_params("ISON") if not params else [self._reply("303", ":")]
        batch = self._next_ref
        self.ison[batch] = []
        final = len(nicks) - 1
        return [
            m.Whois(nick=n, ref=self._track(_Pending("ison", n, batch=batch, last=i == final)))
            for i, n in enumerate(nicks)
        ]

    def _userhost(self, params: tuple[str, ...]) -> list[Inbound]:
        if not params:
            return self._need_params("USERHOST")
        return [
            m.Whois(nick=n, ref=self._track(_Pending("userhost", n)))
            for n in params[:5]  # RFC 2812 §4.8: up to five nicks
            if m.valid_nick(n)
        ]

    def _ping(self, params: tuple[str, ...]) -> list[Inbound]:
        if not params:
            return [self._reply("409", ":No origin specified")]
        return [LocalReply((self._line("PONG", self.server, params[0]) + "\r\n").encode())]

    def _pong(self, params: tuple[str, ...]) -> list[Inbound]:
        return []  # the server glue counts any input as a sign of life

    def _quit(self, params: tuple[str, ...]) -> list[Inbound]:
        return [m.Quit(reason=params[0] if params else "")]

    def _motd(self, params: tuple[str, ...]) -> list[Inbound]:
        return [self._reply("422", ":MOTD File is missing")]

    def _whowas(self, params: tuple[str, ...]) -> list[Inbound]:
        # Clients ask after a 401 from WHOIS; no history of nicks is kept.
        if not params or not params[0]:
            return [self._reply("431", ":No nickname given")]
        return [
            self._reply("406", params[0], ":There was no such nickname"),
            self._reply("369", params[0], ":End of WHOWAS"),
        ]

    def _version(self, params: tuple[str, ...]) -> list[Inbound]:
        return [self._reply("351", f"anychat-{self.version}", self.server, ":")]

    _handlers: ClassVar[dict[str, Callable[[IrcCodec, tuple[str, ...]], list[Inbound]]]] = {
        "CAP": _cap,
        "PASS": _pass,
        "USER": _user,
        "NICK": _nick,
        "AUTHENTICATE": _authenticate,
        "JOIN": _join,
        "PART": _part,
        "PRIVMSG": _privmsg,
        "NOTICE": _notice,
        "TOPIC": _topic,
        "NAMES": _names,
        "WHO": _who,
        "WHOIS": _whois,
        "LIST": _list,
        "AWAY": _away,
        "MODE": _mode,
        "USERHOST": _userhost,
        "ISON": _ison,
        "PING": _ping,
        "PONG": _pong,
        "QUIT": _quit,
        "MOTD": _motd,
        "VERSION": _version,
        "WHOWAS": _whowas,
    }

    # ================================================================== sending

    def greeting(self) -> list[Inbound]:
        """IRC clients speak first (CAP/NICK/USER)."""
        return []

    def keepalive(self, token: str) -> bytes | None:
        """The server's ``PING`` for an idle client (the glue decides when)."""
        return f"PING :{token}\r\n".encode()

    def encode(self, event: m.Event) -> bytes:
        lines = render(self, event)
        if not lines:
            return b""
        return ("\r\n".join(lines) + "\r\n").encode("utf-8", "replace")

    def take(self, ref: m.Ref, *, final: bool = True) -> _Pending | None:
        """The request an answer refers to (forgotten once ``final``)."""
        if not isinstance(ref, int):
            return None
        return self._pending.pop(ref, None) if final else self._pending.get(ref)

    def joined(self, room: str) -> None:
        self._rooms[m.casefold(room)] = room

    def parted(self, room: str) -> None:
        self._rooms.pop(m.casefold(room), None)

    def clean(self, text: str) -> str:
        return _clean(text)

    def time_tag(self, when: float) -> str:
        return _time_tag(when) if "server-time" in self.caps and when else ""
