"""What the terminal client knows and does, apart from drawing: one chat session over reconnects.

:class:`ChatSession` keeps the connection alive (reconnecting with exponential backoff and
rejoining the rooms it was in), tracks who is where (for nick completion), maps ``/commands`` typed
by a person onto :class:`~anychat.client.Client` calls, and turns everything worth showing into
prompt_toolkit formatted text (with :mod:`anychat._chatrender`). It never writes to the terminal
itself: it hands lines to a :class:`Sink`, so the interactive prompt and the pipe mode share all
of it.

It shows each message once: replayed history, a page fetched after a reconnect and live
delivery can overlap, and a per-room high-water mark of message ids drops the repeats.
"""

from __future__ import annotations

import dataclasses
import re
from collections.abc import Awaitable, Callable
from contextlib import AsyncExitStack
from typing import Final, Literal, Protocol, TypeAlias

import anyio
from anyio.abc import TaskStatus
from prompt_toolkit.formatted_text import StyleAndTextTuples

from . import model as m
from ._chatlogin import Credentials
from ._chatrender import error_line, message_line, nick_style, notice, render, safe
from .client import MAX_PAGE, Client
from .errors import ChatError, ConnectionClosed, LoginFailed, NickInUse, NickRegistered, Refused

# The drawing helpers are re-exported: the terminal module and the tests take them from here.
__all__ = [
    "COMMANDS",
    "ChatSession",
    "LineKind",
    "Sink",
    "error_line",
    "is_secret",
    "message_line",
    "nick_style",
    "notice",
    "render",
    "safe",
]

#: First pause before reconnecting, in seconds; doubled after each failure up to the maximum.
RECONNECT_INITIAL_SECONDS: Final = 0.5
RECONNECT_MAX_SECONDS: Final = 10.0

#: Pages of missed messages fetched after a reconnect, at most (``/history`` reaches further).
CATCH_UP_MAX_PAGES: Final = 10

#: Commands whose arguments hold a password: masked while typed, never kept in the input history.
SECRET_COMMANDS: Final = ("register", "login")

_LINE_BREAK: Final = re.compile(r"\r\n|\r|\n")

#: ``/command`` -> (arguments, what it does); the order is the order of ``/help``.
COMMANDS: Final = {
    "join": ("#ROOM", "join a room and talk there"),
    "part": ("[#ROOM] [REASON]", "leave a room (default: the current one)"),
    "msg": ("NICK|#ROOM TEXT", "send to a nick privately, or to a room"),
    "me": ("ACTION", "act in the current room (* you waves)"),
    "nick": ("NAME", "change your nick"),
    "who": ("[#ROOM]", "list the members of a room"),
    "rooms": ("", "list the rooms"),
    "history": ("[#ROOM|NICK] [ID]", "earlier messages (before message ID)"),
    "register": ("PASSWORD", "claim your nick with a password"),
    "login": ("NICK PASSWORD", "log in to your account"),
    "help": ("", "this list"),
    "quit": ("[REASON]", "leave (Ctrl-D does too)"),
}


def is_secret(line: str) -> bool:
    """True for a typed line that carries a password (``/login ada hunter2``)."""
    name = line[1:].split(" ", 1)[0].lower() if line.startswith("/") else ""
    return name in SECRET_COMMANDS


def help_lines() -> list[StyleAndTextTuples]:
    lines = [notice("commands:")]
    for name, (args, what) in COMMANDS.items():
        lines.append(notice(f"  /{name} {args}".ljust(28) + what))
    lines.append(notice("anything else is said to the current room; // says a leading /"))
    return lines


#: What a shown line is: someone's ``message``, our ``own`` message as the server acked it,
#: ``presence`` (joins, parts, quits, nick changes) or ``info`` (the result of a command).
LineKind: TypeAlias = Literal["message", "own", "presence", "info"]


class Sink(Protocol):
    """Where a session's lines go: the prompt's scrollback, or stdout/stderr in pipe mode."""

    def show(self, line: StyleAndTextTuples, kind: LineKind = "info") -> None:
        """A line for the user to read."""

    def problem(self, line: StyleAndTextTuples) -> None:
        """A refusal or a connection problem."""


class ChatSession:
    """One person's chat: the live :class:`Client` (replaced on reconnect) and what it is in."""

    def __init__(
        self,
        sink: Sink,
        *,
        host: str,
        port: int,
        nick: str | None,
        room: str,
        max_attempts: int | None = None,
        credentials: Credentials | None = None,
    ) -> None:
        self.sink = sink
        self.host = host
        self.port = port
        #: Tokens and passwords: how each connection logs in.
        self.credentials = credentials or Credentials(host, port)
        #: The nick to register with (``None`` = a guest nick); follows nick changes.
        self.nick = nick
        #: Rooms we are in, in the order joined; :attr:`room` is where plain lines go.
        self.rooms: list[str] = [_room_name(room)]
        self.room: str | None = self.rooms[0]
        #: Room -> members, from member lists and join/part/quit/nick events (for completion).
        self.members: dict[str, set[str]] = {}
        #: Nicks seen outside our rooms (private messages).
        self.seen: set[str] = set()
        #: The live client, or ``None`` while (re)connecting.
        self.client: Client | None = None
        #: Lines refused by the server (pipe mode turns this into the exit status).
        self.failures = 0
        self.quitting = False
        #: The highest message id seen (shown, or acked for our own): a reconnect fetches what
        #: came after it.
        self.last_id = 0
        #: Room (casefolded; ``""`` for private messages) -> the highest message id shown there,
        #: so a message that arrives twice (replayed on rejoin, or live while catching up) is
        #: shown once.
        self._shown: dict[str, int] = {}
        self._max_attempts = max_attempts
        self._changed = anyio.Event()

    # ------------------------------------------------------------------ connection

    @property
    def me(self) -> str:
        return self.client.nick if self.client is not None else (self.nick or "")

    async def maintain(self, *, task_status: TaskStatus[None] = anyio.TASK_STATUS_IGNORED) -> None:
        """Stay connected until cancelled.

        The first connection must work (its error is raised, so the caller can report it and
        exit); later losses are reported to the sink and retried with exponential backoff.
        With ``max_attempts``, that many failed reconnects in a row raise the last error.
        """
        delay = RECONNECT_INITIAL_SECONDS
        first = True
        failed = 0
        while True:
            try:
                async with AsyncExitStack() as stack:
                    client = await self.credentials.open(stack, self.nick, may_ask=first)
                    since = self.last_id
                    await self._rejoin(client, strict=first)
                    if not first:
                        await self._catch_up(client, since)
                    self._set_client(client)
                    if first:
                        first = False
                        task_status.started()
                    else:
                        where = ", ".join(safe(r) for r in self.rooms) or "no rooms"
                        self.sink.show(
                            notice(f"reconnected as {safe(client.nick)}; in {where}"), "presence"
                        )
                    delay, failed = RECONNECT_INITIAL_SECONDS, 0
                    async for event in client:
                        self._on_event(event)
                    reason = client.closed_reason or "connection closed"
            except NickInUse:
                if first:
                    raise
                # Our old connection may still hold the nick until the server notices it is gone.
                self.sink.problem(
                    error_line(f"nick {safe(self.nick or '')} is taken; using a guest nick")
                )
                self.nick = None
                continue
            except (NickRegistered, LoginFailed):
                if first:
                    raise
                # The saved login no longer works and the prompt is up: carry on as a guest.
                self.sink.problem(
                    error_line(
                        f"cannot log in as {safe(self.nick or '')} again; using a guest nick "
                        "(/login NICK PASSWORD to log in)"
                    )
                )
                self.nick = None
                continue
            except ChatError as exc:
                if first:
                    raise
                failed += 1
                if self._max_attempts is not None and failed >= self._max_attempts:
                    raise
                reason = str(exc)
            finally:
                self._set_client(None)
            if self.quitting:
                return
            what = "reconnect failed" if failed else "disconnected"
            self.sink.problem(error_line(f"{what}: {safe(reason)}; retrying in {delay:g} s"))
            await anyio.sleep(delay)
            delay = min(delay * 2, RECONNECT_MAX_SECONDS)

    async def _rejoin(self, client: Client, *, strict: bool) -> None:
        """Join our rooms on a fresh connection, the current room last (so it stays current).

        ``strict``: a refusal is raised (the room given on the command line is unusable) rather
        than reported.
        """
        order = [r for r in self.rooms if r != self.room] + ([self.room] if self.room else [])
        joined: list[str] = []
        current = None
        for room in order:
            try:
                nicks = await client.join(room)
            except Refused as exc:
                if strict:
                    raise
                self.sink.problem(error_line(f"cannot rejoin {safe(room)}: {safe(exc.text)}"))
                continue
            name = self._canonical(client, room)
            joined.append(name)
            self.members[name] = set(nicks)
            if room == self.room:
                current = name
        self.rooms = joined
        self.room = current or (joined[-1] if joined else None)
        self.nick = client.nick

    async def _catch_up(self, client: Client, since: int) -> None:
        """Show exactly what was said in our rooms (and to us) after ``since``, while we were
        away: the messages we saw are not shown again, none in between is skipped."""
        targets = list(self.rooms)
        if self.credentials.token is not None:
            targets.append(client.nick)  # our private messages (stored for accounts)
        missed: dict[int, m.Message] = {}
        for target in targets:
            # Everything up to ``since`` in a room we were in has been seen already.
            key = _key(target)
            self._shown[key] = max(self._shown.get(key, 0), since)
            after = since
            for _ in range(CATCH_UP_MAX_PAGES):
                page = await client.history(target, after=after, limit=MAX_PAGE)
                missed.update((msg.id, msg) for msg in page)
                if len(page) < MAX_PAGE:
                    break
                after = page[-1].id
        if missed:
            self.sink.show(notice(f"{len(missed)} new while you were away:"), "presence")
        for msg_id in sorted(missed):
            self._show_message(dataclasses.replace(missed[msg_id], history=False))

    def _set_client(self, client: Client | None) -> None:
        self.client = client
        self._changed.set()
        self._changed = anyio.Event()

    async def wait_for_new_client(self, old: Client | None = None) -> Client:
        """The live client once it is not ``old`` (used to retry after a connection loss)."""
        while self.client is None or self.client is old or self.client.closed_reason is not None:
            await self._changed.wait()
        return self.client

    # ------------------------------------------------------------------ events

    def _on_event(self, event: m.Event) -> None:
        if isinstance(event, m.Message):
            self._show_message(event)
            return
        self._track(event)
        line = render(event, me=self.me, room=self.room)
        if line is not None:
            if isinstance(event, m.Error):
                self.sink.problem(line)
            else:
                self.sink.show(line, "message" if isinstance(event, m.Message) else "presence")

    def _show_message(self, msg: m.Message) -> None:
        """Show a message from the server unless it was shown already."""
        key = _key(msg.target)
        if msg.id <= self._shown.get(key, 0):
            return
        self._shown[key] = msg.id
        self.last_id = max(self.last_id, msg.id)
        self._track(msg)
        self.sink.show(message_line(msg, me=self.me, room=self.room), "message")

    def _track(self, event: m.Event) -> None:
        match event:
            case m.Members(room=room, nicks=nicks):
                self.members[room] = set(nicks)
            case m.Joined(room=room, nick=nick):
                self.members.setdefault(room, set()).add(nick)
            case m.Parted(room=room, nick=nick):
                self.members.get(room, set()).discard(nick)
            case m.Quitted(nick=nick):
                for present in self.members.values():
                    present.discard(nick)
            case m.NickChanged(old=old, new=new):
                for present in self.members.values():
                    if old in present:
                        present.discard(old)
                        present.add(new)
            case m.Message(sender=sender, target=target) if not m.is_room(target):
                self.seen.add(sender)

    def known_nicks(self) -> list[str]:
        """Nicks worth completing: room members and private correspondents, not ourselves."""
        nicks = set(self.seen).union(*self.members.values())
        me = m.casefold(self.me)
        return sorted((n for n in nicks if m.casefold(n) != me), key=m.casefold)

    # ------------------------------------------------------------------ commands

    async def execute(self, line: str) -> bool:
        """Act on one line typed (or piped) by the user; ``False`` means leave.

        Refusals are shown and counted; a lost connection raises :class:`ConnectionClosed`
        (the caller decides whether to retry the line).
        """
        if "\n" in line or "\r" in line:  # a paste of several lines: each on its own
            for part in _LINE_BREAK.split(line):
                if not await self.execute(part):
                    return False
            return True
        if not line.strip():
            return True
        if line.startswith("//") or not line.startswith("/"):
            await self._say(self.room, line[1:] if line.startswith("//") else line)
            return True
        name, _, rest = line[1:].partition(" ")
        name, rest = name.lower(), rest.strip()
        if name == "quit":
            await self.quit(rest)
            return False
        handler = self._handlers.get(name)
        if handler is None:
            self._refused(f"unknown command /{safe(name)}; /help lists the commands")
            return True
        try:
            await handler(self, rest)
        except Refused as exc:
            self._refused(safe(exc.text))
        return True

    def _client(self) -> Client:
        client = self.client
        if client is None or client.closed_reason is not None:
            raise ConnectionClosed("not connected to the server (reconnecting)")
        return client

    def _refused(self, text: str) -> None:
        self.failures += 1
        self.sink.problem(error_line(text))

    async def _say(self, target: str | None, text: str, kind: m.Kind = m.Kind.PLAIN) -> None:
        if target is None:
            self._refused("you are not in a room; /join #room first")
            return
        client = self._client()
        for chunk in split_text(text):
            try:
                ack = await client.send(target, chunk, kind=kind)
            except Refused as exc:
                self._refused(safe(exc.text))
                return
            self.last_id = max(self.last_id, ack.id)
            msg = m.Message(
                id=ack.id,
                time=ack.time,
                sender=client.nick,
                target=ack.target,
                text=chunk,
                kind=kind,
            )
            self.sink.show(message_line(msg, me=client.nick, room=self.room), "own")

    async def _join(self, rest: str) -> None:
        if not rest:
            raise Refused("usage: /join #ROOM")
        client = self._client()
        room = _room_name(rest.split()[0])
        nicks = await client.join(room)
        room = self._canonical(client, room)
        self.members[room] = set(nicks)
        if room in self.rooms:
            self.rooms.remove(room)
        self.rooms.append(room)
        self.room = room
        self.sink.show(notice(f"you are in {safe(room)} with {_names(nicks, client.nick)}"))

    async def _part(self, rest: str) -> None:
        words = rest.split(maxsplit=1)
        room: str | None
        if words and m.is_room(words[0]):
            room, reason = words[0], (words[1] if len(words) > 1 else "")
        else:
            room, reason = self.room, rest
        if room is None:
            raise Refused("you are not in a room")
        await self._client().part(room, reason)
        self.rooms = [r for r in self.rooms if m.casefold(r) != m.casefold(room)]
        self.members = {r: n for r, n in self.members.items() if m.casefold(r) != m.casefold(room)}
        if self.room is not None and m.casefold(self.room) == m.casefold(room):
            self.room = self.rooms[-1] if self.rooms else None
        now = f"; now in {safe(self.room)}" if self.room else ""
        self.sink.show(notice(f"you left {safe(room)}{now}"))

    async def _msg(self, rest: str) -> None:
        target, _, text = rest.partition(" ")
        if not target or not text.strip():
            raise Refused("usage: /msg NICK|#ROOM TEXT")
        await self._say(target, text)

    async def _me(self, rest: str) -> None:
        if not rest:
            raise Refused("usage: /me ACTION")
        await self._say(self.room, rest, m.Kind.ACTION)

    async def _nick(self, rest: str) -> None:
        if not rest:
            raise Refused("usage: /nick NAME")
        client = self._client()
        await client.set_nick(rest)  # the server explains what a nick may be
        self.nick = client.nick
        self.sink.show(notice(f"you are now known as {safe(client.nick)}"))

    async def _who(self, rest: str) -> None:
        room = _room_name(rest.split()[0]) if rest else self.room
        if room is None:
            raise Refused("usage: /who #ROOM")
        client = self._client()
        nicks = await client.who(room)
        if room in self.rooms:
            self.members[room] = set(nicks)
        self.sink.show(notice(f"in {safe(room)}: {_names(nicks, client.nick)}"))

    async def _rooms(self, rest: str) -> None:
        rooms = await self._client().list_rooms()
        listing = ", ".join(f"{safe(r.name)} ({r.members})" for r in rooms) or "none"
        self.sink.show(notice(f"rooms: {listing}"))

    async def _history(self, rest: str) -> None:
        """``/history [#ROOM|NICK] [ID]``: the page of messages before ``ID`` (or the newest)."""
        words = rest.split()
        target: str | None = self.room
        before: int | None = None
        if words and not words[0].isdigit():
            target = words.pop(0)
        if words:
            if len(words) > 1 or not words[0].isdigit():
                raise Refused("usage: /history [#ROOM|NICK] [ID]")
            before = int(words[0])
        if target is None:
            raise Refused("usage: /history #ROOM|NICK [ID]")
        page = await self._client().history(target, before=before)
        if not page:
            self.sink.show(notice(f"no earlier messages in {safe(target)}"))
            return
        for msg in page:
            self.sink.show(
                message_line(dataclasses.replace(msg, history=True), me=self.me, room=self.room),
                "message",
            )
        self.sink.show(
            notice(f"/history {safe(target)} {page[0].id} shows the messages before these")
        )

    async def _register(self, rest: str) -> None:
        if not rest:
            raise Refused("usage: /register PASSWORD")
        client = self._client()
        token = await client.register(rest)
        self._logged_in(client, token)

    async def _login(self, rest: str) -> None:
        nick, _, password = rest.partition(" ")
        if not nick or not password:
            raise Refused("usage: /login NICK PASSWORD")
        client = self._client()
        token = await client.login(nick, password)
        self._logged_in(client, token)

    def _logged_in(self, client: Client, token: str) -> None:
        """Keep the token for reconnects and the next run."""
        self.nick = client.nick
        self.credentials.keep(client, token)
        self.sink.show(notice(f"logged in as {safe(client.nick)}; this terminal stays logged in"))

    async def _help(self, rest: str) -> None:
        for line in help_lines():
            self.sink.show(line)

    async def quit(self, reason: str = "") -> None:
        """Say goodbye to the server (if connected) and stop reconnecting."""
        self.quitting = True
        client = self.client
        if client is not None:
            await client.aclose(reason)

    _handlers: Final[dict[str, Callable[[ChatSession, str], Awaitable[None]]]] = {
        "join": _join,
        "part": _part,
        "msg": _msg,
        "me": _me,
        "nick": _nick,
        "who": _who,
        "rooms": _rooms,
        "history": _history,
        "register": _register,
        "login": _login,
        "help": _help,
    }

    @staticmethod
    def _canonical(client: Client, room: str) -> str:
        """The room's name as the server spells it (``#General`` may be ``#general``)."""
        for name in client.rooms:
            if m.casefold(name) == m.casefold(room):
                return name
        return room


def split_text(text: str, limit: int = m.MAX_TEXT_LENGTH) -> list[str]:
    """``text`` in pieces the server accepts (at most ``limit`` characters), cut at spaces
    where one is near enough to the limit, so a long paste arrives whole instead of refused."""
    pieces: list[str] = []
    while len(text) > limit:
        cut = text.rfind(" ", limit // 2, limit + 1)
        if cut <= 0:
            cut = limit
        pieces.append(text[:cut])
        text = text[cut:].lstrip(" ")
    if text or not pieces:
        pieces.append(text)
    return pieces


def _key(target: str) -> str:
    """Where a message was said, for telling repeats apart: its room, or ``""`` for private
    messages (ids only grow, so one high-water mark per room and one for private suffices)."""
    return m.casefold(target) if m.is_room(target) else ""


def _room_name(word: str) -> str:
    """People type ``/join general``; rooms are named ``#general``."""
    return word if word.startswith("#") else "#" + word


def _names(nicks: tuple[str, ...], me: str) -> str:
    others = [safe(n) for n in nicks if m.casefold(n) != m.casefold(me)]
    return ", ".join(others) if others else "nobody else"
