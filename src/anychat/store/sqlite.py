"""The SQLite store: the embedded, durable default (``sqlite:///path/to/chat.db``).

Off the event loop: one connection, used only from the store's own long-lived thread
(:class:`~anychat.store.worker.StoreThread`), so exactly one thread touches it at a time and
neither asyncio nor trio ever blocks on the disk. Calls are not abandoned on cancellation: a commit that started
finishes (or fails) before its caller sees the cancellation, so an ack is never sent for a
transaction that may still roll back.

Durability: WAL journal with ``synchronous=FULL``. WAL alone (``NORMAL``) survives a killed process
but may lose the last transactions on power loss or an OS crash; ``FULL`` fsyncs the WAL on every
commit, so an acknowledged message survives both. The cost is one fsync per *transaction*, and the
server's group commit puts every message that arrived during the previous fsync into the next
transaction, so the cost per message shrinks as load grows (see ``benchmarks/store_bench.py``).

Schema changes are numbered migrations tracked in ``PRAGMA user_version``; opening a database runs
the ones it lacks, each in its own transaction, and refuses a database from a newer release.

A database file deleted while the server runs (or its directory removed) is noticed at the next
commit, which then fails: senders get ``store_unavailable`` instead of an ack for a message that
would be gone at the next start (:class:`_FileWatch`).
"""

from __future__ import annotations

import dataclasses
import os
import sqlite3
from collections.abc import Callable, Sequence
from functools import partial
from itertools import chain
from pathlib import Path
from typing import Final, Self, TypeVar

import anyio

from .. import model as m
from ..errors import StoreError
from . import (
    MAX_HISTORY_LIMIT,
    Account,
    AccountChange,
    BackgroundAppend,
    check_query,
    pick_conversations,
)
from .worker import StoreThread

__all__ = ["MIGRATIONS", "SqliteStore"]

T = TypeVar("T")

MIGRATIONS: Final[tuple[str, ...]] = (
    # 1: accounts and messages. *_key columns hold casefolded names for lookups.
    """
    CREATE TABLE accounts (
        nick_key TEXT PRIMARY KEY,
        nick TEXT NOT NULL,
        password_hash TEXT NOT NULL,
        created REAL NOT NULL
    );
    CREATE TABLE messages (
        id INTEGER PRIMARY KEY,
        time REAL NOT NULL,
        sender TEXT NOT NULL,
        sender_key TEXT NOT NULL,
        target TEXT NOT NULL,
        target_key TEXT NOT NULL,
        text TEXT NOT NULL,
        kind TEXT NOT NULL
    );
    CREATE INDEX messages_by_target ON messages (target_key, id);
    CREATE INDEX messages_by_sender ON messages (sender_key, id);
    """,
    # 2: where an account's private history starts.
    """
    ALTER TABLE accounts ADD COLUMN since_id INTEGER NOT NULL DEFAULT 0;
    """,
    # 3: a log of accounts added and deleted, written by triggers whichever process made the
    # change, so a running server can follow `anychat users add|delete` (account_changes).
    """
    CREATE TABLE account_changes (
        id INTEGER PRIMARY KEY AUTOINCREMENT,
        nick TEXT NOT NULL,
        registered INTEGER NOT NULL
    );
    CREATE TRIGGER account_added AFTER INSERT ON accounts BEGIN
        INSERT INTO account_changes (nick, registered) VALUES (NEW.nick, 1);
    END;
    CREATE TRIGGER account_deleted AFTER DELETE ON accounts BEGIN
        INSERT INTO account_changes (nick, registered) VALUES (OLD.nick, 0);
    END;
    """,
    # 4: the sender's idempotency key, so a restarted server still recognises a resend.
    """
    ALTER TABLE messages ADD COLUMN msg_key TEXT;
    CREATE INDEX messages_with_key ON messages (id) WHERE msg_key IS NOT NULL;
    """,
    # 5: only private messages are looked up by sender (a room's go by target), so only they
    # are in that index: a room message updates one index less (about 1.2 of 8 µs per row).
    # The queries repeat the index's condition word for word, which is how SQLite knows.
    """
    DROP INDEX messages_by_sender;
    CREATE INDEX messages_private_by_sender ON messages (sender_key, id)
        WHERE target_key NOT LIKE '#%';
    """,
)

_COLUMNS: Final = "id, time, sender, target, text, kind"
_INSERT_INTO: Final = (
    "INSERT INTO messages (id, time, sender, sender_key, target, target_key, text, kind, msg_key) "
    "VALUES "
)
_ROW: Final = "(?, ?, ?, ?, ?, ?, ?, ?, ?)"
_INSERT: Final = _INSERT_INTO + _ROW
#: Rows per multi-row INSERT, largest first. Binding many rows to one statement costs about a
#: quarter less CPU per row than ``executemany``'s one step per row (the store's thread is
#: most of what a durable store costs at load); a few fixed sizes, so each statement stays in
#: the connection's cache of prepared statements. 100 rows bind 900 values, under the 999 of
#: old SQLite builds.
_CHUNKS: Final = (100, 10)
_INSERT_ROWS: Final = {size: _INSERT_INTO + ", ".join([_ROW] * size) for size in _CHUNKS}


def _insert(db: sqlite3.Connection, rows: list[tuple[object, ...]]) -> None:
    """Insert ``rows`` in as few statements as the chunk sizes allow (in one transaction)."""
    done, count = 0, len(rows)
    for size in _CHUNKS:
        statement = _INSERT_ROWS[size]
        while count - done >= size:
            db.execute(statement, list(chain.from_iterable(rows[done : done + size])))
            done += size
    if done < count:
        db.executemany(_INSERT, rows[done:])


def _row_to_message(row: tuple[int, float, str, str, str, str]) -> m.Message:
    return m.Message(
        id=row[0],
        time=row[1],
        sender=row[2],
        target=row[3],
        text=row[4],
        kind=m.Kind(row[5]),
        history=True,
    )


def _rows(messages: Sequence[m.Message]) -> list[tuple[object, ...]]:
    return [
        (
            msg.id,
            msg.time,
            msg.sender,
            m.casefold(msg.sender),
            msg.target,
            m.casefold(msg.target),
            msg.text,
            msg.kind.value,
            msg.key,
        )
        for msg in messages
    ]


def _migrate(db: sqlite3.Connection) -> None:
    (version,) = db.execute("PRAGMA user_version").fetchone()
    if version > len(MIGRATIONS):
        raise StoreError(
            f"database schema version {version} is newer than this anychat supports "
            f"({len(MIGRATIONS)}); upgrade anychat"
        )
    for number in range(version, len(MIGRATIONS)):
        # executescript commits first, so BEGIN/COMMIT make each migration all-or-nothing.
        db.executescript(
            f"BEGIN IMMEDIATE; {MIGRATIONS[number]}; PRAGMA user_version = {number + 1}; COMMIT;"
        )


def _connect(path: str, create: bool = True) -> sqlite3.Connection:
    if not create and not Path(path).is_file():
        raise StoreError(f"no database at {Path(path).resolve()}")
    Path(path).parent.mkdir(parents=True, exist_ok=True)
    # isolation_level=None: we issue BEGIN/COMMIT ourselves, so a batch is exactly one transaction.
    db = sqlite3.connect(path, isolation_level=None, check_same_thread=False)
    try:
        db.execute("PRAGMA busy_timeout = 5000")
        mode = db.execute("PRAGMA journal_mode = WAL").fetchone()[0]
        if mode != "wal":
            raise StoreError(f"{path}: cannot use WAL journal mode (got {mode})")
        db.execute("PRAGMA synchronous = FULL")
        db.execute("PRAGMA foreign_keys = ON")
        _migrate(db)
    except BaseException:
        db.close()
        raise
    return db


class _FileWatch:
    """Notices when the database file is no longer the one at its path.

    Deleting the file (or its directory) while the server runs does not stop SQLite: it goes on
    writing to the open, unlinked file, every commit succeeds, and everything is gone at the
    next start. So after each commit the store checks that its paths (the database and its
    WAL) still name the files it opened: a path that is gone, or names another file, means the
    commit went nowhere durable, and it fails instead of being acked. The watch keeps each file
    open, so its inode number cannot be given to a new file while it is watched. Two ``stat``
    calls per committed batch, not per message.
    """

    def __init__(self, path: str) -> None:
        self.path = path
        self._fds: dict[str, int] = {}
        #: The (device, inode) each watched path named when it was opened.
        self._files: dict[str, tuple[int, int]] = {}
        self._watch(path)

    def _watch(self, path: str) -> None:
        try:
            fd = os.open(path, os.O_RDONLY | getattr(os, "O_CLOEXEC", 0))
        except OSError:
            return
        opened = os.fstat(fd)
        self._fds[path] = fd
        self._files[path] = (opened.st_dev, opened.st_ino)

    def check(self) -> None:
        wal = self.path + "-wal"
        if wal not in self._fds:
            self._watch(wal)  # SQLite creates it with the first write
        for path, file in self._files.items():
            try:
                named = os.stat(path)
            except OSError:  # gone, or its directory is (or is no longer a directory)
                named = None
            if named is None or (named.st_dev, named.st_ino) != file:
                raise StoreError(
                    f"database file {path} was deleted or replaced while the server runs "
                    "(or its directory was removed): nothing written since is durable, so "
                    "messages are no longer acknowledged; restore the file and restart"
                )

    def close(self) -> None:
        for fd in self._fds.values():
            os.close(fd)
        self._fds.clear()
        self._files.clear()


class SqliteStore:
    """Use :func:`anychat.store.open_store` (``sqlite:///path``) or :meth:`open`."""

    def __init__(self, db: sqlite3.Connection, path: str) -> None:
        self._db: sqlite3.Connection | None = db
        self.path = path
        self._worker = StoreThread("anychat-sqlite")
        self._file = _FileWatch(path)

    @classmethod
    async def open(cls, path: str, *, create: bool = True) -> Self:
        try:
            db = await anyio.to_thread.run_sync(_connect, path, create)
        except sqlite3.Error as exc:
            raise StoreError(f"cannot open database {path}: {exc}") from exc
        except OSError as exc:
            raise StoreError(f"cannot open database {path}: {exc.strerror or exc}") from exc
        return cls(db, path)

    def _guarded(self, func: Callable[[sqlite3.Connection], T]) -> Callable[[], T]:
        """``func`` as the store's thread runs it: on the open connection, rolled back and
        its error made a StoreError when it fails."""

        def call() -> T:
            db = self._db
            if db is None:
                raise StoreError("store is closed")
            try:
                return func(db)
            except BaseException as exc:
                # Whatever went wrong (a database error, or a bug such as a value the driver
                # cannot bind), the open transaction must not swallow the next batch's rows.
                if db.in_transaction:
                    try:
                        db.execute("ROLLBACK")
                    except sqlite3.Error:
                        pass
                if isinstance(exc, sqlite3.Error):
                    raise StoreError(f"database {self.path}: {exc}") from exc
                raise

        return call

    async def _run(self, func: Callable[[sqlite3.Connection], T]) -> T:
        if self._db is None:  # closed: its thread is gone too
            raise StoreError("store is closed")
        return await self._worker.run(self._guarded(func))

    # ------------------------------------------------------------------ accounts

    async def create_account(self, account: Account) -> bool:
        def create(db: sqlite3.Connection) -> bool:
            cur = db.execute(
                "INSERT OR IGNORE INTO accounts (nick_key, nick, password_hash, created, since_id) "
                "VALUES (?, ?, ?, ?, ?)",
                (
                    m.casefold(account.nick),
                    account.nick,
                    account.password_hash,
                    account.created,
                    account.since_id,
                ),
            )
            return cur.rowcount == 1

        return await self._run(create)

    async def get_account(self, nick: str) -> Account | None:
        def get(db: sqlite3.Connection) -> Account | None:
            row = db.execute(
                "SELECT nick, password_hash, created, since_id FROM accounts WHERE nick_key = ?",
                (m.casefold(nick),),
            ).fetchone()
            return (
                None
                if row is None
                else Account(nick=row[0], password_hash=row[1], created=row[2], since_id=row[3])
            )

        return await self._run(get)

    async def list_accounts(self) -> list[Account]:
        def list_(db: sqlite3.Connection) -> list[Account]:
            rows = db.execute(
                "SELECT nick, password_hash, created, since_id FROM accounts ORDER BY nick_key"
            ).fetchall()
            return [
                Account(nick=r[0], password_hash=r[1], created=r[2], since_id=r[3]) for r in rows
            ]

        return await self._run(list_)

    async def set_password(self, nick: str, password_hash: str) -> bool:
        def set_(db: sqlite3.Connection) -> bool:
            cur = db.execute(
                "UPDATE accounts SET password_hash = ? WHERE nick_key = ?",
                (password_hash, m.casefold(nick)),
            )
            return cur.rowcount == 1

        return await self._run(set_)

    async def delete_account(self, nick: str) -> bool:
        def delete(db: sqlite3.Connection) -> bool:
            cur = db.execute("DELETE FROM accounts WHERE nick_key = ?", (m.casefold(nick),))
            return cur.rowcount == 1

        return await self._run(delete)

    # ------------------------------------------------------------------ messages

    def instant_append(self) -> None:
        return None  # every append waits for the disk (and its thread)

    async def append_messages(self, messages: Sequence[m.Message]) -> None:
        rows = _rows(messages)
        if rows:
            await self._run(partial(self._append, rows))

    def background_append(self) -> BackgroundAppend:
        submit = self._worker.submitter()

        def append(
            messages: Sequence[m.Message], done: Callable[[BaseException | None], object]
        ) -> None:
            if self._db is None:  # closed: its thread is gone too
                raise StoreError("store is closed")
            work = self._guarded(partial(self._append, _rows(messages)))
            submit(work, lambda _, error: done(error))

        return append

    def _append(self, rows: list[tuple[object, ...]], db: sqlite3.Connection) -> None:
        db.execute("BEGIN IMMEDIATE")
        _insert(db, rows)
        db.execute("COMMIT")
        self._file.check()  # committed to a file that still exists, or no ack

    async def history(
        self,
        target: str,
        *,
        viewer: str | None = None,
        before: int | None = None,
        after: int | None = None,
        limit: int = 50,
        before_time: float | None = None,
        after_time: float | None = None,
    ) -> list[m.Message]:
        limit = check_query(target, viewer, limit)
        key = m.casefold(target)
        args: list[object]
        if m.is_room(target):
            where, args = "target_key = ?", [key]
        else:
            me = m.casefold(viewer or "")
            if key == me:
                where = "(target_key = ? OR (sender_key = ? AND target_key NOT LIKE '#%'))"
                args = [me, me]
            else:
                where = (
                    "((sender_key = ? AND target_key = ?) OR (sender_key = ? AND target_key = ?))"
                )
                args = [me, key, key, me]
        if before is not None:
            where += " AND id < ?"
            args.append(before)
        if after is not None:
            where += " AND id > ?"
            args.append(after)
        if before_time is not None:
            where += " AND time < ?"
            args.append(before_time)
        if after_time is not None:
            where += " AND time > ?"
            args.append(after_time)
        order = "ASC" if after is not None or after_time is not None else "DESC"
        sql = f"SELECT {_COLUMNS} FROM messages WHERE {where} ORDER BY id {order} LIMIT ?"
        params = (*args, limit)

        def query(db: sqlite3.Connection) -> list[m.Message]:
            rows = db.execute(sql, params).fetchall()
            if order == "DESC":
                rows.reverse()
            return [_row_to_message(r) for r in rows]

        return await self._run(query)

    async def conversations(
        self,
        *,
        rooms: Sequence[str],
        viewer: str | None,
        start: float,
        end: float,
        limit: int,
        private_since: int = 0,
    ) -> list[m.Conversation]:
        low, high = min(start, end), max(start, end)
        count = max(0, min(limit, MAX_HISTORY_LIMIT))
        me = m.casefold(viewer) if viewer is not None else None
        # Each room's newest message in the window, walking its index down from the top.
        in_room = (
            "SELECT id, time FROM messages WHERE target_key = ? AND time > ? AND time < ? "
            "ORDER BY id DESC LIMIT 1"
        )
        # Each correspondent's newest message (SQLite takes the bare columns from the row
        # MAX() chose), and of those only as many as can be picked, from the end counted from.
        order = "ASC" if start <= end else "DESC"
        private = (
            "SELECT id, time, peer FROM ("
            " SELECT MAX(id) AS id, time,"
            "  CASE WHEN sender_key = ? THEN target ELSE sender END AS peer,"
            "  CASE WHEN sender_key = ? THEN target_key ELSE sender_key END AS peer_key"
            " FROM messages"
            " WHERE (target_key = ? OR (sender_key = ? AND target_key NOT LIKE '#%'))"
            "  AND id >= ? AND time > ? AND time < ?"
            " GROUP BY peer_key"
            f") ORDER BY time {order}, id {order} LIMIT ?"
        )

        def query(db: sqlite3.Connection) -> list[m.Conversation]:
            found = []
            for room in rooms:
                row = db.execute(in_room, (m.casefold(room), low, high)).fetchone()
                if row is not None:
                    found.append(m.Conversation(target=room, time=row[1], id=row[0]))
            if me is not None and count:
                args = (me, me, me, me, private_since, low, high, count)
                for row in db.execute(private, args):
                    found.append(m.Conversation(target=row[2], time=row[1], id=row[0]))
            return pick_conversations(found, start, end, limit)

        return await self._run(query)

    async def keyed_messages(self, limit: int) -> list[m.Message]:
        def keyed(db: sqlite3.Connection) -> list[m.Message]:
            rows = db.execute(
                f"SELECT {_COLUMNS}, msg_key FROM messages WHERE msg_key IS NOT NULL "
                "ORDER BY id DESC LIMIT ?",
                (limit,),
            ).fetchall()
            rows.reverse()
            return [dataclasses.replace(_row_to_message(row[:6]), key=row[6]) for row in rows]

        return await self._run(keyed)

    async def last_message_id(self) -> int:
        def last(db: sqlite3.Connection) -> int:
            return int(db.execute("SELECT COALESCE(MAX(id), 0) FROM messages").fetchone()[0])

        return await self._run(last)

    async def account_changes(self, after: int | None = None) -> tuple[int, list[AccountChange]]:
        def changes(db: sqlite3.Connection) -> tuple[int, list[AccountChange]]:
            if after is None:
                row = db.execute("SELECT COALESCE(MAX(id), 0) FROM account_changes").fetchone()
                return int(row[0]), []
            rows = db.execute(
                "SELECT id, nick, registered FROM account_changes WHERE id > ? ORDER BY id",
                (after,),
            ).fetchall()
            found = [AccountChange(id=r[0], nick=r[1], registered=bool(r[2])) for r in rows]
            return (found[-1].id if found else after), found

        return await self._run(changes)

    async def aclose(self) -> None:
        def close(db: sqlite3.Connection) -> None:
            db.close()
            self._file.close()

        if self._db is not None:
            with anyio.CancelScope(shield=True):
                await self._run(close)
            self._db = None
            self._worker.close()
