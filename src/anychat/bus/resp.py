"""The bus's own two Redis connections: one to hear channels, one to send the batch script.

A busy room's messages come back from Redis many to a read. Handing them to the node one per
scheduling turn (what a general client's pub/sub helper does, with a task between the socket
and its reader) makes a busy node fall behind: its event loop turns a few hundred times a
second, so a few hundred messages a second is all that gets through, and each costs every
local recipient a ``send`` of its own. :class:`Subscriber` parses everything one read brings
and hands it over at once, then ``on_flush``, so each recipient gets one ``send`` for all of it.

:class:`Pipeline` writes a command the moment it is given and matches the replies in order, so
the batch script of one loop turn goes out while the last one's answer is on its way: the
node's messages wait for no round trip but their own. Redis runs one connection's commands in
the order written, which keeps the batches (and the ids they take) in accept order.

Only what the bus needs: RESP2 replies, ``AUTH`` and ``SELECT`` from the URL, plain TCP, TLS
(``rediss://``, verified against the system's CAs) or a Unix socket (``unix://path?db=N``).
coredis carries every other command.
"""

from __future__ import annotations

from collections import deque
from collections.abc import AsyncIterator, Callable
from contextlib import asynccontextmanager
from typing import Any, Final
from urllib.parse import parse_qs, unquote, urlsplit

import anyio
from anyio.abc import ByteStream

__all__ = ["Pipeline", "RedisReplyError", "Subscriber", "encode_command", "parse"]

READ_BYTES: Final = 262_144


class Incomplete(Exception):
    """The buffer ends in the middle of a reply: read more."""


def encode_command(*words: str) -> bytes:
    out = [b"*%d\r\n" % len(words)]
    for word in words:
        data = word.encode()
        out.append(b"$%d\r\n%s\r\n" % (len(data), data))
    return b"".join(out)


def parse(buf: bytes, pos: int) -> tuple[Any, int]:
    """One RESP2 reply from ``buf`` at ``pos``: (value, position after it). Bulk strings are
    ``bytes``, errors :class:`RedisReplyError` values; :class:`Incomplete` if it is cut."""
    end = buf.find(b"\r\n", pos)
    if end < 0:
        raise Incomplete
    kind, line = buf[pos : pos + 1], buf[pos + 1 : end]
    pos = end + 2
    if kind == b"$":
        size = int(line)
        if size < 0:
            return None, pos
        if len(buf) < pos + size + 2:
            raise Incomplete
        return buf[pos : pos + size], pos + size + 2
    if kind == b"*":
        items = []
        for _ in range(int(line)):
            item, pos = parse(buf, pos)
            items.append(item)
        return items, pos
    if kind == b":":
        return int(line), pos
    if kind == b"+":
        return line.decode(), pos
    if kind == b"-":
        return RedisReplyError(line.decode(errors="replace")), pos
    raise ConnectionError(f"not a Redis reply: {buf[pos - len(line) - 3 : pos]!r}")


class RedisReplyError(Exception):
    """An error reply (kept as a value while parsing, raised by whoever waits for it)."""


async def _connect(url: str, *, select: bool) -> ByteStream:
    """A connection to the Redis of ``url``, authenticated (and on its database)."""
    parts = urlsplit(url)
    host, port = parts.hostname or "127.0.0.1", parts.port or 6379
    stream: ByteStream
    if parts.scheme == "unix":
        stream = await anyio.connect_unix(parts.path)
        db = parse_qs(parts.query).get("db", [""])[0]
    else:
        if parts.scheme == "rediss":
            stream = await anyio.connect_tcp(host, port, tls=True, tls_hostname=host)
        else:
            stream = await anyio.connect_tcp(host, port)
        db = parts.path.strip("/")
    words: list[list[str]] = []
    if parts.password is not None:
        user = [unquote(parts.username)] if parts.username else []
        words.append(["AUTH", *user, unquote(parts.password)])
    if select and db and db != "0":
        words.append(["SELECT", db])
    try:
        for command in words:
            await stream.send(encode_command(*command))
            buf = b""
            while True:
                buf += await stream.receive()
                try:
                    reply, _ = parse(buf, 0)
                    break
                except Incomplete:
                    continue
            if isinstance(reply, RedisReplyError):
                raise ConnectionError(f"Redis refused {command[0]}: {reply}")
    except BaseException:
        await anyio.aclose_forcefully(stream)
        raise
    return stream


async def _replies(stream: ByteStream, each: Callable[[Any], bool]) -> None:
    """Read until the connection ends: every reply to ``each`` (true if it was a message);
    after a read that brought messages, ``each(_FLUSH)``."""
    buf = b""
    while True:
        try:
            chunk = await stream.receive(READ_BYTES)
        except (anyio.EndOfStream, anyio.BrokenResourceError) as exc:
            raise ConnectionError("Redis closed the connection") from exc
        buf = buf + chunk if buf else chunk
        pos, heard = 0, False
        while pos < len(buf):
            try:
                reply, pos_after = parse(buf, pos)
            except Incomplete:
                break
            pos = pos_after
            heard = each(reply) or heard
        buf = buf[pos:]
        if heard:
            each(_FLUSH)


_FLUSH: Final = object()


class Subscriber:
    """The subscriber connection: :meth:`subscribe` waits for Redis's confirmation.

    Messages read before :meth:`start` wait for it, in order (a node subscribes, reads the
    directory, then starts hearing).
    """

    def __init__(self, stream: ByteStream) -> None:
        self._stream = stream
        self._confirming: dict[str, deque[anyio.Event]] = {}
        self._early: list[str] | None = []
        self.on_message: Callable[[str], None] = lambda data: None
        self.on_flush: Callable[[], None] = lambda: None

    @classmethod
    @asynccontextmanager
    async def open(cls, url: str) -> AsyncIterator[Subscriber]:
        """Subscribe-ready until the block ends; losing the connection raises
        ``ConnectionError`` out of it."""
        stream = await _connect(url, select=False)  # channels belong to no database
        async with stream, anyio.create_task_group() as tg:
            subscriber = cls(stream)
            tg.start_soon(_replies, stream, subscriber._dispatch)
            yield subscriber
            tg.cancel_scope.cancel()

    async def subscribe(self, *channels: str) -> None:
        events = []
        for channel in channels:
            event = anyio.Event()
            self._confirming.setdefault(channel, deque()).append(event)
            events.append(event)
        await self._stream.send(encode_command("SUBSCRIBE", *channels))
        for event in events:
            await event.wait()

    async def unsubscribe(self, *channels: str) -> None:
        """Stop hearing ``channels`` (what Redis sent before it took this is still heard)."""
        await self._stream.send(encode_command("UNSUBSCRIBE", *channels))

    def start(self, on_message: Callable[[str], None], on_flush: Callable[[], None]) -> None:
        """Hand every message to ``on_message`` from now on (first those read already)."""
        early, self._early = self._early or [], None
        self.on_message, self.on_flush = on_message, on_flush
        for data in early:
            on_message(data)
        on_flush()

    def _dispatch(self, reply: Any) -> bool:
        """Act on one reply; True if it was a message."""
        if reply is _FLUSH:
            if self._early is None:
                self.on_flush()
            return False
        if isinstance(reply, list) and len(reply) == 3 and isinstance(reply[0], bytes):
            kind = reply[0]
            if kind == b"message":
                data = reply[2].decode(errors="replace")  # not JSON then: dropped later
                if self._early is not None:
                    self._early.append(data)
                else:
                    self.on_message(data)
                return True
            if kind == b"subscribe":
                channel = reply[1].decode(errors="replace")
                waiting = self._confirming.get(channel)
                if waiting:
                    waiting.popleft().set()
                    if not waiting:
                        del self._confirming[channel]
                return False
            if kind == b"unsubscribe":
                return False
        if isinstance(reply, RedisReplyError):
            raise ConnectionError(f"Redis refused a subscription: {reply}")
        return False


class Pipeline:
    """Commands written at once, each reply handed (in order) to what its sender gave."""

    def __init__(self, stream: ByteStream) -> None:
        self._stream = stream
        self._then: deque[Callable[[Any], None]] = deque()

    @classmethod
    @asynccontextmanager
    async def open(cls, url: str) -> AsyncIterator[Pipeline]:
        stream = await _connect(url, select=True)
        async with stream, anyio.create_task_group() as tg:
            pipeline = cls(stream)
            tg.start_soon(_replies, stream, pipeline._dispatch)
            yield pipeline
            tg.cancel_scope.cancel()

    async def send(self, words: list[str], then: Callable[[Any], None]) -> None:
        """Write the command now; ``then`` gets its reply (an error reply as a
        :class:`RedisReplyError` value) when it comes."""
        self._then.append(then)
        await self._stream.send(encode_command(*words))

    async def call(self, *words: str) -> Any:
        """The command's reply, awaited; an error reply raises ``ConnectionError``."""
        done, box = anyio.Event(), list[Any]()

        def then(reply: Any) -> None:
            box.append(reply)
            done.set()

        await self.send(list(words), then)
        await done.wait()
        if isinstance(box[0], RedisReplyError):
            raise ConnectionError(f"Redis refused {words[0]}: {box[0]}")
        return box[0]

    def _dispatch(self, reply: Any) -> bool:
        if reply is not _FLUSH:
            self._then.popleft()(reply)
        return False
