"""``anychat serve`` with the web flags, as a real subprocess."""

from __future__ import annotations

import os
import re
import signal
import subprocess
from collections.abc import Iterator
from contextlib import contextmanager

import pytest

from .test_cli import ANYCHAT, LISTENING
from .webclient import WsPeer, WsRefused, http_get

_HTTP_LISTENER = re.compile(rb"listening on 127\.0\.0\.1:(\d+) \(http: http clients\)")


@contextmanager
def web_server(env: dict[str, str]) -> Iterator[tuple[int, int, bytes]]:
    """Run ``anychat serve --port 0`` with ``env``; yields (main port, http port, stdout head)."""
    proc = subprocess.Popen(
        [*ANYCHAT, "serve", "--port", "0"],
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        env={**os.environ, "ANYCHAT_DATABASE_URL": "memory://", **env},
    )
    try:
        assert proc.stdout is not None and proc.stderr is not None
        head = proc.stdout.readline()  # blocks until the server is listening (or died)
        match = LISTENING.search(head)
        assert match, head
        head += proc.stdout.readline() + proc.stdout.readline()
        while not (http := _HTTP_LISTENER.search(line := proc.stderr.readline())):
            assert line, "the server never reported its HTTP listener"
        yield int(match.group(1)), int(http.group(1)), head
    finally:
        proc.send_signal(signal.SIGINT)
        assert proc.wait(timeout=10) == 0
        for pipe in (proc.stdout, proc.stderr):
            if pipe:
                pipe.close()


async def test_web_flags_and_variables(anyio_backend: object) -> None:
    env = {
        "ANYCHAT_ALLOWED_ORIGINS": "https://a.example, https://b.example",
        "ANYCHAT_HTTP_PORT": "0",
    }
    with web_server(env) as (port, http_port, head):
        assert b"web chat at http://127.0.0.1:%d/" % port in head
        assert (await http_get(http_port, "/healthz")).status == 200
        assert (await http_get(port, "/")).status == 200
        async with await WsPeer.open(port, origin="https://b.example") as web:
            await web.send_json(type="hello", nick="fromb")
            assert (await web.json_event("welcome"))["nick"] == "fromb"
        with pytest.raises(WsRefused):
            await WsPeer.open(http_port, origin="https://c.example")


@pytest.mark.parametrize("origin", ["not an origin", "ftp://x.example", "https://"])
def test_a_malformed_allowed_origin_is_one_clear_line(origin: str) -> None:
    result = subprocess.run(
        [*ANYCHAT, "serve", "--port", "0", "--allowed-origin", origin],
        capture_output=True,
        timeout=30,
        check=False,
    )
    assert result.returncode == 2
    err = result.stderr.decode()
    assert "allowed origin" in err and "Traceback" not in err
