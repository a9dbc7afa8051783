"""Listening sockets: which ports a server opens, what each expects, and the accept loop.

A server has a list of listeners (the main port that sniffs every protocol, a dedicated IRC
port, and later TLS-only or HTTP-only ports), each described by a :class:`ListenerSpec`. The
configuration builds the list (:meth:`ServerConfig.listener_specs`); the server opens and serves
them all the same way.
"""

from __future__ import annotations

import logging
import socket
from collections.abc import Callable, Coroutine
from dataclasses import dataclass
from typing import Any

import anyio
import anyio.lowlevel
from anyio.abc import TaskGroup

from .codecs.sniff import Protocol

__all__ = ["ListenerSpec", "accept_loop", "open_listener"]

logger = logging.getLogger("anychat.server")

#: Connections the kernel may hold that the server has not accepted yet. Beyond it a client's
#: SYN is dropped and retried after 1 s, 3 s, 7 s, 15 s...: a storm of thousands arriving at
#: once must queue, not back off. The kernel caps it at ``net.core.somaxconn`` (4096 on
#: current Linux).
LISTEN_BACKLOG = 65535

#: Connections accepted per turn of the event loop. Each one's task sniffs its protocol in its
#: first step, and every task woken in one turn runs before anyone woken later: accepting all
#: that wait at once would make the clients already chatting wait for thousands of them.
#: (Registering is held to a few a turn too: :mod:`anychat.turnstile`.)
ACCEPT_BATCH = 32


@dataclass(frozen=True, slots=True, kw_only=True)
class ListenerSpec:
    """One port to listen on."""

    #: How the server and its users refer to it: ``main``, ``irc``, ``tls``, ``http``.
    name: str
    host: str
    #: 0 lets the kernel choose.
    port: int
    #: ``None``: sniff each connection's protocol from its first bytes; else only this one.
    protocol: Protocol | None = None
    #: TLS from the first byte (a dedicated TLS port such as 6697).
    tls: bool = False


def open_listener(host: str, port: int) -> socket.socket:
    """Bind and listen; raises ``OSError`` with a message fit for a person."""
    try:
        infos = socket.getaddrinfo(host, port, type=socket.SOCK_STREAM, flags=socket.AI_PASSIVE)
    except socket.gaierror as exc:
        raise OSError(f"cannot resolve host {host!r}: {exc.strerror}") from None
    family, type_, proto, _, addr = infos[0]
    sock = socket.socket(family, type_, proto)
    try:
        sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
        sock.bind(addr)
        sock.listen(LISTEN_BACKLOG)
        sock.setblocking(False)
    except OSError as exc:
        sock.close()
        raise OSError(exc.errno, f"cannot listen on {host}:{port}: {exc.strerror}") from None
    return sock


Handler = Callable[[socket.socket, Any, ListenerSpec], Coroutine[Any, Any, None]]


async def accept_loop(
    listener: socket.socket, spec: ListenerSpec, handler: Handler, tg: TaskGroup
) -> None:
    """Accept until cancelled; each connection gets a task of its own in ``tg``.

    At most :data:`ACCEPT_BATCH` per turn of the event loop, then a checkpoint: a storm of
    connections is taken in at the pace the server registers them, while everyone already
    connected gets a turn between batches.
    """
    while True:
        await anyio.wait_readable(listener)
        accepted = 0
        while True:
            if accepted == ACCEPT_BATCH:
                await anyio.lowlevel.checkpoint()
                accepted = 0
            try:
                sock, peer = listener.accept()
            except (BlockingIOError, InterruptedError):
                break
            except OSError as exc:  # EMFILE and friends: keep serving who we have
                logger.error("accept failed on %s: %s", spec.name, exc)
                await anyio.sleep(0.1)
                break
            sock.setblocking(False)
            tg.start_soon(handler, sock, peer, spec)
            accepted += 1
