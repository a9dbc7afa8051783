"""The Python client: ``async with anychat.connect(host, port, nick=...) as client``.

Same code on asyncio and trio. The client speaks JSON lines through the sans-IO
:class:`~anychat.codecs.jsonl.JsonClientCodec`. A reader task (in the client's own task group)
parses everything the server sends: replies to requests (matched by ``ref``) go to the call that
is waiting for them; everything else (messages, joins, parts...) is queued for the application,
which reads it with ``async for event in client`` or :meth:`Client.receive`.

Backpressure: the event queue is bounded. An application that stops reading makes the reader
stop, TCP fills up, and the server eventually cuts the client as a slow consumer; the client never
buffers without limit.
"""

from __future__ import annotations

import dataclasses
import itertools
import os
import secrets
import socket
import ssl
from collections.abc import AsyncIterator, Callable
from contextlib import asynccontextmanager
from functools import partial
from typing import TypeVar

import anyio
from anyio.abc import ByteStream
from anyio.streams.memory import MemoryObjectReceiveStream, MemoryObjectSendStream
from anyio.streams.tls import TLSAttribute, TLSStream

from . import model as m
from ._groups import unwrap_single
from .codecs.jsonl import JsonClientCodec
from .config import DEFAULT_PORT
from .errors import (
    ChatError,
    ConnectError,
    ConnectionClosed,
    LoginFailed,
    ProtocolError,
    Refused,
    error_for,
)

__all__ = ["Client", "connect"]

E = TypeVar("E", bound=m.Event)

#: Events queued for the application before the reader stops reading (and TCP pushes back).
EVENT_QUEUE_SIZE = 10_000
#: History page size used to catch up after a reconnect (the server's maximum).
MAX_PAGE = 500


class _Reply:
    """A one-shot slot for the reply to one request."""

    __slots__ = ("done", "event", "expect")

    def __init__(self, expect: type[object]) -> None:
        self.expect = expect
        self.done = anyio.Event()
        self.event: m.Event | None = None


class Client:
    """A connected, registered chat client. Create it with :func:`connect`."""

    def __init__(
        self,
        stream: ByteStream,
        *,
        timeout: float,
        reconnect: bool = False,
        reconnect_delay: float = 0.5,
        address: tuple[str, int] | None = None,
        password: str | None = None,
        tls: ssl.SSLContext | None = None,
        history: bool = False,
    ) -> None:
        self._stream = stream
        self._tls = tls
        self._history = history
        self._reconnect = reconnect
        self._reconnect_delay = reconnect_delay
        self._address = address
        self._password = password
        #: Messages held back while resuming, merged with the missed ones in id order.
        self._buffer: list[m.Message] | None = None
        #: Between a drop and a completed resume: application requests fail fast (sends wait
        #: for ``_up`` and go again, see :meth:`send`).
        self._down = False
        self._up = anyio.Event()
        self._up.set()
        #: Idempotency keys of this client's messages: unique per client object, so a resend
        #: after a reconnect is recognised by the server and stored once.
        self._key_prefix = secrets.token_urlsafe(12)
        self._keys = itertools.count(1)
        self._closing = False
        self._broken = False
        self._codec = JsonClientCodec()
        self._timeout = timeout
        self._send_lock = anyio.Lock()
        self._refs = itertools.count(1)
        self._pending: dict[m.Ref, _Reply] = {}
        self._events_in: MemoryObjectSendStream[m.Event]
        self._events_out: MemoryObjectReceiveStream[m.Event]
        self._events_in, self._events_out = anyio.create_memory_object_stream(EVENT_QUEUE_SIZE)
        self._reader_done = anyio.Event()
        #: Why the connection ended, once it has.
        self.closed_reason: str | None = None
        self.closed_code: m.ErrorCode | None = None
        #: Our nick as the server knows it (updated on nick changes).
        self.nick = ""
        self.server = ""
        #: Rooms we are in, as the server named them.
        self.rooms: set[str] = set()
        #: Room (casefolded) -> its topic, as last heard (on joining, or set since).
        self.topics: dict[str, m.RoomTopic] = {}
        #: The login token from the server (after a password login or a registration).
        self.token: str | None = None
        #: The highest message id this client has seen (received, or acked for its own).
        self.last_id = 0

    # ------------------------------------------------------------- transport

    @property
    def tls_version(self) -> str | None:
        """``"TLSv1.3"`` and the like on an encrypted connection; ``None`` in plaintext."""
        return self._stream.extra(TLSAttribute.tls_version, None)

    @property
    def tls_verified(self) -> bool:
        """Encrypted, and the server's certificate and host name were checked."""
        return (
            self._tls is not None
            and self._tls.verify_mode != ssl.CERT_NONE
            and self.tls_version is not None
        )

    # ------------------------------------------------------------- requests

    async def send(
        self, target: str, text: str, *, kind: m.Kind = m.Kind.PLAIN, key: str | None = None
    ) -> m.Ack:
        """Say ``text`` to a room or a nick; returns the server's ack (message id and time).

        Every message carries an idempotency ``key`` (a fresh one unless given). With
        ``reconnect=True`` a send whose connection drops before the ack arrives waits for the
        reconnect and goes again with the same key: the server answers a message it already
        has with the original ack, so the message is stored and relayed exactly once.
        """
        key = key or f"{self._key_prefix}-{next(self._keys)}"

        def say(ref: m.Ref) -> m.Command:
            return m.Say(target=target, text=text, kind=kind, ref=ref, key=key)

        while True:
            try:
                return await self._request(say, m.Ack)
            except ConnectionClosed:
                if not (self._reconnect and self._down) or self._reader_done.is_set():
                    raise
            await self._up.wait()  # the resume finished, or the client closed for good
            if self._down or self._reader_done.is_set():
                raise ConnectionClosed(self.closed_reason or "connection closed", self.closed_code)

    async def action(self, target: str, text: str) -> m.Ack:
        """``/me``: ``* nick text``."""
        return await self.send(target, text, kind=m.Kind.ACTION)

    async def join(self, room: str) -> tuple[str, ...]:
        """Join ``room`` (creating it if needed); returns its members."""
        members = await self._request(lambda ref: m.Join(room=room, ref=ref), m.Members)
        self.rooms.add(members.room)
        return members.nicks

    async def part(self, room: str, reason: str = "") -> None:
        parted = await self._request(
            lambda ref: m.Part(room=room, reason=reason, ref=ref), m.Parted
        )
        self.rooms.discard(parted.room)

    async def set_nick(self, nick: str) -> None:
        changed = await self._request(lambda ref: m.Nick(nick=nick, ref=ref), m.NickChanged)
        self.nick = changed.new

    async def who(self, room: str) -> tuple[str, ...]:
        members = await self._request(lambda ref: m.Who(room=room, ref=ref), m.Members)
        return members.nicks

    async def set_modes(self, room: str, *changes: m.ModeChange) -> m.ModeChanged:
        """Change ``room``'s modes (operators only): ``ModeChange(mode="o", arg="bob")`` gives
        bob operator status; returns what changed (``changes`` empty when nothing did)."""
        return await self._request(
            lambda ref: m.Mode(room=room, changes=changes, ref=ref), m.ModeChanged
        )

    async def modes(self, room: str) -> m.RoomModes:
        return await self._request(lambda ref: m.Mode(room=room, ref=ref), m.RoomModes)

    async def kick(self, room: str, nick: str, reason: str = "") -> m.Kicked:
        return await self._request(
            lambda ref: m.Kick(room=room, nick=nick, reason=reason, ref=ref), m.Kicked
        )

    async def invite(self, nick: str, room: str) -> m.Invited:
        return await self._request(lambda ref: m.Invite(nick=nick, room=room, ref=ref), m.Invited)

    async def stats(self) -> m.ServerStats:
        return await self._request(lambda ref: m.Stats(ref=ref), m.ServerStats)

    async def list_rooms(self) -> tuple[m.RoomInfo, ...]:
        listing = await self._request(lambda ref: m.ListRooms(ref=ref), m.RoomList)
        return listing.rooms

    async def topic(self, room: str | None = None, text: str | None = None) -> m.RoomTopic:
        """A room's topic (``room`` ``None``: the current room); with ``text``, set it first
        (``""`` clears it)."""
        return await self._request(lambda ref: m.Topic(room=room, text=text, ref=ref), m.RoomTopic)

    async def away(self, text: str = "") -> m.AwayStatus:
        """Mark yourself away with ``text`` (``""``: back again)."""
        return await self._request(lambda ref: m.Away(text=text, ref=ref), m.AwayStatus)

    async def whois(self, nick: str) -> m.UserInfo:
        """Who ``nick`` is: rooms, away message, connected since."""
        return await self._request(lambda ref: m.Whois(nick=nick, ref=ref), m.UserInfo)

    async def register(self, password: str) -> str:
        """Claim the current nick with ``password``; returns the login token."""
        logged = await self._request(lambda ref: m.Register(password=password, ref=ref), m.LoggedIn)
        return logged.token

    async def login(
        self, nick: str | None = None, password: str | None = None, *, token: str | None = None
    ) -> str:
        """Log in to an account (password, or a token); returns a fresh token.

        Raises:
            LoginFailed: Wrong nick or password (TokenExpired, TokenInvalid for tokens).
        """
        logged = await self._request(
            lambda ref: m.Login(nick=nick, password=password, token=token, ref=ref), m.LoggedIn
        )
        return logged.token

    async def history(
        self,
        target: str | None = None,
        *,
        before: int | None = None,
        after: int | None = None,
        limit: int = 50,
    ) -> list[m.Message]:
        """Stored messages of a room (or of the private chat with a nick), in id order.

        Without ``after``: the newest ``limit`` older than ``before``; with ``after``: the oldest
        ``limit`` newer than it. Your own nick as ``target`` gives all your private messages.
        """
        page = await self._request(
            lambda ref: m.History(target=target, before=before, after=after, limit=limit, ref=ref),
            m.HistoryPage,
        )
        return list(page.messages)

    async def ping(self) -> float:
        """Round-trip time to the server in seconds."""
        start = anyio.current_time()
        await self._request(lambda ref: m.Ping(token="ping", ref=ref), m.Pong)
        return anyio.current_time() - start

    # ------------------------------------------------------------- events

    async def receive(self) -> m.Event:
        """The next event that is not a reply to our own request.

        Raises :class:`ConnectionClosed` once the connection has ended and all events were read.
        """
        try:
            return await self._events_out.receive()
        except anyio.EndOfStream:
            raise ConnectionClosed(
                self.closed_reason or "connection closed", self.closed_code
            ) from None

    async def wait_for(self, kind: type[E], predicate: Callable[[E], bool] = lambda e: True) -> E:
        """Skip events until one of type ``kind`` that satisfies ``predicate`` arrives."""
        while True:
            event = await self.receive()
            if isinstance(event, kind) and predicate(event):
                return event

    def __aiter__(self) -> Client:
        return self

    async def __anext__(self) -> m.Event:
        # A plain iterator, not an async generator: leaving an ``async for`` early must not
        # leave a generator for the event loop to finalise (trio warns about those).
        try:
            return await self._events_out.receive()
        except (anyio.EndOfStream, anyio.ClosedResourceError):
            raise StopAsyncIteration from None

    # ------------------------------------------------------------- plumbing

    async def _send(self, command: m.Command) -> None:
        if self.closed_reason is not None:
            raise ConnectionClosed(self.closed_reason, self.closed_code)
        data = self._codec.encode(command)
        try:
            async with self._send_lock:
                await self._stream.send(data)
        except (anyio.BrokenResourceError, anyio.ClosedResourceError, OSError) as exc:
            raise ConnectionClosed(f"connection lost: {exc}") from exc

    async def _request(
        self, make: Callable[[m.Ref], m.Command], expect: type[E], *, internal: bool = False
    ) -> E:
        if self._down and not internal:
            raise ConnectionClosed("connection lost; reconnecting")
        ref = next(self._refs)
        reply = self._pending[ref] = _Reply(expect)
        try:
            await self._send(make(ref))
            with anyio.fail_after(self._timeout):
                await reply.done.wait()
        except TimeoutError:
            raise ConnectionClosed(f"no reply from the server within {self._timeout} s") from None
        finally:
            del self._pending[ref]
        event = reply.event
        if event is None:
            raise ConnectionClosed(self.closed_reason or "connection closed", self.closed_code)
        if isinstance(event, m.Error):
            raise error_for(event.code, event.text, event.ref)
        if not isinstance(event, expect):
            raise ProtocolError(f"expected {expect.__name__} in reply, got {event!r}")
        return event

    def _track(self, event: m.Event) -> None:
        """Keep ``nick`` and ``rooms`` true to what the server says about us."""
        match event:
            case m.Welcome(nick=nick):
                self.nick = nick
            case m.NickChanged(old=old, new=new) if old == self.nick:
                self.nick = new
            case m.Joined(room=room, nick=nick) if nick == self.nick:
                self.rooms.add(room)
            case m.Parted(room=room, nick=nick) | m.Kicked(room=room, nick=nick) if (
                nick == self.nick
            ):
                self.rooms.discard(room)
                self.topics.pop(m.casefold(room), None)
            case m.RoomTopic(room=room):
                self.topics[m.casefold(room)] = event
            case m.LoggedIn(nick=nick, token=token):
                self.nick = nick
                self.token = token
            case m.Message(id=msg_id) | m.Ack(id=msg_id) if msg_id > self.last_id:
                self.last_id = msg_id

    async def _read_stream(self) -> None:
        """Read one connection until it ends; replies go to their callers, the rest is queued."""
        try:
            async for data in self._stream:
                try:
                    events = self._codec.feed(data)
                except ValueError as exc:
                    self.closed_reason = f"server broke the protocol: {exc}"
                    self._broken = True
                    return
                for event in events:
                    if self._buffer is not None and isinstance(event, m.Message):
                        self._buffer.append(event)  # resuming: merged in id order later
                        continue
                    self._track(event)
                    ref = getattr(event, "ref", None)
                    if ref is not None:
                        # A reply. Requests may get several (a join gets Joined, then Members):
                        # the awaited one is of the expected type, or an Error.
                        reply = self._pending.get(ref)
                        if reply is not None and isinstance(event, reply.expect | m.Error):
                            reply.event = event
                            reply.done.set()
                        continue
                    if isinstance(event, m.Bye):
                        self.closed_reason = event.reason
                        self.closed_code = event.code
                        if self._reconnect and self._may_reconnect():
                            continue  # the application sees the reconnect, not the goodbye
                    if isinstance(event, m.Message) and event.history and not self._history:
                        continue  # replayed on joining: only for clients that asked for it
                    await self._events_in.send(event)
        except (anyio.BrokenResourceError, anyio.ClosedResourceError, OSError) as exc:
            self.closed_reason = self.closed_reason or f"connection lost: {exc}"
        finally:
            self.closed_reason = self.closed_reason or "server closed the connection"
            if self._reconnect and self._may_reconnect() and not self._down:
                # Before the waiting requests wake: a send sees the drop and waits to go again.
                self._down = True
                self._up = anyio.Event()
            for reply in self._pending.values():
                reply.done.set()

    def _may_reconnect(self) -> bool:
        return not (
            self._closing
            or self._broken
            or self.closed_code in (m.ErrorCode.LOGGED_IN_ELSEWHERE, m.ErrorCode.LOGIN_REQUIRED)
        )

    async def _run_reader(self) -> None:
        """The reader task; with ``reconnect`` it redials after a drop and resumes."""
        try:
            resume = False
            while True:
                async with anyio.create_task_group() as tg:
                    if resume:
                        tg.start_soon(self._resume)
                    await self._read_stream()
                    tg.cancel_scope.cancel()
                self._buffer = None
                if not (self._reconnect and self._may_reconnect()):
                    return
                if not self._down:
                    self._down = True
                    self._up = anyio.Event()
                await anyio.aclose_forcefully(self._stream)
                if not await self._redial():
                    return
                resume = True
        finally:
            self._events_in.close()
            for reply in self._pending.values():
                reply.done.set()
            self._reader_done.set()
            self._up.set()  # sends waiting for a reconnect give up

    async def _redial(self) -> bool:
        """Connect again, with growing pauses; False if the client was closed meanwhile."""
        assert self._address is not None
        delay = self._reconnect_delay
        while not self._closing:
            await anyio.sleep(delay)
            try:
                self._stream = await _open_stream(*self._address, self._tls, self._timeout)
            except OSError:  # ConnectError included
                delay = min(delay * 2, 10.0)
                continue
            self._codec = JsonClientCodec()
            self._buffer = []
            self.closed_reason = None
            self.closed_code = None
            return True
        return False

    async def _resume(self) -> None:
        """Log in again, rejoin, and queue exactly the messages missed since ``last_id``."""
        since = self.last_id
        try:
            if self.token is not None:
                hello = m.Hello(nick=self.nick, token=self.token, autojoin=False)
            elif self._password is not None:
                hello = m.Hello(nick=self.nick, password=self._password, autojoin=False)
            else:
                hello = m.Hello(nick=self.nick, autojoin=False)
            try:
                await self._request(
                    lambda ref: dataclasses.replace(hello, ref=ref), m.Welcome, internal=True
                )
            except LoginFailed:
                if hello.token is None or self._password is None:
                    raise
                # The token no longer works (expired, or the server's secret changed): the
                # password still does.
                retry = m.Hello(nick=self.nick, password=self._password, autojoin=False)
                await self._request(
                    lambda ref: dataclasses.replace(retry, ref=ref), m.Welcome, internal=True
                )
            except Refused:
                if hello.password is not None or hello.token is not None:
                    raise
                await self._request(
                    lambda ref: m.Hello(autojoin=False, ref=ref), m.Welcome, internal=True
                )
            missed: dict[int, m.Message] = {}
            targets = sorted(self.rooms)
            for room in targets:
                await self._request(partial(_join, room), m.Members, internal=True)
            if self.token is not None:
                targets.append(self.nick)
            for target in targets:
                after = since
                while True:
                    page = await self._request(
                        partial(_catch_up, target, after), m.HistoryPage, internal=True
                    )
                    for msg in page.messages:
                        missed[msg.id] = msg
                    if len(page.messages) < MAX_PAGE:
                        break
                    after = page.messages[-1].id
        except Refused as exc:
            # Cannot log in again (token expired, account gone...): stop for good.
            self.closed_reason = f"cannot resume after reconnecting: {exc}"
            self._closing = True
            await anyio.aclose_forcefully(self._stream)
            return
        except ConnectionClosed:
            return  # dropped again; the reader loop redials
        buffered = self._buffer or []
        self._buffer = None
        for msg in buffered:
            missed.setdefault(msg.id, msg)
        for msg_id in sorted(missed):
            if msg_id > since:
                self._track(missed[msg_id])
                await self._events_in.send(missed[msg_id])
        self._down = False
        self._up.set()

    async def aclose(self, reason: str = "") -> None:
        """Say goodbye, wait briefly for the server's goodbye, and close.

        Leaving the ``async with`` block of :func:`connect` does this.
        """
        with anyio.CancelScope(shield=True):
            self._closing = True
            # Nobody reads events any more: a reader blocked on a full queue must not hang us.
            self._events_out.close()
            if self.closed_reason is None:
                with anyio.move_on_after(self._timeout):
                    try:
                        await self._send(m.Quit(reason=reason))
                        await self._reader_done.wait()
                    except ConnectionClosed:
                        pass
            await self._stream.aclose()


def _reason(exc: OSError) -> str:
    """A short reason for a failed connect ("Connection refused", "Name or service not known").

    anyio wraps the attempts' errors in "All connection attempts failed"; asyncio's own message
    repeats the address we already name.
    """
    cause = exc.__cause__ if isinstance(exc.__cause__, OSError) else exc
    if isinstance(cause, socket.gaierror) or not cause.errno or cause.errno < 0:
        return cause.strerror or str(cause)
    return os.strerror(cause.errno)


def _tls_context(
    tls: bool | ssl.SSLContext, ca_file: str | os.PathLike[str] | None
) -> ssl.SSLContext | None:
    if isinstance(tls, ssl.SSLContext):
        return tls
    if not tls and ca_file is None:
        return None
    from .tlsconfig import client_context

    return client_context(ca_file=ca_file)


async def _open_stream(
    host: str, port: int, tls: ssl.SSLContext | None, timeout: float
) -> ByteStream:
    """TCP, then the TLS handshake if asked; every failure is a :class:`ConnectError`."""
    try:
        with anyio.fail_after(timeout):
            stream = await anyio.connect_tcp(host, port)
            if tls is None:
                return stream
            try:
                # Not "standard compatible": a server closing without close_notify at the end
                # of a line-framed chat loses nothing (as HTTPS clients treat it too).
                return await TLSStream.wrap(
                    stream, hostname=host, ssl_context=tls, standard_compatible=False
                )
            except BaseException:
                await anyio.aclose_forcefully(stream)
                raise
    except TimeoutError:
        raise ConnectError(host, port, f"no answer within {timeout} s") from None
    except ssl.SSLCertVerificationError as exc:
        from .tlsconfig import describe_verify_error

        raise ConnectError(host, port, describe_verify_error(exc, host)) from None
    except ssl.SSLError as exc:
        from .tlsconfig import describe_tls_error

        raise ConnectError(host, port, describe_tls_error(exc)) from None
    except (anyio.EndOfStream, anyio.BrokenResourceError):
        raise ConnectError(
            host,
            port,
            "the server closed the connection during the TLS handshake "
            "(does it serve TLS on this port?)",
        ) from None
    except OSError as exc:
        # anyio wraps the attempts' errors in "All connection attempts failed": name the cause.
        raise ConnectError(host, port, _reason(exc)) from None


def _join(room: str, ref: m.Ref) -> m.Command:
    return m.Join(room=room, ref=ref)


def _catch_up(target: str, after: int, ref: m.Ref) -> m.Command:
    return m.History(target=target, after=after, limit=MAX_PAGE, ref=ref)


@asynccontextmanager
async def connect(
    host: str = "127.0.0.1",
    port: int = DEFAULT_PORT,
    *,
    nick: str | None = None,
    autojoin: bool = True,
    timeout: float = 10.0,
    password: str | None = None,
    token: str | None = None,
    reconnect: bool = False,
    reconnect_delay: float = 0.5,
    tls: bool | ssl.SSLContext = False,
    tls_ca: str | os.PathLike[str] | None = None,
    history: bool = False,
) -> AsyncIterator[Client]:
    """Connect, register with ``nick`` (a guest nick if ``None``) and yield the client.

    With ``password`` (or a ``token`` from an earlier login, ``client.token``) the client logs
    in to the account ``nick``. With ``reconnect=True`` a dropped connection (or a server
    restart) is redialled with growing pauses; the client logs in again, rejoins its rooms and
    queues exactly the messages it missed since the last id it saw, in id order, before any new
    ones. Requests made while it is reconnecting raise :class:`ConnectionClosed`.

    ``tls=True`` encrypts the connection and verifies the server's certificate against the
    system's trust store and ``host``; ``tls_ca`` (a PEM file, implies ``tls``) trusts only that
    CA instead (a private CA, or a self-signed certificate); ``tls`` may also be an
    ``ssl.SSLContext`` of your own.

    ``history``: also yield the messages a room replays on joining (``event.history`` is true
    for those). Off by default, so a bot's ``async for event in client`` sees only what is said
    from now on; :meth:`Client.history` fetches earlier messages explicitly.

    Raises:
        ConnectError: The server could not be reached, or its TLS certificate was refused
            (the reason says which: expired, another host name, an unknown CA).
        NickInUse, InvalidNick, NickRegistered: The server refused the nick.
        LoginFailed: Wrong nick or password (TokenExpired, TokenInvalid for a token).
    """
    context = _tls_context(tls, tls_ca)
    stream = await _open_stream(host, port, context, timeout)
    client = Client(
        stream,
        timeout=timeout,
        reconnect=reconnect,
        reconnect_delay=reconnect_delay,
        address=(host, port),
        password=password,
        tls=context,
        history=history,
    )
    refused: ChatError | None = None
    try:
        with unwrap_single():
            async with anyio.create_task_group() as tg:
                tg.start_soon(client._run_reader)
                try:
                    welcome = await client._request(
                        lambda ref: m.Hello(
                            nick=nick, autojoin=autojoin, password=password, token=token, ref=ref
                        ),
                        m.Welcome,
                    )
                except ChatError as exc:  # raised plainly below, not inside an exception group
                    refused = exc
                    client._closing = True
                    tg.cancel_scope.cancel()
                else:
                    client.nick = welcome.nick
                    client.server = welcome.server
                    try:
                        yield client
                    finally:
                        await client.aclose()
                        tg.cancel_scope.cancel()
    except BaseException:
        await anyio.aclose_forcefully(client._stream)
        raise
    finally:
        client._events_in.close()
        client._events_out.close()
    if refused is not None:
        client._events_out.close()
        await anyio.aclose_forcefully(client._stream)
        raise refused
