"""Blocking entry point: run a server until SIGINT/SIGTERM, on the backend of your choice."""

from __future__ import annotations

import signal
import socket
from collections.abc import Callable
from functools import partial
from typing import Any

import anyio

from .config import ServerConfig
from .server import open_listener, run

__all__ = ["run_server"]


def run_server(
    config: ServerConfig | None = None,
    /,
    *,
    backend: str = "asyncio",
    use_uvloop: bool = False,
    on_started: Callable[[ServerConfig, int], None] | None = None,
    **settings: Any,
) -> None:
    """Serve until interrupted (Ctrl-C or SIGTERM), then tell every client and return.

    ``on_started(config, port)`` is called once the server accepts connections.
    """
    config = (config or ServerConfig()).merged(**settings)
    options = {"use_uvloop": True} if use_uvloop and backend == "asyncio" else {}
    listener = open_listener(config.host, config.port)  # errors surface here, plainly
    irc_listener = None
    if config.irc_port is not None:
        try:
            irc_listener = open_listener(config.host, config.irc_port)
        except OSError:
            listener.close()
            raise
    anyio.run(
        _serve_until_signalled,
        config,
        listener,
        irc_listener,
        on_started,
        backend=backend,
        backend_options=options,
    )


async def _serve_until_signalled(
    config: ServerConfig,
    listener: socket.socket,
    irc_listener: socket.socket | None,
    on_started: Callable[[ServerConfig, int], None] | None,
) -> None:
    with anyio.open_signal_receiver(signal.SIGINT, signal.SIGTERM) as signals:
        async with anyio.create_task_group() as tg:
            port = await tg.start(
                partial(run, config, listener=listener, irc_listener=irc_listener)
            )
            if on_started is not None:
                on_started(config, port)
            async for _ in signals:
                break
            tg.cancel_scope.cancel()
