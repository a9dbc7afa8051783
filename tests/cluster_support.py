"""Several anychat nodes in one process, sharing one test Redis: one chat."""

from __future__ import annotations

from collections.abc import AsyncIterator, Sequence
from contextlib import AsyncExitStack, asynccontextmanager
from typing import Any

import anychat


@asynccontextmanager
async def nodes(
    cluster_url: str, count: int, *, database_urls: Sequence[str] = (), **settings: Any
) -> AsyncIterator[list[anychat.Server]]:
    """``count`` servers on free ports with the same ``cluster_url`` (memory stores unless
    ``database_urls`` names one per node, e.g. the same PostgreSQL for all; no replays unless
    ``history_length`` says)."""
    async with AsyncExitStack() as stack:
        servers = []
        for i in range(count):
            url = database_urls[i] if database_urls else "memory://"
            servers.append(
                await stack.enter_async_context(
                    anychat.serve(
                        port=0,
                        cluster_url=cluster_url,
                        database_url=url,
                        **{"history_length": 0, **settings},
                    )
                )
            )
        yield servers
