"""SIGKILL under load, again and again: every acked message is in the database afterwards.

Senders keep sending through each kill (the client reconnects and resends unacked messages with
their idempotency keys); after every restart each acked id must be stored with its text, the
database must pass ``PRAGMA integrity_check``, and no message may be stored twice.
"""

from __future__ import annotations

import sqlite3
import sys
from pathlib import Path

import anyio
import pytest

import anychat

from ..test_resend import _kill, _start

pytestmark = pytest.mark.skipif(sys.platform == "win32", reason="SIGKILL is POSIX")

KILLS = 5
SENDERS = 6


@pytest.mark.timeout(600)
async def test_repeated_sigkill_under_load_loses_no_acked_message(tmp_path: Path) -> None:
    path = tmp_path / "chat.db"
    url = f"sqlite:///{path}"
    proc, port = await _start(url)
    acks: dict[str, int] = {}
    target = [0]
    progress = [anyio.Event()]
    try:
        async with anyio.create_task_group() as tg:
            stop = anyio.Event()

            async def sender(n: int) -> None:
                async with anychat.connect(
                    "127.0.0.1",
                    port,
                    nick=f"s{n}",
                    reconnect=True,
                    reconnect_delay=0.05,
                    timeout=30,
                ) as client:
                    i = 0
                    while not stop.is_set():
                        text = f"{n}-{i}"
                        acks[text] = (await client.send("#general", text)).id
                        if len(acks) >= target[0]:
                            progress[0].set()
                        i += 1

            for n in range(SENDERS):
                tg.start_soon(sender, n)
            with anyio.fail_after(300):
                for _ in range(KILLS):
                    target[0] = len(acks) + 200
                    progress[0] = anyio.Event()
                    await progress[0].wait()
                    await _kill(proc)
                    proc, _ = await _start(url, port)
                stop.set()
    finally:
        await _kill(proc)
    db = sqlite3.connect(path)
    try:
        assert db.execute("PRAGMA integrity_check").fetchone()[0] == "ok"
        rows = db.execute("SELECT id, text FROM messages").fetchall()
    finally:
        db.close()
    stored = {text: id_ for id_, text in rows}
    assert len(stored) == len(rows), "no message stored twice"
    missing = {text for text in acks if stored.get(text) != acks[text]}
    assert not missing, f"{len(missing)} of {len(acks)} acked messages not stored as acked"
    assert len(acks) >= KILLS * 200
