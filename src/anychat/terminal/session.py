"""What the terminal client knows and does, apart from drawing: one chat session over reconnects.

:class:`ChatSession` keeps the connection alive (reconnecting with exponential backoff and
rejoining the rooms it was in), tracks who is where (for nick completion), maps ``/commands`` typed
by a person onto :class:`~anychat.client.Client` calls, and turns everything worth showing into
prompt_toolkit formatted text (with :mod:`anychat.terminal.render`). It never writes to the terminal
itself: it hands lines to a :class:`Sink`, so the interactive prompt and the pipe mode share all
of it.

It shows each message once: replayed history, a page fetched after a reconnect and live
delivery can overlap, and a per-room high-water mark of message ids drops the repeats.
"""

from __future__ import annotations

import dataclasses
import re
from contextlib import AsyncExitStack
from typing import Final, Literal, Protocol, TypeAlias

import anyio
from anyio.abc import TaskStatus
from prompt_toolkit.formatted_text import StyleAndTextTuples

from .. import model as m
from ..client import MAX_PAGE, Client
from ..codecs import roomops
from ..commands import COMMANDS, ShowHelp, help_rows, is_secret, parse_line, room_name, with_hint
from ..errors import ChatError, ConnectionClosed, LoginFailed, NickInUse, NickRegistered, Refused
from .login import Credentials
from .outbox import Outbox, Unacked
from .render import (
    error_line,
    message_line,
    nick_style,
    notice,
    render,
    safe,
    topic_line,
    whois_text,
)

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

_LINE_BREAK: Final = re.compile(r"\r\n|\r|\n")


def help_lines() -> list[StyleAndTextTuples]:
    return [notice("commands:"), *(notice("  " + row) for row in help_rows())]


#: What a shown line is: someone's ``message``, our ``own`` message as the server acked it,
#: ``presence`` (joins, parts, quits, nick changes) or ``info`` (the result of a command).
LineKind: TypeAlias = Literal["message", "own", "presence", "info"]


class Sink(Protocol):
    """Where a session's lines go: the prompt's scrollback, the windows of the full-screen
    mode, or stdout/stderr in pipe mode."""

    def show(
        self,
        line: StyleAndTextTuples,
        kind: LineKind = "info",
        where: tuple[str, ...] = (),
        msg_id: int = 0,
    ) -> None:
        """A line for the user to read; ``where``: the rooms or private chats (the other
        nick) it belongs to, for sinks with a window per chat (``()``: the current one);
        ``msg_id``: the message it shows, if it shows one."""

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
        windows: bool = False,
    ) -> None:
        self.sink = sink
        #: The sink keeps a window per room: lines never name the room they are shown in.
        self.windows = windows
        self.host = host
        self.port = port
        #: Tokens and passwords: how each connection logs in.
        self.credentials = credentials or Credentials(host, port)
        #: The nick to register with (``None`` = a guest nick); follows nick changes.
        self.nick = nick
        #: Rooms we are in, in the order joined; :attr:`room` is where plain lines go.
        self.rooms: list[str] = [room_name(room)]
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
        #: Our away message ("" = present).
        self.away = ""
        #: The highest message id seen (shown, or acked for our own): a reconnect fetches what
        #: came after it.
        self.last_id = 0
        #: Room (casefolded; ``""`` for private messages) -> the highest message id shown there,
        #: so a message that arrives twice (replayed on rejoin, or live while catching up) is
        #: shown once.
        self._shown: dict[str, int] = {}
        #: Messages sent and not acknowledged yet: sent again (with the same idempotency keys,
        #: so once) after a reconnect.
        self.outbox = Outbox()
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
                        caught_up = await self._catch_up(client, since)
                        await self._resend(client, caught_up)
                    self._set_client(client)
                    if first:
                        first = False
                        # Said before any event is shown, so never between replayed lines.
                        where = safe(self.room) if self.room else "no room"
                        who = safe(self.credentials.identity(client))
                        self.sink.show(
                            notice(
                                f"connected to {safe(self.host)}:{self.port} as {who} "
                                f"in {where}; /help for help"
                            ),
                            "presence",
                        )
                        if client.tls_version is not None:
                            checked = (
                                "server certificate verified"
                                if client.tls_verified
                                else "server certificate NOT verified (--tls-insecure)"
                            )
                            self.sink.show(
                                notice(f"encrypted ({client.tls_version}); {checked}"), "presence"
                            )
                        topic = client.topics.get(m.casefold(self.room or ""))
                        if topic is not None and topic.text:
                            self.sink.show(topic_line(topic), "presence", (topic.room,))
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

    async def _catch_up(self, client: Client, since: int) -> set[int]:
        """Show exactly what was said in our rooms (and to us) after ``since``, while we were
        away: the messages we saw are not shown again, none in between is skipped. Returns the
        ids it looked at."""
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
        return set(missed)

    async def _resend(self, client: Client, caught_up: set[int]) -> None:
        """Send again what the last connection took away unacknowledged, with the same keys.

        A message the server stored before the connection broke is answered with its original
        ack instead of being posted again; the catch-up has shown it already (``caught_up``), so
        it is not shown twice either. A lost connection here raises, and the next reconnect
        tries again.
        """
        for piece in self.outbox.held():
            try:
                ack = await client.send(piece.target, piece.text, kind=piece.kind, key=piece.key)
            except Refused as exc:
                self.outbox.settled(piece)
                self._refused(safe(with_hint(exc.code, exc.text)))
                continue
            self.outbox.settled(piece)
            if ack.id not in caught_up:
                self._show_own(client, piece, ack)

    async def settle(self) -> None:
        """Wait until the server has answered every message said (a script's last lines must
        not be lost to a reconnect still under way); gives up when the session quits."""
        while len(self.outbox) and not self.quitting:
            await self._changed.wait()

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
        where = self._where(event)
        self._track(event)
        line = render(event, me=self.me, room=self.room)
        if line is None and (operator_line := roomops.render_text(event, safe)) is not None:
            line = notice(operator_line.removeprefix("* "))  # kicks, mode changes, invites
        if line is not None:
            if isinstance(event, m.Error):
                self.sink.problem(line)
            else:
                self.sink.show(line, "presence", where)

    def _where(self, event: m.Event) -> tuple[str, ...]:
        """The rooms an event is about: its room, or every room its nick is in (before the
        event changes that)."""
        match event:
            case m.Joined(room=room) | m.Parted(room=room) | m.RoomTopic(room=room):
                return (room,)
            case m.Members(room=room):
                return (room,)
            case m.Quitted(nick=nick) | m.NickChanged(old=nick):
                return tuple(room for room, nicks in self.members.items() if nick in nicks)
        return ()

    def line_room(self, msg: m.Message) -> str | None:
        """The room a message line is drawn for (its room is named when it is another)."""
        return msg.target if self.windows else self.room

    def chat_of(self, msg: m.Message) -> str:
        """The room or private chat (the other nick) ``msg`` belongs to."""
        if m.is_room(msg.target):
            return msg.target
        return msg.target if m.casefold(msg.sender) == m.casefold(self.me) else msg.sender

    def _show_message(self, msg: m.Message) -> None:
        """Show a message from the server unless it was shown already."""
        key = _key(msg.target)
        if msg.id <= self._shown.get(key, 0):
            return
        self._shown[key] = msg.id
        self.last_id = max(self.last_id, msg.id)
        self._track(msg)
        self.sink.show(
            message_line(msg, me=self.me, room=self.line_room(msg)),
            "message",
            (self.chat_of(msg),),
            msg.id,
        )

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

        The line is read with the grammar every text client shares (:mod:`anychat.commands`).
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
        parsed = parse_line(line)
        match parsed:
            case ShowHelp():
                for row in help_lines():
                    self.sink.show(row)
            case m.Quit(reason=reason):
                await self.quit(reason)
                return False
            case m.Invalid(text=text):
                self._refused(safe(text))
            case _:
                try:
                    await self._run(parsed)
                except Refused as exc:
                    self._refused(safe(with_hint(exc.code, exc.text)))
        return True

    async def _run(self, command: m.Command) -> None:
        """Carry out one command through the client, and show its result."""
        match command:
            case m.Say(target=target, text=text, kind=kind):
                await self._say(target or self.room, text, kind)
            case m.Join(room=room):
                await self._join(room)
            case m.Part(room=room, reason=reason):
                await self._part(room or self.room, reason)
            case m.Nick(nick=nick):
                await self._nick(nick)
            case m.Who(room=room):
                await self._who(room or self.room)
            case m.ListRooms():
                await self._rooms()
            case m.Topic(room=room, text=text):
                await self._topic(room or self.room, text)
            case m.Away(text=text):
                await self._away(text)
            case m.Whois(nick=nick):
                await self._whois(nick)
            case m.History(target=target, before=before, limit=limit):
                await self._history(target or self.room, before, limit)
            case m.Register(password=password):
                self._logged_in(self._client(), await self._client().register(password))
            case m.Login(nick=nick, password=password):
                self._logged_in(self._client(), await self._client().login(nick, password))
            case m.Ping():
                rtt = await self._client().ping()
                self.sink.show(notice(f"pong from {safe(self.host)} in {rtt * 1000:.0f} ms"))
            case m.Mode(room=room, changes=()):
                self._show_operator_event(await self._client().modes(room))
            case m.Mode(room=room, changes=changes):
                self._show_operator_event(await self._client().set_modes(room, *changes))
            case m.Kick(room=room, nick=nick, reason=reason):
                self._show_operator_event(await self._client().kick(room, nick, reason))
            case m.Invite(nick=nick, room=room):
                self._show_operator_event(await self._client().invite(nick, room))
            case m.Stats():
                self._show_operator_event(await self._client().stats())
            case _:  # a command the grammar knows and this client cannot carry out yet
                name = type(command).__name__.lower()
                raise Refused(f"/{name} is not available in the terminal client yet")

    def _show_operator_event(self, event: m.Event) -> None:
        line = roomops.render_text(event, safe)
        if line is not None:
            self.sink.show(notice(line.removeprefix("* ")))

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
            self._refused(with_hint(m.ErrorCode.NO_ROOM, "you are not in a room"))
            return
        client = self._client()
        pieces = self.outbox.add(target, split_text(text), kind)
        for n, piece in enumerate(pieces):
            try:
                ack = await client.send(piece.target, piece.text, kind=piece.kind, key=piece.key)
            except Refused as exc:
                for unsent in pieces[n:]:
                    self.outbox.settled(unsent)
                self._refused(safe(with_hint(exc.code, exc.text)))
                return
            except ConnectionClosed:
                # Stored or not, nobody can tell: the outbox sends it again after reconnecting,
                # under the same key, so it is posted once either way.
                self.sink.problem(
                    error_line(
                        "connection lost before the server acknowledged; sent again on reconnect"
                    )
                )
                return
            self.outbox.settled(piece)
            self._show_own(client, piece, ack)

    def _show_own(self, client: Client, piece: Unacked, ack: m.Ack) -> None:
        self.last_id = max(self.last_id, ack.id)
        msg = m.Message(
            id=ack.id,
            time=ack.time,
            sender=client.nick,
            target=ack.target,
            text=piece.text,
            kind=piece.kind,
        )
        self.sink.show(
            message_line(msg, me=client.nick, room=self.line_room(msg)),
            "own",
            (self.chat_of(msg),),
            msg.id,
        )

    async def _join(self, room: str) -> None:
        client = self._client()
        nicks = await client.join(room)
        room = self._canonical(client, room)
        self.members[room] = set(nicks)
        if room in self.rooms:
            self.rooms.remove(room)
        self.rooms.append(room)
        self.room = room
        self.sink.show(
            notice(f"you are in {safe(room)} with {_names(nicks, client.nick)}"), "info", (room,)
        )
        topic = client.topics.get(m.casefold(room))
        if topic is not None and topic.text:
            self.sink.show(topic_line(topic), "info", (room,))

    async def _part(self, room: str | None, reason: str) -> None:
        if room is None:
            raise Refused("you are not in a room")
        await self._client().part(room, reason)
        self.rooms = [r for r in self.rooms if m.casefold(r) != m.casefold(room)]
        self.members = {r: n for r, n in self.members.items() if m.casefold(r) != m.casefold(room)}
        if self.room is not None and m.casefold(self.room) == m.casefold(room):
            self.room = self.rooms[-1] if self.rooms else None
        now = f"; now in {safe(self.room)}" if self.room else ""
        self.sink.show(notice(f"you left {safe(room)}{now}"))

    async def _nick(self, nick: str) -> None:
        client = self._client()
        await client.set_nick(nick)  # the server explains what a nick may be
        self.nick = client.nick
        self.sink.show(notice(f"you are now known as {safe(client.nick)}"))

    async def _who(self, room: str | None) -> None:
        if room is None:
            raise Refused(f"usage: {COMMANDS['who'].usage}")
        client = self._client()
        nicks = await client.who(room)
        if room in self.rooms:
            self.members[room] = set(nicks)
        self.sink.show(notice(f"in {safe(room)}: {_names(nicks, client.nick)}"))

    async def _rooms(self) -> None:
        rooms = await self._client().list_rooms()
        if not rooms:
            self.sink.show(notice("rooms: none"))
            return
        self.sink.show(notice("rooms:"))
        for info in rooms:
            topic = f": {safe(info.topic)}" if info.topic else ""
            self.sink.show(notice(f"  {safe(info.name)} ({info.members}){topic}"))

    async def _topic(self, room: str | None, text: str | None) -> None:
        if room is None:
            raise Refused(f"usage: {COMMANDS['topic'].usage}")
        self.sink.show(topic_line(await self._client().topic(room, text)))

    async def _away(self, text: str) -> None:
        status = await self._client().away(text)
        self.away = status.text
        if status.text:
            self.sink.show(notice(f"you are away: {safe(status.text)}"))
        else:
            self.sink.show(notice("you are back"))

    async def _whois(self, nick: str) -> None:
        self.sink.show(notice(whois_text(await self._client().whois(nick))))

    async def _history(self, target: str | None, before: int | None, limit: int) -> None:
        """``/history [#ROOM|NICK] [ID]``: the page of messages before ``ID`` (or the newest)."""
        if target is None:
            raise Refused("usage: /history #ROOM|NICK [ID]")
        page = await self._client().history(target, before=before, limit=limit)
        if not page:
            self.sink.show(notice(f"no earlier messages in {safe(target)}"))
            return
        for msg in page:
            replayed = dataclasses.replace(msg, history=True)
            self.sink.show(
                message_line(replayed, me=self.me, room=self.line_room(msg)),
                "message",
                (self.chat_of(msg),),
                msg.id,
            )
        if len(page) == limit:  # a short page is the first one: nothing earlier to offer
            self.sink.show(
                notice(f"/history {safe(target)} {page[0].id} shows the messages before these")
            )

    def _logged_in(self, client: Client, token: str) -> None:
        """Keep the token for reconnects and the next run."""
        self.nick = client.nick
        self.credentials.keep(client, token)
        self.sink.show(notice(f"logged in as {safe(client.nick)}; this terminal stays logged in"))

    async def quit(self, reason: str = "") -> None:
        """Say goodbye to the server (if connected) and stop reconnecting."""
        self.quitting = True
        if unsent := len(self.outbox):
            self.sink.problem(error_line(f"{unsent} message(s) never acknowledged by the server"))
        client = self.client
        if client is not None:
            await client.aclose(reason)

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


def _names(nicks: tuple[str, ...], me: str) -> str:
    others = [safe(n) for n in nicks if m.casefold(n) != m.casefold(me)]
    return ", ".join(others) if others else "nobody else"
