"""Shared fixtures: every async test runs on each backend in ANYCHAT_BACKENDS (default both)."""

from __future__ import annotations

import os
from collections.abc import AsyncIterator

import pytest

import anychat

BACKENDS = os.environ.get("ANYCHAT_BACKENDS", "asyncio,trio").split(",")


@pytest.fixture(params=BACKENDS)
def anyio_backend(request: pytest.FixtureRequest) -> str:
    return str(request.param)


@pytest.fixture
async def server() -> AsyncIterator[anychat.Server]:
    """A real server on 127.0.0.1 with a kernel-chosen port."""
    async with anychat.serve(port=0) as srv:
        yield srv
