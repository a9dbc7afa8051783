"""Starting and stopping a server: the store, the listeners, the hub's tasks, shutdown.

Start it with ``await tg.start(run, config)`` (it reports the main port) or with the
:func:`serve` context manager, which yields a :class:`Server` handle. What happens on each
connection is :mod:`anychat.reader`'s; what happens to the chat is the hub's and the broker's.
"""

from __future__ import annotations

import logging
import socket
from collections.abc import AsyncIterator, Iterable, Mapping, Sequence
from contextlib import AsyncExitStack, asynccontextmanager
from functools import partial
from typing import Any

import anyio
from anyio.abc import TaskStatus

from ._groups import unwrap_single
from .accountsync import follow_account_changes
from .config import ServerConfig
from .connection import Connection
from .effects import Effect
from .hub import Hub
from .idle import parking_for, watch_idle
from .listeners import ListenerSpec, accept_loop, open_listener
from .reader import serve_peer
from .resend import MAX_KEYS
from .store import Store, describe_url, open_store
from .tlsconfig import ServerTls
from .turns import turns_here

__all__ = ["Server", "open_listener", "open_listeners", "run", "serve"]

logger = logging.getLogger("anychat.server")

#: Listening sockets paired with what each is for.
Listeners = Sequence[tuple[ListenerSpec, socket.socket]]


def open_listeners(config: ServerConfig) -> list[tuple[ListenerSpec, socket.socket]]:
    """Bind every listener the configuration asks for (all or none: errors close the rest)."""
    opened: list[tuple[ListenerSpec, socket.socket]] = []
    try:
        for spec in config.listener_specs():
            opened.append((spec, open_listener(spec.host, spec.port)))
    except OSError:
        for _, sock in opened:
            sock.close()
        raise
    return opened


def bound_ports(listeners: Listeners) -> dict[str, int]:
    return {spec.name: sock.getsockname()[1] for spec, sock in listeners}


async def run(
    config: ServerConfig,
    *,
    listeners: Listeners | None = None,
    store: Store | None = None,
    tls: ServerTls | None = None,
    task_status: TaskStatus[Mapping[str, int]] = anyio.TASK_STATUS_IGNORED,
) -> None:
    """Serve until cancelled. ``await tg.start(run, config)`` returns the bound ports by name.

    ``listeners`` are sockets from :func:`open_listeners` (default: opened from ``config``); the
    server owns them from here on. ``store`` overrides ``config.database_url`` (the caller then
    owns it). ``tls`` is the certificate holder to serve TLS with (default: loaded from
    ``config.tls_cert``/``tls_key``); keep it to :meth:`~ServerTls.reload` it later. On
    cancellation every client is sent a goodbye ("server shutting down"), the server waits up to
    ``config.shutdown_grace_seconds`` for those to go out, and messages still waiting for the
    disk are written before the store closes.
    """
    async with AsyncExitStack() as stack:
        for _, given in listeners or ():
            stack.callback(given.close)  # ours from here on, even if the store fails to open
        if store is None:
            store = await stack.enter_async_context(open_store(config.database_url))
        last_id = await store.last_message_id()
        registered = [account.nick for account in await store.list_accounts()]
        cluster = None
        if config.cluster_url:
            from . import model as m
            from .bus.redis import RedisBus

            cluster = RedisBus(
                config.cluster_url,
                lease_seconds=config.cluster_lease_seconds,
                first_message_id=last_id + 1,
                registered=[m.casefold(nick) for nick in registered],
                last_stored_id=store.last_message_id,
            )
        hub = Hub(
            config, store, first_message_id=last_id + 1, registered=registered, cluster=cluster
        )
        # Keys of recent messages: a client resending after this restart is not stored twice.
        hub.broker.sent.stored(await store.keyed_messages(MAX_KEYS))
        logger.info(
            "store %s: %d messages so far, %d accounts",
            describe_url(config.database_url),  # a PostgreSQL password stays out of the log
            last_id,
            len(registered),
        )
        if tls is None and config.tls_cert and config.tls_key:
            tls = ServerTls(config.tls_cert, config.tls_key)
        if listeners is None:
            listeners = open_listeners(config)
            for _, sock in listeners:
                stack.callback(sock.close)
        await _serve(hub, listeners, tls, task_status)


async def _serve(
    hub: Hub,
    listeners: Listeners,
    tls: ServerTls | None,
    task_status: TaskStatus[Mapping[str, int]],
) -> None:
    config = hub.config
    try:
        async with anyio.create_task_group() as tg:
            hub.task_group = tg
            hub.parking = parking_for(tg, config.park_after_seconds)
            hub.turns = turns_here(hub.flush)
            tg.start_soon(hub.committer.run)
            tg.start_soon(hub.turnstile.run)
            tg.start_soon(watch_idle, hub)
            tg.start_soon(_follow_accounts, hub)
            if hub.cluster is not None:
                await tg.start(hub.cluster.run)

            # A partial, not a wrapper coroutine: each connection's task starts straight in
            # serve_peer, with no extra frame held for the connection's lifetime.
            handle = partial(serve_peer, hub, tls=tls)
            if tls is not None:
                logger.info(
                    "TLS certificate %s (SHA-256 %s)%s",
                    tls.cert_file,
                    tls.fingerprint,
                    "; plaintext refused" if config.tls_required else "",
                )
            for spec, sock in listeners:
                what = f"{spec.protocol.value} clients" if spec.protocol else "every protocol"
                if spec.tls:
                    what += ", TLS only"
                elif tls is not None:
                    what += ", TLS or plaintext" if not config.tls_required else ", TLS"
                logger.info(
                    "listening on %s:%d (%s: %s)",
                    config.host,
                    sock.getsockname()[1],
                    spec.name,
                    what,
                )
                tg.start_soon(accept_loop, sock, spec, handle, tg)
            task_status.started(bound_ports(listeners))
            try:
                await anyio.sleep_forever()
            finally:
                with anyio.CancelScope(shield=True):
                    hub.say_goodbye()
                    with anyio.move_on_after(config.shutdown_grace_seconds):
                        await hub.wait_closed()
    finally:
        for _, sock in listeners:
            anyio.notify_closing(sock)
            sock.close()


async def _follow_accounts(hub: Hub) -> None:
    """Admin changes reach the running broker (the hook for ``anychat users add|delete``)."""

    def apply(effects: Iterable[Effect[Connection]]) -> None:
        hub.apply(effects)
        hub.flush()

    await follow_account_changes(hub.services.store, hub.broker, apply)


class Server:
    """A running server started by :func:`serve`."""

    def __init__(
        self, config: ServerConfig, ports: Mapping[str, int], tls: ServerTls | None = None
    ) -> None:
        self.config = config
        self.host = config.host
        #: Bound port of every listener, by name (``main``, ``irc``, ...).
        self.ports = dict(ports)
        self.port = self.ports["main"]
        #: The dedicated IRC port, when ``config.irc_port`` asked for one.
        self.irc_port = self.ports.get("irc")
        #: The TLS-only port, when ``config.tls_port`` asked for one.
        self.tls_port = self.ports.get("tls")
        #: The certificate being served, when TLS is configured.
        self.tls = tls
        #: The dedicated web port, when ``config.http_port`` asked for one (the main port
        #: serves the page and its WebSocket too).
        self.http_port = self.ports.get("http")

    def reload_tls(self) -> bool:
        """Load the certificate and key files again (after a renewal): new handshakes use
        them, connections already up are untouched; on failure the old ones stay (logged)."""
        return self.tls.reload() if self.tls is not None else False

    @property
    def address(self) -> tuple[str, int]:
        return self.host, self.port


@asynccontextmanager
async def serve(
    config: ServerConfig | None = None, /, *, store: Store | None = None, **settings: Any
) -> AsyncIterator[Server]:
    """Run a server in the background for the duration of the ``async with`` block.

    Takes a :class:`ServerConfig` or its fields as keyword arguments (``port=0`` picks a free
    port; read it from the yielded :class:`Server`). ``store`` replaces the one
    ``database_url`` names (tests pass a shared or failing one).
    """
    config = (config or ServerConfig(port=0)).merged(**settings)
    tls = ServerTls(config.tls_cert, config.tls_key) if config.tls_cert and config.tls_key else None
    listeners = open_listeners(config)
    with unwrap_single():
        async with anyio.create_task_group() as tg:
            ports = await tg.start(partial(run, config, listeners=listeners, store=store, tls=tls))
            try:
                yield Server(config, ports, tls)
            finally:
                tg.cancel_scope.cancel()
