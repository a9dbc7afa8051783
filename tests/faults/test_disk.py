"""A full disk under a running server: senders are told (``store_unavailable``), live chat
goes on, and once the disk has room again the server stores and acks by itself.

(A database that turns read-only while the server runs is
``tests/test_history.py::test_sqlite_write_failure_mid_run``, through SQLite's ``query_only``:
a file system cannot be remounted read-only while the server holds files open for writing.)

Each case mounts its own small tmpfs (root only; skipped with the reason otherwise), so the
machine's real disks are never filled.
"""

from __future__ import annotations

import os
import subprocess
from collections.abc import Iterator
from pathlib import Path

import anyio
import pytest

import anychat
from anychat import model as m
from anychat.errors import StoreUnavailable
from anychat.store.sqlite import SqliteStore


@pytest.fixture
def small_disk(tmp_path: Path) -> Iterator[Path]:
    mount = tmp_path / "disk"
    mount.mkdir()
    if os.geteuid() != 0:
        pytest.skip("mounting a tmpfs needs root")
    done = subprocess.run(
        ["mount", "-t", "tmpfs", "-o", "size=4m", "tmpfs", str(mount)],
        capture_output=True,
        check=False,
    )
    if done.returncode != 0:
        pytest.skip(f"cannot mount a tmpfs here: {done.stderr.decode().strip()}")
    try:
        yield mount
    finally:
        subprocess.run(["umount", "-l", str(mount)], check=False)


def _fill(path: Path) -> None:
    with path.open("wb") as f:
        try:
            while True:
                f.write(b"\0" * 65536)
                f.flush()
        except OSError:
            pass


async def _until_refused(ann: anychat.Client, prefix: str) -> list[str]:
    """Send until the store refuses one (a page of WAL may still have room); the texts sent."""
    sent = []
    for i in range(2000):
        text = f"{prefix} {i} " + "x" * 300
        sent.append(text)
        try:
            await ann.send("#general", text)
        except StoreUnavailable:
            return sent
    raise AssertionError("the disk never filled up")


async def test_disk_full_is_reported_and_recovers_by_itself(small_disk: Path) -> None:
    store = await SqliteStore.open(str(small_disk / "chat.db"))
    try:
        with anyio.fail_after(120):
            async with (
                anychat.serve(port=0, store=store) as srv,
                anychat.connect(*srv.address, nick="ann") as ann,
                anychat.connect(*srv.address, nick="bob") as bob,
            ):
                first = await ann.send("#general", "before")
                _fill(small_disk / "filler")
                sent = await _until_refused(ann, "full")
                # Live delivery never waited for the disk.
                seen = [(await bob.wait_for(m.Message)).text for _ in range(len(sent) + 1)]
                assert seen == ["before", *sent]
                (small_disk / "filler").unlink()
                again = await ann.send("#general", "after")
                assert again.id > first.id
                texts = [x.text for x in await bob.history("#general", limit=500)]
                assert texts[0] == "before" and texts[-1] == "after"
    finally:
        await store.aclose()
