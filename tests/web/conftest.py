"""Fixtures for the browser tests: a real server in a subprocess, headless Chromium, raw clients.

Playwright's async API runs on asyncio only, so every test in this package runs on asyncio
(``anyio_backend`` is overridden here); the server under test is a separate ``anychat serve``
process, parametrized over the backend families in ANYCHAT_BACKENDS (``asyncio``, ``trio``), so
the trio run checks the page against a trio server.

The browser is Debian's Chromium (``apt-get install chromium``) at /usr/bin/chromium, driven by
the ``playwright`` package without ``playwright install``. Without either, the tests are skipped
with the reason, unless the environment variable CI is set: then they fail.
"""

from __future__ import annotations

import importlib.util
import os
import re
import signal
import subprocess
import sys
from collections.abc import AsyncIterator
from pathlib import Path
from typing import TYPE_CHECKING

import anyio
import pytest

from tests.conftest import BACKENDS

if TYPE_CHECKING:
    from anyio.abc import Process
    from playwright.async_api import Browser

CHROMIUM = Path("/usr/bin/chromium")
CHROMIUM_ARGS = [
    "--headless",
    "--no-sandbox",
    "--disable-gpu",
    "--disable-quic",
    "--no-first-run",
    "--disable-background-networking",
    "--disable-component-update",
    "--disable-sync",
]
#: Signs login tokens, the same across restarts so a page logged in before one stays logged in.
SECRET = "browser-tests-secret-0123456789abcdef"

SERVER_BACKENDS = sorted({"trio" if name == "trio" else "asyncio" for name in BACKENDS})

_LISTENING = re.compile(rb"listening on [^\s:]+:(\d+)")


def browser_problem() -> str | None:
    """Why the browser tests cannot run here, or ``None`` if they can."""
    if importlib.util.find_spec("playwright") is None:
        return "the playwright package is not installed (it is in the test dependency group)"
    if not CHROMIUM.exists():
        return f"no Chromium at {CHROMIUM} (apt-get install chromium)"
    return None


def require_browser() -> None:
    problem = browser_problem()
    if problem is None:
        return
    if os.environ.get("CI"):
        pytest.fail(f"browser tests are mandatory in CI: {problem}")
    pytest.skip(f"browser tests skipped: {problem}")


@pytest.fixture
def anyio_backend() -> str:
    return "asyncio"


class ChatServer:
    """``anychat serve`` in a subprocess: started, stopped and restarted on the same port."""

    def __init__(self, backend: str, database: Path) -> None:
        self.backend = backend
        self.database = database
        self.port = 0
        self.process: Process | None = None

    @property
    def url(self) -> str:
        return f"http://127.0.0.1:{self.port}/"

    async def start(self) -> None:
        """Start serving (on the port of the previous run, if there was one)."""
        command = [
            sys.executable,
            "-m",
            "anychat",
            "serve",
            "--port",
            str(self.port),
            "--backend",
            self.backend,
            "--database-url",
            f"sqlite:///{self.database}",
            "--log-level",
            "warning",
        ]
        env = {**os.environ, "ANYCHAT_SECRET": SECRET, "PYTHONUNBUFFERED": "1"}
        process = await anyio.open_process(command, stdout=subprocess.PIPE, stderr=None, env=env)
        self.process = process
        assert process.stdout is not None
        seen = b""
        with anyio.fail_after(30):
            while (found := _LISTENING.search(seen)) is None:
                try:
                    seen += await process.stdout.receive()
                except anyio.EndOfStream:
                    raise RuntimeError(f"the server did not start: {seen!r}") from None
        self.port = int(found.group(1))

    async def stop(self) -> None:
        """Stop it the way an operator does (SIGTERM: clients are told, then it exits)."""
        process = self.process
        if process is None:
            return
        self.process = None
        process.send_signal(signal.SIGTERM)
        try:
            with anyio.fail_after(30):
                await process.wait()
        finally:
            if process.returncode is None:
                process.kill()
                await process.wait()
            await process.aclose()


@pytest.fixture(params=SERVER_BACKENDS)
def server_backend(request: pytest.FixtureRequest) -> str:
    return str(request.param)


@pytest.fixture
async def chat_server(server_backend: str, tmp_path: Path) -> AsyncIterator[ChatServer]:
    require_browser()
    server = ChatServer(server_backend, tmp_path / "chat.db")
    await server.start()
    try:
        yield server
    finally:
        await server.stop()


@pytest.fixture
async def browser() -> AsyncIterator[Browser]:
    require_browser()
    from playwright.async_api import async_playwright

    async with async_playwright() as playwright:
        browser = await playwright.chromium.launch(
            executable_path=str(CHROMIUM), args=CHROMIUM_ARGS
        )
        try:
            yield browser
        finally:
            await browser.close()


@pytest.fixture
def screenshot_dir(tmp_path: Path) -> Path:
    """Where screenshots go: ``$ANYCHAT_SCREENSHOTS`` when set (docs/screenshots for the
    README), otherwise this test's temporary directory."""
    chosen = os.environ.get("ANYCHAT_SCREENSHOTS")
    path = Path(chosen) if chosen else tmp_path / "screenshots"
    path.mkdir(parents=True, exist_ok=True)
    return path
