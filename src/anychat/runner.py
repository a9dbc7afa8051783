"""Blocking entry point: run a server until SIGINT/SIGTERM, on the backend of your choice.

With TLS configured, SIGHUP reloads the certificate and key (after a renewal) without dropping
anyone; without TLS, SIGHUP keeps its default meaning (the server stops, as when its terminal
closes).

The process is the server's, so it also sets the garbage collector for a server
(:func:`tune_gc`); an application that embeds :func:`anychat.serve` keeps its own settings.
"""

from __future__ import annotations

import gc
import signal
from collections.abc import Callable
from functools import partial
from typing import Any

import anyio

from .config import ServerConfig
from .server import Listeners, open_listeners, run
from .tlsconfig import ServerTls

__all__ = ["GC_THRESHOLDS", "run_server", "tune_gc"]

#: Python's defaults are (700, 10, 10): a full collection after every ten middle ones, once the
#: heap grew by a quarter. A server that holds 10,000 clients has a million long-lived objects
#: to scan each time (a join storm measured 300-400 ms stalls for everyone); a hundred middle
#: collections between full ones cut that to 130-140 ms in the same runs (docs/security.md).
GC_THRESHOLDS = (700, 10, 100)


def tune_gc() -> None:
    """Keep what start-up built (modules, configuration: never garbage) out of every
    collection (``gc.freeze``), and make full collections rarer (:data:`GC_THRESHOLDS`)."""
    gc.collect()
    gc.freeze()
    gc.set_threshold(*GC_THRESHOLDS)


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
    # Errors surface here, plainly: an unusable certificate, a port in use.
    tls = ServerTls(config.tls_cert, config.tls_key) if config.tls_cert and config.tls_key else None
    listeners = open_listeners(config)
    anyio.run(
        _serve_until_signalled,
        config,
        listeners,
        tls,
        on_started,
        backend=backend,
        backend_options=options,
    )


async def _serve_until_signalled(
    config: ServerConfig,
    listeners: Listeners,
    tls: ServerTls | None,
    on_started: Callable[[ServerConfig, int], None] | None,
) -> None:
    stop = (signal.SIGINT, signal.SIGTERM)
    with anyio.open_signal_receiver(*stop, *((signal.SIGHUP,) if tls else ())) as signals:
        async with anyio.create_task_group() as tg:
            ports = await tg.start(partial(run, config, listeners=listeners, tls=tls))
            tune_gc()
            if on_started is not None:
                on_started(config, ports["main"])
            async for signum in signals:
                if signum == signal.SIGHUP and tls is not None:
                    tls.reload()
                    continue
                break
            tg.cancel_scope.cancel()
