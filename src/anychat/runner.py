"""Blocking entry point: run a server until SIGINT/SIGTERM, on the backend of your choice."""

from __future__ import annotations

import signal
from collections.abc import Callable
from functools import partial
from typing import Any

import anyio

from .config import ServerConfig
from .server import Listeners, open_listeners, run

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
    listeners = open_listeners(config)  # errors surface here, plainly
    anyio.run(
        _serve_until_signalled,
        config,
        listeners,
        on_started,
        backend=backend,
        backend_options=options,
    )


async def _serve_until_signalled(
    config: ServerConfig,
    listeners: Listeners,
    on_started: Callable[[ServerConfig, int], None] | None,
) -> None:
    with anyio.open_signal_receiver(signal.SIGINT, signal.SIGTERM) as signals:
        async with anyio.create_task_group() as tg:
            ports = await tg.start(partial(run, config, listeners=listeners))
            if on_started is not None:
                on_started(config, ports["main"])
            async for _ in signals:
                break
            tg.cancel_scope.cancel()
