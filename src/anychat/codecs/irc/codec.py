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

from collections.abc import Callable, Hashable
from typing import ClassVar, Final

from ... import model as m
from .. import Inbound, LocalReply
from .._lines import LineBuffer
from . import caps
from .commands import HANDLERS, privmsg
from .labels import MAX_LABEL, wrap
from .parse import MAX_LINE_BYTES, IrcLine, parse_line
from .render import message_lines, render
from .sasl import PlainExchange, SaslRefused
from .state import IrcState, Pending
from .wire import Wire

__all__ = ["CAPABILITIES", "DEFAULT_IRC_LINE_BYTES", "IrcCodec"]

#: What ``CAP LS`` offers (see :mod:`.caps`).
CAPABILITIES: Final = tuple(caps.CAPABILITIES)
#: IRCv3 message-tags: up to 4094 bytes of tags may precede the 512-byte RFC line.
DEFAULT_IRC_LINE_BYTES: Final = 4096 + MAX_LINE_BYTES
#: A client's tags, ``@`` and all, are at most 4094 bytes (IRCv3 message-tags): else 417.
MAX_TAG_BYTES: Final = 4094
#: Commands allowed before registration completes (RFC 2812 §3.1; IRCv3 capability negotiation).
_BEFORE_REGISTRATION: Final = frozenset(
    {"CAP", "NICK", "USER", "PASS", "PING", "PONG", "QUIT", "AUTHENTICATE"}
)


#: One key object per set of rendering capabilities (at most 2 ** len(caps.RENDERING)), shared by every connection that has it:
#: fan-out compares keys by identity first, and an idle connection holds no tuple of its own.
_KEYS: dict[frozenset[str], tuple[str, frozenset[str]]] = {}


def _encoding_key(rendering: frozenset[str]) -> tuple[str, frozenset[str]]:
    key = _KEYS.get(rendering)
    if key is None:
        key = _KEYS.setdefault(rendering, ("irc", rendering))
    return key


class IrcCodec:
    """Server side of the IRC protocol for one connection."""

    __slots__ = ("_lines", "encoding_key", "state", "wire")

    name: ClassVar[str] = "irc"

    def __init__(
        self,
        *,
        server_name: str = "anychat",
        version: str = "0",
        network: str | None = None,
        max_line_bytes: int = DEFAULT_IRC_LINE_BYTES,
        history_replay: bool = False,
    ) -> None:
        self.state = IrcState()
        self.wire = Wire(
            self.state,
            server=server_name,
            network=network or server_name,
            version=version,
            replay=history_replay,
        )
        self.encoding_key: Hashable = _encoding_key(frozenset())
        self._lines = LineBuffer(max(max_line_bytes, MAX_LINE_BYTES))

    @property
    def hangup(self) -> m.Bye | None:
        """A goodbye the glue must send and close with (a refusal that ends the connection)."""
        return self.state.hangup

    # ================================================================== receiving

    def feed(self, data: bytes) -> list[Inbound]:
        out: list[Inbound] = []
        wire = self.wire
        for raw in self._lines.feed(data):
            if raw is None:
                out.append(wire.reply("417", ":Input line was too long"))
                continue
            tags, _, body = raw.partition(b" ") if raw.startswith(b"@") else (b"", b"", raw)
            if len(body) > MAX_LINE_BYTES - 2 or len(tags) > MAX_TAG_BYTES:
                # RFC 2812 §2.3 caps lines at 512 bytes with CRLF; 417 is what IRCv3 servers say.
                out.append(wire.reply("417", ":Input line was too long"))
                continue
            try:
                text = raw.decode()
            except UnicodeDecodeError:
                text = raw.decode("latin-1")  # legacy clients: keep their text readable
            if text.startswith("PRIVMSG ") and self.state.hello_sent:
                # Nearly every line a busy client sends, in its one common spelling (no tags,
                # no source, one target, a trailing text): straight to the handler, with
                # the parameters parse_line would give. Anything else takes the general route.
                target, colon, said = text[8:].partition(" :")
                if colon and target and " " not in target and target[0] != ":":
                    self.state.client_tags = ""  # what begin_line does for a line without tags
                    out.extend(privmsg(wire, (target, said)))
                    continue
            line = parse_line(text)
            if line is not None:
                label = line.tags.get("label", "")
                if label and self._labels_wanted(label):
                    out.extend(self._labeled(label, self._dispatch(line)))
                else:
                    out.extend(self._dispatch(line))
        return out

    def _labels_wanted(self, label: str) -> bool:
        state = self.state
        return "labeled-response" in state.caps and state.registered and len(label) <= MAX_LABEL

    def _labeled(self, label: str, answers: list[Inbound]) -> list[Inbound]:
        """IRCv3 labeled-response: local answers wrapped now, the broker's after a fence."""
        local = [
            line
            for a in answers
            if isinstance(a, LocalReply)
            for line in a.data.decode("utf-8", "replace").split("\r\n")
            if line
        ]
        commands = [a for a in answers if not isinstance(a, LocalReply)]
        if not commands:  # answered here and now (a batch of its own, so any name will do)
            lines = wrap(self.wire.server, label, "L0", local, batch="batch" in self.state.caps)
            return [LocalReply(("\r\n".join(lines) + "\r\n").encode())]
        refs = [c.ref for c in commands if isinstance(c.ref, int)]
        fence = self.state.begin_label(label, refs, local)
        return [*commands, m.Ping(token="label", ref=fence, fence=True)]

    def _dispatch(self, line: IrcLine) -> list[Inbound]:
        verb = line.command
        self.state.begin_line(line.tags)
        if not self.state.hello_sent and verb not in _BEFORE_REGISTRATION:
            return [self.wire.reply("451", ":You have not registered")]
        own = self._handlers.get(verb)
        if own is not None:
            return own(self, line.params)
        handler = HANDLERS.get(verb)
        if handler is None:
            return [self.wire.reply("421", verb, ":Unknown command")]
        return handler(self.wire, line.params)

    # ----------------------------------------------------------------- registration

    def _register(self) -> list[Inbound]:
        state = self.state
        if state.hello_sent or state.negotiating or not state.nick or state.user is None:
            return []
        state.hello_sent = True
        # After SASL the nick is the account's, as for every logged-in client (a client that
        # ends CAP before the SASL answer arrives registers with its NICK, checked as usual).
        nick = state.account or state.nick
        ref = state.track(Pending("hello", nick))
        password = None if state.account else state.password
        # The username as everyone will see it (the broker applies the same rule).
        state.user = m.clean_username(state.user, nick)
        hello = m.Hello(
            nick=nick,
            autojoin=False,
            ref=ref,
            password=password,
            user=state.user,
            realname=state.realname,
        )
        return [hello]

    def _cap(self, params: tuple[str, ...]) -> list[Inbound]:
        if not params:
            return self.wire.need_params("CAP")
        sub = params[0].upper()
        if sub == "LS":
            if not self.state.hello_sent:
                self.state.negotiating = True
            version = params[1] if len(params) > 1 else ""
            self.state.cap_302 = self.state.cap_302 or (
                version.isascii() and version.isdigit() and int(version) >= 302
            )  # '²'.isdigit() is true too, and int() refuses it
            if self.state.cap_302:
                self.state.set_caps(dict.fromkeys(caps.STICKY_302, True))
            return [self._cap_reply("LS", " ".join(caps.ls_tokens(self.state.cap_302)))]
        if sub == "LIST":
            return [self._cap_reply("LIST", " ".join(sorted(self.state.caps)))]
        if sub == "REQ":
            if not self.state.hello_sent:
                self.state.negotiating = True
            asked = params[1].strip(" ") if len(params) > 1 else ""
            changes = caps.parse_request(asked, self.state.cap_302)
            if changes is None:
                return [self._cap_reply("NAK", asked)]  # the whole request, as it was sent
            self.state.set_caps(changes)
            self.encoding_key = _encoding_key(self.state.caps & caps.RENDERING)
            return [self._cap_reply("ACK", asked)]
        if sub == "END":
            if self.state.hello_sent or not self.state.negotiating:
                return []
            self.state.negotiating = False
            return self._register()
        return [self.wire.reply("410", params[0], ":Invalid CAP command")]

    def _cap_reply(self, sub: str, text: str) -> LocalReply:
        return LocalReply((self.wire.line("CAP", self.wire.me, sub, ":" + text) + "\r\n").encode())

    def _pass(self, params: tuple[str, ...]) -> list[Inbound]:
        if self.state.hello_sent:
            return [self.wire.reply("462", ":You may not reregister")]
        if not params:
            return self.wire.need_params("PASS")
        # The account password of the nick this client registers with, checked at registration.
        # Some clients (Python's ``irc``) send a password with spaces without the ':' it needs:
        # the words are the password, not extra parameters (those are for server links only).
        self.state.password = " ".join(params)
        return []

    def _user(self, params: tuple[str, ...]) -> list[Inbound]:
        if self.state.hello_sent:
            return [self.wire.reply("462", ":You may not reregister")]
        # RFC 2812 §3.1.3: USER <user> <mode> <unused> <realname>; an empty realname is a
        # missing parameter too (as ngircd and ergo answer it).
        if len(params) < 4 or not params[0] or not params[3]:
            return self.wire.need_params("USER")
        if self.state.user is not None:
            return []
        self.state.user = params[0]
        self.state.realname = params[3]
        return self._register()

    def _nick(self, params: tuple[str, ...]) -> list[Inbound]:
        if not params or not params[0]:
            return [self.wire.reply("431", ":No nickname given")]
        nick = params[0]
        if not m.valid_nick(nick):
            return [self.wire.reply("432", nick, ":Erroneous nickname")]
        if not self.state.hello_sent:
            self.state.nick = nick
            return self._register()
        if nick == self.state.nick:
            return []
        return [m.Nick(nick=nick, ref=self.state.track(Pending("nick", nick)))]

    def _authenticate(self, params: tuple[str, ...]) -> list[Inbound]:
        """IRCv3 SASL: ``AUTHENTICATE PLAIN``, ``+`` from us, then the credentials in chunks."""
        if not params or not params[0]:
            return self.wire.need_params("AUTHENTICATE")
        arg = params[0]
        if arg == "*":
            self.state.sasl = None
            return [self.wire.reply("906", ":SASL authentication aborted")]
        exchange = self.state.sasl
        if exchange is None:
            if self.state.account:
                return [self.wire.reply("907", ":You have already authenticated using SASL")]
            if arg.upper() != "PLAIN":
                return [
                    self.wire.reply("908", "PLAIN", ":are available SASL mechanisms"),
                    self.wire.reply("904", ":SASL authentication failed"),
                ]
            self.state.sasl = PlainExchange()
            return [LocalReply(b"AUTHENTICATE +\r\n")]
        try:
            credentials = exchange.feed(arg)
        except SaslRefused as exc:
            self.state.sasl = None
            return [self.wire.reply(exc.numeric, ":" + exc.text)]
        if credentials is None:
            return []
        self.state.sasl = None
        ref = self.state.track(Pending("sasl", credentials.authcid))
        return [
            m.Login(nick=credentials.authcid, password=credentials.password, hello=False, ref=ref)
        ]

    _handlers: ClassVar[dict[str, Callable[[IrcCodec, tuple[str, ...]], list[Inbound]]]] = {
        "CAP": _cap,
        "PASS": _pass,
        "USER": _user,
        "NICK": _nick,
        "AUTHENTICATE": _authenticate,
    }

    # ================================================================== sending

    def greeting(self) -> list[Inbound]:
        """IRC clients speak first (CAP/NICK/USER)."""
        return []

    def keepalive(self, token: str) -> bytes | None:
        """The server's ``PING`` for an idle client (the glue decides when)."""
        return f"PING :{token}\r\n".encode()

    def rest(self) -> None:
        self.state.rest()

    def encode(self, event: m.Event) -> bytes:
        if type(event) is m.Message and not event.history:
            # What a busy server writes most: a live message answers no request and teaches
            # the state nothing, so observe, render's dispatch and the label step are skipped.
            lines = message_lines(self.wire, event)
            return ("\r\n".join(lines) + "\r\n").encode("utf-8", "replace") if lines else b""
        lines = render(self.wire, event, self.state.observe(event))
        ref = getattr(event, "ref", None)
        if ref is not None:  # an answer: to a labeled command?
            labelled = self.state.labelled(ref, lines, self.wire.server)
            lines = lines if labelled is None else labelled
        if not lines:
            return b""
        return ("\r\n".join(lines) + "\r\n").encode("utf-8", "replace")
