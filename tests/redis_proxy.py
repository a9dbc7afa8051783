"""A relay between one node and the test Redis, to play a slow or cut network on one node.

The node connects to :attr:`RedisProxy.url`; every connection it opens is relayed byte for byte
to the real ``redis-server``. :meth:`hold` stops relaying what Redis sends on one kind of
connection (the node's subscriber, or every connection) until :meth:`release`: Redis still runs
what the node sends, but the node does not hear of it yet. :meth:`cut` closes every connection
relayed so far (held bytes are lost), as a network failure would; new ones relay normally.
"""

from __future__ import annotations

from collections.abc import AsyncIterator, Awaitable, Callable
from contextlib import asynccontextmanager

import anyio
from anyio.abc import SocketAttribute, SocketStream

#: What the node's subscriber connection says first (bus/resp.py; no AUTH or SELECT in tests).
_SUBSCRIBER = b"SUBSCRIBE"


class RedisProxy:
    """Relays a node's connections to Redis; can hold their replies or cut them."""

    def __init__(self, redis_port: int) -> None:
        self.redis_port = redis_port
        self.port = 0
        self._open: dict[str, anyio.Event] = {"subscriber": anyio.Event(), "other": anyio.Event()}
        for gate in self._open.values():
            gate.set()
        self._scopes: set[anyio.CancelScope] = set()

    @property
    def url(self) -> str:
        return f"redis://127.0.0.1:{self.port}/0"

    def hold(self, kind: str = "all") -> None:
        """Stop relaying what Redis sends on ``kind`` connections ("subscriber", "other" or
        "all")."""
        for name in self._open if kind == "all" else (kind,):
            if self._open[name].is_set():
                self._open[name] = anyio.Event()

    def release(self, kind: str = "all") -> None:
        """Relay again (first what was held) on ``kind`` connections ("subscriber", "other":
        every connection but the subscriber, or "all")."""
        for name in self._open if kind == "all" else (kind,):
            self._open[name].set()

    def cut(self) -> None:
        """Close every connection relayed so far (and relay what is held no more)."""
        for scope in list(self._scopes):
            scope.cancel()
        self.release()

    async def _relay(self, client: SocketStream) -> None:
        with anyio.CancelScope() as scope:
            self._scopes.add(scope)
            try:
                async with client, await anyio.connect_tcp("127.0.0.1", self.redis_port) as redis:
                    first = await client.receive()
                    kind = "subscriber" if _SUBSCRIBER in first else "other"
                    await redis.send(first)
                    async with anyio.create_task_group() as tg:
                        tg.start_soon(_pump, self._up, client, redis, tg.cancel_scope)
                        await _pump(self._down, redis, client, tg.cancel_scope, kind)
            except (anyio.EndOfStream, anyio.BrokenResourceError, OSError):
                pass  # one side went away before the relay began
            finally:
                self._scopes.discard(scope)

    @staticmethod
    async def _up(client: SocketStream, redis: SocketStream) -> None:
        async for data in client:
            await redis.send(data)

    async def _down(self, redis: SocketStream, client: SocketStream, kind: str) -> None:
        async for data in redis:
            while not self._open[kind].is_set():
                await self._open[kind].wait()
            await client.send(data)


async def _pump(
    relay: Callable[..., Awaitable[None]],
    source: SocketStream,
    sink: SocketStream,
    both: anyio.CancelScope,
    *args: str,
) -> None:
    """Relay one way until either side ends; then both ways end (the sockets close)."""
    try:
        await relay(source, sink, *args)
    except (anyio.EndOfStream, anyio.BrokenResourceError, OSError):
        pass
    finally:
        both.cancel()


@asynccontextmanager
async def redis_proxy(redis_port: int) -> AsyncIterator[RedisProxy]:
    """A relay to the Redis on ``redis_port``, serving until the block ends."""
    listener = await anyio.create_tcp_listener(local_host="127.0.0.1", local_port=0)
    async with listener, anyio.create_task_group() as tg:
        proxy = RedisProxy(redis_port)
        proxy.port = listener.extra(SocketAttribute.local_port)
        tg.start_soon(listener.serve, proxy._relay, tg)
        try:
            yield proxy
        finally:
            tg.cancel_scope.cancel()
