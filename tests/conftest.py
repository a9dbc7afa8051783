"""Shared fixtures: every async test runs on each backend in ANYCHAT_BACKENDS.

ANYCHAT_BACKENDS is a comma-separated list of ``asyncio``, ``uvloop`` (asyncio on uvloop) and
``trio``; by default every one that is installed.
"""

from __future__ import annotations

import importlib.util
import os
from collections.abc import AsyncIterator, Iterator

import pytest
from hypothesis import settings

import anychat

from .postgres import PostgresServer, postgres_session
from .redis_server import RedisServer, redis_server

_ALL = {
    "asyncio": ("asyncio", {}),
    "uvloop": ("asyncio", {"use_uvloop": True}),
    "trio": ("trio", {}),
}
_INSTALLED = [
    name for name in _ALL if name != "uvloop" or importlib.util.find_spec("uvloop") is not None
]
BACKENDS = os.environ.get("ANYCHAT_BACKENDS", ",".join(_INSTALLED)).split(",")

# Hypothesis fails an example that takes over 200 ms by default: a timed assertion, which a
# garbage collection or a busy shared machine can trip (a frame-decoder property failed so,
# once in many runs, and passed 20,000 examples without the deadline). Speed is measured by
# the benchmarks; here every property test runs without a deadline.
settings.register_profile("anychat", deadline=None)
settings.load_profile("anychat")


@pytest.fixture(autouse=True)
def _own_data_and_config_dirs(
    monkeypatch: pytest.MonkeyPatch, tmp_path_factory: pytest.TempPathFactory
) -> None:
    """No test (nor any ``anychat`` subprocess it starts) reads or writes the user's real
    data directory, token file or secret: each test gets its own, empty."""
    home = tmp_path_factory.mktemp("home")
    monkeypatch.setenv("XDG_DATA_HOME", str(home / "data"))
    monkeypatch.setenv("XDG_CONFIG_HOME", str(home / "config"))
    for variable in ("ANYCHAT_DATA_DIR", "ANYCHAT_DATABASE_URL", "ANYCHAT_PASSWORD"):
        monkeypatch.delenv(variable, raising=False)


@pytest.fixture(params=[pytest.param(_ALL[name], id=name) for name in BACKENDS])
def anyio_backend(request: pytest.FixtureRequest) -> tuple[str, dict[str, object]]:
    return request.param  # type: ignore[no-any-return]


@pytest.fixture
async def server() -> AsyncIterator[anychat.Server]:
    """A real server on 127.0.0.1 with a kernel-chosen port."""
    async with anychat.serve(port=0) as srv:
        yield srv


@pytest.fixture(scope="session")
def postgres() -> Iterator[PostgresServer]:
    """A fresh PostgreSQL database for this run, dropped at the end (see tests/postgres.py)."""
    yield from postgres_session()


@pytest.fixture
def postgres_url(postgres: PostgresServer) -> str:
    """A ``postgresql://`` URL of an empty schema of its own, for one test."""
    return postgres.new_url()


@pytest.fixture
def redis(tmp_path_factory: pytest.TempPathFactory) -> Iterator[RedisServer]:
    """A ``redis-server`` of this test's own on a free port (see tests/redis_server.py)."""
    yield from redis_server(tmp_path_factory.mktemp("redis"))
