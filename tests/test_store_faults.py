"""The database vanishing under a running server, and a store that fails in unexpected ways.

Deleting the database's directory used to change nothing visible: SQLite kept writing to the
unlinked file, every message was acked, and all of them were gone after a restart. Now the
commit that follows is refused (``store_unavailable``), one clear line is logged, and live chat
goes on. The longer fault runs (SIGKILL loops, a full disk, a read-only file system) are in
``tests/faults/`` (``nox -s faults``).
"""

from __future__ import annotations

import os
import shutil
from collections.abc import Callable, Sequence
from pathlib import Path
from typing import Any

import anyio
import pytest

import anychat
from anychat import model as m
from anychat.errors import StoreUnavailable
from anychat.store import Store
from anychat.store.memory import MemoryStore
from anychat.store.sqlite import SqliteStore


def _remove_directory(path: Path) -> None:
    shutil.rmtree(path.parent)


def _unlink_file(path: Path) -> None:
    path.unlink()


def _replace_file(path: Path) -> None:
    os.replace(path.with_name("other.db"), path)


def _unlink_wal(path: Path) -> None:
    path.with_name(path.name + "-wal").unlink()


@pytest.mark.parametrize(
    "vanish",
    [_remove_directory, _unlink_file, _replace_file, _unlink_wal],
    ids=lambda f: f.__name__,
)
async def test_a_vanished_database_stops_the_acks_not_the_chat(
    tmp_path: Path, caplog: pytest.LogCaptureFixture, vanish: Callable[[Path], None]
) -> None:
    path = tmp_path / "data" / "chat.db"
    path.parent.mkdir()
    (path.parent / "other.db").write_bytes(b"")
    store = await SqliteStore.open(str(path))
    try:
        with anyio.fail_after(20):
            async with (
                anychat.serve(port=0, store=store) as srv,
                anychat.connect(*srv.address, nick="ann") as ann,
                anychat.connect(*srv.address, nick="bob") as bob,
            ):
                await ann.send("#general", "stored")
                vanish(path)
                for text in ("gone 1", "gone 2"):
                    with pytest.raises(StoreUnavailable):
                        await ann.send("#general", text)
                got = [(await bob.wait_for(m.Message)).text for _ in range(3)]
                assert got == ["stored", "gone 1", "gone 2"]
    finally:
        await store.aclose()
    lines = [r.getMessage() for r in caplog.records if "message store failed" in r.getMessage()]
    assert len(lines) == 1 and "was deleted or replaced" in lines[0]


class _ThreadBomb(MemoryStore):
    """A store whose worker thread raises what no store should (a bug, not a disk error)."""

    def __init__(self) -> None:
        super().__init__()
        self.bomb: type[BaseException] | None = None

    async def append_messages(self, messages: Sequence[m.Message]) -> None:
        bomb = self.bomb
        if bomb is not None:

            def explode() -> None:
                raise bomb("unexpected failure in the store's thread")

            await anyio.to_thread.run_sync(explode)
        await super().append_messages(messages)


class _SqliteThreadBomb(SqliteStore):
    """The same in SQLite's own thread, whose appends the committer does not await."""

    bomb: type[BaseException] | None = None

    def _append(self, rows: list[tuple[object, ...]], db: Any) -> None:
        if self.bomb is not None:
            raise self.bomb("unexpected failure in the store's thread")
        super()._append(rows, db)


@pytest.mark.parametrize("kind", ["memory", "sqlite"])
@pytest.mark.parametrize("bomb", [RuntimeError, KeyError, MemoryError, OverflowError])
async def test_unexpected_errors_in_the_store_thread_cost_one_batch_only(
    bomb: type[BaseException], kind: str, tmp_path: Path, caplog: pytest.LogCaptureFixture
) -> None:
    store: _ThreadBomb | _SqliteThreadBomb
    if kind == "memory":
        store = _ThreadBomb()
    else:
        store = await _SqliteThreadBomb.open(str(tmp_path / "chat.db"))
    failing: Store = store
    try:
        with anyio.fail_after(20):
            async with (
                anychat.serve(port=0, store=failing) as srv,
                anychat.connect(*srv.address, nick="ann") as ann,
                anychat.connect(*srv.address, nick="bob") as bob,
            ):
                await ann.send("#general", "before")
                store.bomb = bomb
                with pytest.raises(StoreUnavailable):
                    await ann.send("#general", "during")
                store.bomb = None
                after = await ann.send("#general", "after")
                got = [(await bob.wait_for(m.Message)).text for _ in range(3)]
                assert got == ["before", "during", "after"]  # live chat never stopped
                assert [x.text for x in await bob.history("#general")] == ["before", "after"]
                assert after.id == 3
    finally:
        await store.aclose()
    assert any("unexpected error from the message store" in r.getMessage() for r in caplog.records)
