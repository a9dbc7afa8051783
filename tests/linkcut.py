"""A TCP relay between a client and the server that cuts the link once, at a chosen moment.

The server stays up and the client reconnects through the same relay, so a test can lose a
message on its way in (before the server saw it) or its ack on the way out (after the server
stored it) and check what a resend does. Real sockets on 127.0.0.1, nothing mocked.
"""

from __future__ import annotations

from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from dataclasses import dataclass, field
from typing import Literal

import anyio
from anyio.abc import SocketStream, TaskGroup

#: Which way the bytes that trigger the cut travel: ``in`` to the server, ``out`` to the client.
Direction = Literal["in", "out"]


@dataclass
class LinkCutter:
    port: int
    #: The cut happens when ``needle`` is about to pass in ``direction`` (that chunk is dropped).
    needle: bytes
    direction: Direction
    #: How many connections were cut (the relay cuts only the first match).
    cuts: int = 0
    #: How many connections came through.
    connections: int = 0
    cut: anyio.Event = field(default_factory=anyio.Event)


async def _pump(
    cutter: LinkCutter,
    source: SocketStream,
    sink: SocketStream,
    direction: Direction,
    tg: TaskGroup,
) -> None:
    tail = b""  # the needle may straddle two reads
    try:
        while True:
            chunk = await source.receive()
            seen = tail + chunk
            tail = seen[-len(cutter.needle) :]
            if direction == cutter.direction and not cutter.cuts and cutter.needle in seen:
                cutter.cuts += 1
                cutter.cut.set()
                tg.cancel_scope.cancel()  # both ways at once; the caller closes both sockets
                return
            await sink.send(chunk)
    except (anyio.EndOfStream, anyio.BrokenResourceError, anyio.ClosedResourceError, OSError):
        tg.cancel_scope.cancel()


@asynccontextmanager
async def link_cutter(
    upstream_port: int, needle: bytes, direction: Direction
) -> AsyncIterator[LinkCutter]:
    """Relay 127.0.0.1:<its port> to the server's port, cutting once as configured."""
    listener = await anyio.create_tcp_listener(local_host="127.0.0.1", local_port=0)
    port = listener.extra(anyio.abc.SocketAttribute.local_port)
    cutter = LinkCutter(port, needle, direction)

    async def relay(client: SocketStream) -> None:
        cutter.connections += 1
        try:
            server = await anyio.connect_tcp("127.0.0.1", upstream_port)
        except OSError:
            await anyio.aclose_forcefully(client)
            return
        try:
            async with anyio.create_task_group() as tg:
                tg.start_soon(_pump, cutter, client, server, "in", tg)
                tg.start_soon(_pump, cutter, server, client, "out", tg)
        finally:
            await anyio.aclose_forcefully(server)
            await anyio.aclose_forcefully(client)

    async with listener, anyio.create_task_group() as outer:
        outer.start_soon(listener.serve, relay)
        yield cutter
        outer.cancel_scope.cancel()
