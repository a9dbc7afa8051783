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

import itertools
import os
import socket
from collections.abc import AsyncIterator, Callable
from contextlib import asynccontextmanager
from typing import TypeVar

import anyio
from anyio.abc import SocketStream
from anyio.streams.memory import MemoryObjectReceiveStream, MemoryObjectSendStream

from . import model as m
from ._groups import unwrap_single
from .codecs.jsonl import JsonClientCodec
from .config import DEFAULT_PORT
from .errors import ConnectError, ConnectionClosed, ProtocolError, error_for

__all__ = ["Client", "connect"]

E = TypeVar("E", bound=m.Event)

#: Events queued for the application before the reader stops reading (and TCP pushes back).
EVENT_QUEUE_SIZE = 10_000


class _Reply:
    """A one-shot slot for the reply to one request."""

    __slots__ = ("done", "event", "expect")

    def __init__(self, expect: type[object]) -> None:
        self.expect = expect
        self.done = anyio.Event()
        self.event: m.Event | None = None


class Client:
    """A connected, registered chat client. Create it with :func:`connect`."""

    def __init__(self, stream: SocketStream, *, timeout: float) -> None:
        self._stream = stream
        self._codec = JsonClientCodec()
        self._timeout = timeout
        self._send_lock = anyio.Lock()
        self._refs = itertools.count(1)
        self._pending: dict[m.Ref, _Reply] = {}
        self._events_in: MemoryObjectSendStream[m.Event]
        self._events_out: MemoryObjectReceiveStream[m.Event]
        self._events_in, self._events_out = anyio.create_memory_object_stream[m.Event](
            EVENT_QUEUE_SIZE
        )
        self._reader_done = anyio.Event()
        #: Why the connection ended, once it has.
        self.closed_reason: str | None = None
        self.closed_code: m.ErrorCode | None = None
        #: Our nick as the server knows it (updated on nick changes).
        self.nick = ""
        self.server = ""
        #: Rooms we are in, as the server named them.
        self.rooms: set[str] = set()

    # ------------------------------------------------------------- requests

    async def send(self, target: str, text: str, *, kind: m.Kind = m.Kind.PLAIN) -> m.Ack:
        """Say ``text`` to a room or a nick; returns the server's ack (message id and time)."""
        return await self._request(
            lambda ref: m.Say(target=target, text=text, kind=kind, ref=ref), m.Ack
        )

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

    async def list_rooms(self) -> tuple[m.RoomInfo, ...]:
        listing = await self._request(lambda ref: m.ListRooms(ref=ref), m.RoomList)
        return listing.rooms

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

    async def _request(self, make: Callable[[m.Ref], m.Command], expect: type[E]) -> E:
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
            case m.Parted(room=room, nick=nick) if nick == self.nick:
                self.rooms.discard(room)

    async def _run_reader(self) -> None:
        try:
            async for data in self._stream:
                try:
                    events = self._codec.feed(data)
                except ValueError as exc:
                    self.closed_reason = f"server broke the protocol: {exc}"
                    return
                for event in events:
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
                    await self._events_in.send(event)
        except (anyio.BrokenResourceError, anyio.ClosedResourceError, OSError) as exc:
            self.closed_reason = self.closed_reason or f"connection lost: {exc}"
        finally:
            self.closed_reason = self.closed_reason or "server closed the connection"
            self._events_in.close()
            for reply in self._pending.values():
                reply.done.set()
            self._reader_done.set()

    async def aclose(self, reason: str = "") -> None:
        """Say goodbye, wait briefly for the server's goodbye, and close.

        Leaving the ``async with`` block of :func:`connect` does this.
        """
        with anyio.CancelScope(shield=True):
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


@asynccontextmanager
async def connect(
    host: str = "127.0.0.1",
    port: int = DEFAULT_PORT,
    *,
    nick: str | None = None,
    autojoin: bool = True,
    timeout: float = 10.0,
) -> AsyncIterator[Client]:
    """Connect, register with ``nick`` (a guest nick if ``None``) and yield the client.

    Raises:
        ConnectError: The server could not be reached.
        NickInUse, InvalidNick: The server refused the nick.
    """
    try:
        with anyio.fail_after(timeout):
            stream = await anyio.connect_tcp(host, port)
    except TimeoutError:
        raise ConnectError(host, port, f"no answer within {timeout} s") from None
    except OSError as exc:
        # anyio wraps the attempts' errors in "All connection attempts failed": name the cause.
        raise ConnectError(host, port, _reason(exc)) from None
    client = Client(stream, timeout=timeout)
    try:
        with unwrap_single():
            async with anyio.create_task_group() as tg:
                tg.start_soon(client._run_reader)
                welcome = await client._request(
                    lambda ref: m.Hello(nick=nick, autojoin=autojoin, ref=ref), m.Welcome
                )
                client.nick = welcome.nick
                client.server = welcome.server
                try:
                    yield client
                finally:
                    await client.aclose()
                    tg.cancel_scope.cancel()
    except BaseException:
        await anyio.aclose_forcefully(stream)
        raise
    finally:
        client._events_in.close()
        client._events_out.close()
