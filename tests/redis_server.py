"""A real Redis for the tests: a ``redis-server`` of the test's own, on a free port.

Never the system Redis on 6379: each test that needs one starts its own (no persistence, in a
temporary directory), so no test sees leftover keys or another test's, and a test may stop and
restart it to play an outage. Without the binary the tests skip, except under CI, where they fail.
"""

from __future__ import annotations

import os
import shutil
import socket
import subprocess
import time
from collections.abc import Iterator
from pathlib import Path

import pytest

REDIS_SERVER = os.environ.get("ANYCHAT_TEST_REDIS_SERVER", "/usr/bin/redis-server")


def _free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


class RedisServer:
    """One ``redis-server`` process: ``url`` to connect, ``stop``/``start``/``restart``."""

    def __init__(self, directory: Path) -> None:
        self.directory = directory
        self.port = _free_port()
        self.process: subprocess.Popen[bytes] | None = None

    @property
    def url(self) -> str:
        return f"redis://127.0.0.1:{self.port}/0"

    def start(self) -> None:
        """Start the server (on the same port as before) and return once it answers PING."""
        assert self.process is None, "already running"
        log = open(self.directory / "redis.log", "ab")
        with log:
            self.process = subprocess.Popen(
                [
                    REDIS_SERVER,
                    "--port", str(self.port),
                    "--bind", "127.0.0.1",
                    "--save", "",
                    "--appendonly", "no",
                    "--dir", str(self.directory),
                    "--protected-mode", "no",
                ],
                stdout=log,
                stderr=subprocess.STDOUT,
            )  # fmt: skip
        deadline = time.monotonic() + 10
        while not self._answers():
            if self.process.poll() is not None or time.monotonic() > deadline:
                self.stop()
                log_text = (self.directory / "redis.log").read_text(errors="replace")
                raise RuntimeError(f"redis-server did not start:\n{log_text[-2000:]}")
            time.sleep(0.01)  # polling the new process for a fact, bounded by the deadline

    def _answers(self) -> bool:
        try:
            with socket.create_connection(("127.0.0.1", self.port), timeout=1) as sock:
                sock.sendall(b"PING\r\n")
                return sock.recv(64).startswith(b"+PONG")
        except OSError:
            return False

    def stop(self) -> None:
        """Stop the server and wait until it is gone (clients see their connections drop)."""
        process, self.process = self.process, None
        if process is None:
            return
        process.terminate()
        try:
            process.wait(timeout=10)
        except subprocess.TimeoutExpired:
            process.kill()
            process.wait()

    def restart(self) -> None:
        """Stop and start again: an empty Redis on the same port (nothing is persisted)."""
        self.stop()
        self.start()


def redis_server(directory: Path) -> Iterator[RedisServer]:
    """The body of the ``redis`` fixture: a started server, stopped at teardown whatever ran."""
    if not (os.path.exists(REDIS_SERVER) or shutil.which(REDIS_SERVER)):
        message = f"the Redis tests need {REDIS_SERVER} (apt install redis-server)"
        if os.environ.get("CI"):
            pytest.fail(message + " (CI is set, so this is a failure, not a skip)")
        pytest.skip(message)
    server = RedisServer(directory)
    try:
        server.start()
        yield server
    finally:
        server.stop()
