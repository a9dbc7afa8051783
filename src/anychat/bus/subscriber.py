"""A node's subscription to Redis channels: one connection of its own, read in whole chunks.

A busy room's messages come back from Redis many to a read. Handing them to the node one per
scheduling turn (what a general client's pub/sub helper does, with a task between the socket
and its reader) makes a busy node fall behind: its event loop turns a few hundred times a
second, so a few hundred messages a second is all that gets through, and each costs every
local recipient a ``send`` of its own. Here everything one read brings is parsed and handed
over at once, and ``on_flush`` follows, so each recipient gets one ``send`` for all of it.

Only what a subscriber needs: RESP2 replies to ``SUBSCRIBE``/``UNSUBSCRIBE`` (confirmations
and ``message`` pushes), ``AUTH`` from the URL, plain TCP or TLS (``rediss://``). Messages
read before :meth:`Subscriber.start` wait for it (a node subscribes, reads the directory,
then starts hearing), in order.
"""

from __future__ import annotations

from collections import deque
from collections.abc import AsyncIterator, Callable
from contextlib import asynccontextmanager
from typing import Any, Final
from urllib.parse import unquote, urlsplit

import anyio
from anyio.abc import ByteStream

__all__ = ["Subscriber", "encode_command", "parse"]

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


class Subscriber:
    """The subscriber connection: :meth:`subscribe` waits for Redis's confirmation."""

    def __init__(self, stream: ByteStream) -> None:
        self._stream = stream
        self._confirming: dict[str, deque[anyio.Event]] = {}
        self._replies: deque[tuple[anyio.Event, list[Any]]] = deque()
        self._early: list[str] | None = []
        self.on_message: Callable[[str], None] = lambda data: None
        self.on_flush: Callable[[], None] = lambda: None

    @classmethod
    @asynccontextmanager
    async def open(cls, url: str) -> AsyncIterator[Subscriber]:
        """Connect (and authenticate) to the Redis of ``url``; reads until the block ends.

        Losing the connection raises ``ConnectionError`` out of the block.
        """
        parts = urlsplit(url)
        host, port = parts.hostname or "127.0.0.1", parts.port or 6379
        stream: ByteStream
        if parts.scheme == "rediss":
            stream = await anyio.connect_tcp(host, port, tls=True, tls_hostname=host)
        else:
            stream = await anyio.connect_tcp(host, port)
        async with stream, anyio.create_task_group() as tg:
            subscriber = cls(stream)
            tg.start_soon(subscriber._read)
            if parts.password is not None:
                words = [unquote(parts.username)] if parts.username else []
                await subscriber._ask("AUTH", *words, unquote(parts.password))
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

    async def _ask(self, *words: str) -> Any:
        """A command answered by a plain reply (before any subscription)."""
        done, box = anyio.Event(), list[Any]()
        self._replies.append((done, box))
        await self._stream.send(encode_command(*words))
        await done.wait()
        if isinstance(box[0], RedisReplyError):
            raise ConnectionError(f"Redis refused {words[0]}: {box[0]}")
        return box[0]

    async def _read(self) -> None:
        buf = b""
        while True:
            try:
                chunk = await self._stream.receive(READ_BYTES)
            except (anyio.EndOfStream, anyio.BrokenResourceError) as exc:
                raise ConnectionError("Redis closed the subscriber connection") from exc
            buf = buf + chunk if buf else chunk
            pos, heard = 0, False
            while pos < len(buf):
                try:
                    reply, pos_after = parse(buf, pos)
                except Incomplete:
                    break
                pos = pos_after
                heard = self._dispatch(reply) or heard
            buf = buf[pos:]
            if heard and self._early is None:
                self.on_flush()

    def _dispatch(self, reply: Any) -> bool:
        """Act on one reply; True if it was a message."""
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
        if self._replies:
            done, box = self._replies.popleft()
            box.append(reply)
            done.set()
            return False
        if isinstance(reply, RedisReplyError):
            raise ConnectionError(f"Redis refused a subscription: {reply}")
        return False
