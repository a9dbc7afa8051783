"""A real server process killed with SIGKILL right after acks: nothing acked is lost."""

from __future__ import annotations

import os
import signal
import sqlite3
import sys
from pathlib import Path

import anyio
import pytest
from anyio.abc import Process

import anychat

pytestmark = pytest.mark.skipif(sys.platform == "win32", reason="SIGKILL is POSIX")


async def _start(url: str) -> tuple[Process, int]:
    env = {**os.environ, "ANYCHAT_SECRET": "k" * 40, "ANYCHAT_ENV": "production"}
    proc = await anyio.open_process(
        [
            sys.executable,
            "-m",
            "anychat",
            "serve",
            "--port",
            "0",
            "--database-url",
            url,
            "--log-level",
            "warning",
        ],
        env=env,
    )
    assert proc.stdout is not None
    buffered = b""
    with anyio.fail_after(10):
        while b"listening on" not in buffered or not buffered.endswith(b"\n"):
            buffered += await proc.stdout.receive()
    line = next(x for x in buffered.decode().splitlines() if "listening on" in x)
    port = int(line.split("listening on ")[1].split()[0].rsplit(":", 1)[1])
    return proc, port


async def _kill(proc: Process) -> None:
    proc.send_signal(signal.SIGKILL)
    with anyio.fail_after(10):
        assert await proc.wait() == -signal.SIGKILL
    await proc.aclose()


async def test_sigkill_after_ack_loses_nothing(tmp_path: Path) -> None:
    path = tmp_path / "chat.db"
    url = f"sqlite:///{path}"
    proc, port = await _start(url)
    acked: list[int] = []
    try:
        with anyio.fail_after(20):

            async def sender(nick: str) -> None:
                async with anychat.connect("127.0.0.1", port, nick=nick) as client:
                    for i in range(20):
                        acked.append((await client.send("#general", f"{nick} {i}")).id)

            async with anyio.create_task_group() as tg:
                for nick in ("ann", "bob", "cy"):
                    tg.start_soon(sender, nick)
                    # kill as soon as the last ack is in: no graceful anything
    finally:
        await _kill(proc)
    assert len(acked) == 60
    db = sqlite3.connect(path)
    try:
        assert db.execute("PRAGMA integrity_check").fetchone()[0] == "ok"
    finally:
        db.close()
    proc, port = await _start(url)
    try:
        with anyio.fail_after(10):
            async with anychat.connect("127.0.0.1", port, nick="dee") as dee:
                stored = await dee.history("#general", limit=500)
                assert sorted(acked) == [x.id for x in stored]
                ack = await dee.send("#general", "after the crash")
                assert ack.id == max(acked) + 1
    finally:
        await _kill(proc)


async def test_production_refuses_a_weak_secret(tmp_path: Path) -> None:
    env = {**os.environ, "ANYCHAT_ENV": "production", "ANYCHAT_SECRET": "changeme"}
    env.pop("JWT_SECRET", None)
    result = await anyio.run_process(
        [
            sys.executable,
            "-m",
            "anychat",
            "serve",
            "--port",
            "0",
            "--database-url",
            f"sqlite:///{tmp_path / 'x.db'}",
        ],
        env=env,
        check=False,
    )
    assert result.returncode == 2
    assert b"ANYCHAT_SECRET" in result.stderr
    assert b"well-known default" in result.stderr


async def test_unreadable_database_is_one_clear_line(tmp_path: Path) -> None:
    junk = tmp_path / "junk.db"
    junk.write_bytes(b"not a database at all" * 50)
    result = await anyio.run_process(
        [
            sys.executable,
            "-m",
            "anychat",
            "serve",
            "--port",
            "0",
            "--database-url",
            f"sqlite:///{junk}",
        ],
        check=False,
    )
    assert result.returncode == 1
    assert result.stderr.decode().strip().splitlines()[-1] == (
        f"anychat: cannot open database {junk}: file is not a database"
    )
    assert b"Traceback" not in result.stderr
