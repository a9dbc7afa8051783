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
from anyio.abc import TaskGroup

from .codecs.sniff import Protocol

__all__ = ["ListenerSpec", "accept_loop", "open_listener"]

logger = logging.getLogger("anychat.server")


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
        sock.listen(1024)
        sock.setblocking(False)
    except OSError as exc:
        sock.close()
        raise OSError(exc.errno, f"cannot listen on {host}:{port}: {exc.strerror}") from None
    return sock


Handler = Callable[[socket.socket, Any, ListenerSpec], Coroutine[Any, Any, None]]


async def accept_loop(
    listener: socket.socket, spec: ListenerSpec, handler: Handler, tg: TaskGroup
) -> None:
    """Accept until cancelled; each connection gets a task of its own in ``tg``."""
    while True:
        await anyio.wait_readable(listener)
        while True:
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
