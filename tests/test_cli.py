"""The ``anychat`` command as a real subprocess, talked to with raw sockets."""

from __future__ import annotations

import json
import os
import re
import signal
import socket
import subprocess
import sys
import tempfile
from collections.abc import Iterator
from contextlib import contextmanager

import anyio
import pytest

from .helpers import LineClient

ANYCHAT = [sys.executable, "-m", "anychat"]
LISTENING = re.compile(rb"listening on 127\.0\.0\.1:(\d+) \((\S+)\)")


@contextmanager
def running_server(*args: str) -> Iterator[tuple[subprocess.Popen[bytes], int]]:
    """Start ``anychat serve --port 0`` on a fresh database; read the port from its output."""
    scratch = tempfile.TemporaryDirectory()
    database = f"sqlite:///{scratch.name}/chat.db"
    proc = subprocess.Popen(
        [*ANYCHAT, "serve", "--port", "0", "--database-url", database, *args],
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
    )
    try:
        assert proc.stdout is not None
        first = proc.stdout.readline()  # blocks until the server is listening (or died)
        match = LISTENING.search(first)
        assert match, first + proc.stderr.read() if proc.stderr else first
        yield proc, int(match.group(1))
    finally:
        if proc.poll() is None:
            proc.kill()
        proc.wait(timeout=10)
        for pipe in (proc.stdout, proc.stderr):
            if pipe:
                pipe.close()
        scratch.cleanup()


@pytest.mark.parametrize(
    "flags", [["--backend", "asyncio"], ["--backend", "trio"], ["--uvloop"]], ids=" ".join
)
async def test_serve_chats_and_stops_cleanly_on_sigint(
    flags: list[str], anyio_backend: object
) -> None:
    if "--uvloop" in flags:
        pytest.importorskip("uvloop")
    with running_server(*flags) as (proc, port):
        async with await LineClient.open(port) as js, await LineClient.open(port) as nc:
            await js.send_json(type="hello", nick="js")
            await js.json_event("members")
            await nc.line_containing(b"Welcome")
            await nc.send(b"hello from nc\n")
            msg = await js.json_event("message")
            assert msg["text"] == "hello from nc"
            proc.send_signal(signal.SIGINT)
            bye = json.loads((await js.read_to_eof()).splitlines()[-1])
            assert bye["code"] == "shutdown"
            assert b"server shutting down" in await nc.read_to_eof()
        assert proc.wait(timeout=10) == 0
        assert proc.stderr is not None
        log = proc.stderr.read().decode()
        assert "connected (jsonl)" in log and "connected (text)" in log
        assert "hello from nc" not in log  # message text is never logged


def test_sigterm_also_stops_with_status_zero() -> None:
    with running_server() as (proc, _port):
        proc.send_signal(signal.SIGTERM)
        assert proc.wait(timeout=10) == 0


def test_port_in_use_is_one_clear_line() -> None:
    with socket.socket() as taken:
        taken.bind(("127.0.0.1", 0))
        taken.listen()
        port = taken.getsockname()[1]
        result = subprocess.run(
            [*ANYCHAT, "serve", "--port", str(port)], capture_output=True, timeout=30, check=False
        )
    assert result.returncode == 1
    assert result.stderr.decode().strip() == (
        f"anychat: cannot listen on 127.0.0.1:{port}: Address already in use"
    )


@pytest.mark.parametrize(
    ("args", "needle"),
    [
        (["serve", "--host", "no-such-host.invalid", "--port", "0"], "cannot resolve host"),
        (["serve", "--port", "99999"], "--port"),
        (["serve", "--backend", "tokio"], "--backend"),
        (["serve", "--uvloop", "--backend", "trio", "--port", "0"], "--uvloop"),
    ],
)
def test_bad_settings_fail_without_a_traceback(args: list[str], needle: str) -> None:
    result = subprocess.run([*ANYCHAT, *args], capture_output=True, timeout=30, check=False)
    assert result.returncode != 0
    err = result.stderr.decode()
    assert needle in err
    assert "Traceback" not in err


async def test_send_command_delivers_one_message(anyio_backend: object) -> None:
    with running_server() as (_proc, port):
        async with await LineClient.open(port) as js:
            await js.send_json(type="hello", nick="js")
            await js.json_event("members")
            result = await anyio.run_process(
                [*ANYCHAT, "send", "--port", str(port), "--room", "#general", "nightly build ok"],
                check=False,
            )
            assert result.returncode == 0, result.stderr
            assert re.fullmatch(rb"sent message \d+ to #general\n", result.stdout)
            assert (await js.json_event("message"))["text"] == "nightly build ok"


def test_send_to_unreachable_server_is_one_line() -> None:
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        port = probe.getsockname()[1]  # bound but not listening: connection refused
        result = subprocess.run(
            [*ANYCHAT, "send", "--port", str(port), "x"],
            capture_output=True,
            timeout=30,
            check=False,
        )
    assert result.returncode == 1
    assert result.stderr.decode().count("\n") == 1
    assert f"cannot connect to 127.0.0.1:{port}" in result.stderr.decode()


def test_port_comes_from_the_environment() -> None:
    env = {**os.environ, "ANYCHAT_PORT": "0", "ANYCHAT_DATABASE_URL": "memory://"}
    proc = subprocess.Popen(
        [*ANYCHAT, "serve"], stdout=subprocess.PIPE, stderr=subprocess.DEVNULL, env=env
    )
    try:
        assert proc.stdout is not None
        assert LISTENING.search(proc.stdout.readline())
    finally:
        proc.send_signal(signal.SIGINT)
        assert proc.wait(timeout=10) == 0
        if proc.stdout:
            proc.stdout.close()


def test_uvloop_not_installed_says_how_to_install_it() -> None:
    script = (
        "import sys; sys.modules['uvloop'] = None; "  # as if uvloop were not installed
        "sys.argv = ['anychat', 'serve', '--uvloop', '--port', '0']; "
        "from anychat.cli import main; main()"
    )
    result = subprocess.run(
        [sys.executable, "-c", script], capture_output=True, text=True, timeout=30, check=False
    )
    assert result.returncode == 2
    assert result.stderr == (
        "anychat: --uvloop needs uvloop, which is not installed: pip install 'anychat[uvloop]'\n"
    )


def test_serve_help_describes_every_option() -> None:
    result = subprocess.run(
        [*ANYCHAT, "serve", "--help"],
        capture_output=True,
        text=True,
        timeout=30,
        check=False,
        env={**os.environ, "COLUMNS": "250", "NO_COLOR": "1"},
    )
    assert result.returncode == 0
    options = re.findall(r"^\W*(--[a-z-]+)(.*)$", result.stdout, re.MULTILINE)
    assert {"--max-connections", "--max-line-bytes", "--data-dir"} <= {o for o, _ in options}
    for option, rest in options:
        # Each option's row carries words of help beyond its type and default.
        words = re.sub(r"\[[^\]]*\]|INTEGER|FLOAT|TEXT|PATH|DIRECTORY|RANGE|[<>=x.0-9-]", "", rest)
        assert re.search(r"[a-z]{3,}", words), f"{option} has no help: {rest!r}"
