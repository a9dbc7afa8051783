"""The PostgreSQL store: accounts and history for several nodes (``postgresql://user@host/db``).

Why psycopg 3's *sync* API in a worker thread: its async API runs on asyncio only, and anychat
must work on trio too. One connection is used only from the store's own thread
(:class:`~anychat.store.worker.StoreThread`), exactly as the SQLite store does, so one thread
talks to the server at a time, neither event loop ever blocks on the network, and a call that
started (a COMMIT in flight) finishes before its caller sees a cancellation, so no ack is sent
for a transaction that may still roll back. Throughput is bounded by one round trip per batch, which
the server's group commit amortises over every message that arrived meanwhile.

Transactions: the connection runs in autocommit mode (a read is one statement and leaves no
transaction open); every write is one explicit transaction, so a batch of messages is all or
nothing, and whatever aborts it (a server error, a value the driver cannot send) rolls it back
before the next batch starts.

Connection loss never stops the server. A call that finds the connection gone raises
:class:`~anychat.errors.StoreError` (senders get ``store_unavailable``; live chat goes on) and
drops the connection; the next call connects again, with no restart. Before each call the idle
connection's socket is polled: a readable socket on an idle connection means the server closed it
(a restart, ``pg_terminate_backend``, an idle timeout), so it is replaced before it is used and
nobody pays for the stale connection. A COMMIT whose answer is lost with the connection is
reported as a failure although PostgreSQL may have committed it: a sender can be told
"not stored" for a message that is in the history, never the other way round. A refused
connection fails at once; a network that silently drops packets holds a call (and the calls
queued behind it) for up to ``connect_timeout`` (5 s) or ``tcp_user_timeout`` (15 s), the
defaults set unless the URL sets its own.

Case-insensitive names: the ``*_key`` columns hold :func:`anychat.model.casefold` of the name,
computed in Python, so PostgreSQL agrees with the other stores whatever its locale; they use the
``"C"`` collation so ordering (``users list``) is by code point, as in SQLite.

PostgreSQL text cannot hold NUL, which a chat line may contain. Such a text is stored escaped
(``\\`` as ``\\\\``, NUL as ``\\0``) with ``text_escaped`` set, and read back exactly; other
texts are stored as they are.

Schema changes are numbered migrations recorded in a one-row ``schema_version`` table. Opening
the store applies the ones the database lacks, each in its own transaction under an advisory
lock, so nodes starting together migrate once; a database from a newer release is refused.

Message ids, now and in a cluster: today the local bus numbers messages itself, starting after
:meth:`PostgresStore.last_message_id` (``MAX(id)``), which is right for one node only: two nodes
counting from the same maximum would hand out the same ids. The cluster work (a networked
:class:`anychat.bus.Bus`, whose ``allocate_id`` the broker calls; not this module) takes every
id from one shared counter at the moment a node accepts the message:
``INCRBY`` on a Redis key, done in the same Lua script that publishes the message to its
room's (or recipient's node's) channel, so id order is publish order, the order every node delivers in; when the key is missing
(Redis restarted without persistence) it is seeded from ``MAX(id)`` here, plus a margin for
batches still in flight. A PostgreSQL sequence (``nextval``) is the durable alternative, at one
database round trip per message before delivery; blocks of ids reserved per node are not, since
they break accept order across nodes. Either way the ``messages.id`` primary key still refuses an
id stored twice, and batches whose ids interleave with other nodes' are accepted as they come.
"""

from __future__ import annotations

import dataclasses
import re
import select
from collections.abc import Callable, Sequence
from functools import partial
from typing import Any, Final, TypeVar

import anyio
import psycopg
from psycopg import pq
from psycopg.conninfo import conninfo_to_dict, make_conninfo

from .. import model as m
from ..errors import StoreError
from . import (
    MAX_HISTORY_LIMIT,
    Account,
    AccountChange,
    BackgroundAppend,
    check_query,
    describe_url,
    pick_conversations,
)
from .worker import StoreThread

__all__ = ["MIGRATIONS", "PostgresStore"]

T = TypeVar("T")

MIGRATIONS: Final[tuple[str, ...]] = (
    # 1: accounts and messages. *_key columns hold casefolded names for lookups.
    """
    CREATE TABLE accounts (
        nick_key TEXT COLLATE "C" PRIMARY KEY,
        nick TEXT NOT NULL,
        password_hash TEXT NOT NULL,
        created DOUBLE PRECISION NOT NULL,
        since_id BIGINT NOT NULL DEFAULT 0
    );
    CREATE TABLE messages (
        id BIGINT PRIMARY KEY,
        time DOUBLE PRECISION NOT NULL,
        sender TEXT NOT NULL,
        sender_key TEXT COLLATE "C" NOT NULL,
        target TEXT NOT NULL,
        target_key TEXT COLLATE "C" NOT NULL,
        text TEXT NOT NULL,
        text_escaped BOOLEAN NOT NULL DEFAULT FALSE,
        kind TEXT NOT NULL
    );
    -- History pages: a room's messages (and a nick's received ones) by id, and what a nick sent.
    CREATE INDEX messages_by_target ON messages (target_key, id);
    CREATE INDEX messages_by_sender ON messages (sender_key, id);
    """,
    # 2: a log of accounts added and deleted, written by triggers whichever process made the
    # change, so running servers follow `anychat users add|delete` (account_changes).
    """
    CREATE TABLE account_changes (
        id BIGSERIAL PRIMARY KEY,
        nick TEXT NOT NULL,
        registered BOOLEAN NOT NULL
    );
    CREATE FUNCTION anychat_account_changed() RETURNS trigger AS $$
    BEGIN
        IF TG_OP = 'INSERT' THEN
            INSERT INTO account_changes (nick, registered) VALUES (NEW.nick, TRUE);
        ELSE
            INSERT INTO account_changes (nick, registered) VALUES (OLD.nick, FALSE);
        END IF;
        RETURN NULL;
    END $$ LANGUAGE plpgsql;
    CREATE TRIGGER account_changed AFTER INSERT OR DELETE ON accounts
        FOR EACH ROW EXECUTE FUNCTION anychat_account_changed();
    """,
    # 3: the sender's idempotency key, so a restarted server still recognises a resend.
    """
    ALTER TABLE messages ADD COLUMN msg_key TEXT;
    CREATE INDEX messages_with_key ON messages (id) WHERE msg_key IS NOT NULL;
    """,
)

#: Serialises migrations between nodes that open one database at the same moment.
_MIGRATION_LOCK: Final = 0x616E7963  # "anyc"
#: Connection settings used unless the URL sets them: fail fast when the server is gone, and
#: notice a dead peer on a silent network instead of waiting for the kernel's hours.
_CONNECT_DEFAULTS: Final = {
    "connect_timeout": "5",
    "keepalives": "1",
    "keepalives_idle": "10",
    "keepalives_interval": "5",
    "keepalives_count": "3",
    "tcp_user_timeout": "15000",
    "application_name": "anychat",
}
_COLUMNS: Final = "id, time, sender, target, text, text_escaped, kind"
_UNESCAPE: Final = re.compile(r"\\(.)", re.DOTALL)


def _escape(text: str) -> tuple[str, bool]:
    if "\x00" not in text:
        return text, False
    return text.replace("\\", "\\\\").replace("\x00", "\\0"), True


def _unescape(text: str) -> str:
    return _UNESCAPE.sub(lambda g: "\x00" if g[1] == "0" else g[1], text)


def _row_to_message(row: tuple[Any, ...]) -> m.Message:
    msg_id, time, sender, target, text, escaped, kind = row
    return m.Message(
        id=msg_id,
        time=time,
        sender=sender,
        target=target,
        text=_unescape(text) if escaped else text,
        kind=m.Kind(kind),
        history=True,
    )


def _migrate(conn: psycopg.Connection[tuple[Any, ...]]) -> None:
    for _ in range(len(MIGRATIONS) + 1):
        with conn.transaction():
            conn.execute("SELECT pg_advisory_xact_lock(%s)", (_MIGRATION_LOCK,))
            conn.execute("CREATE TABLE IF NOT EXISTS schema_version (version INTEGER NOT NULL)")
            row = conn.execute("SELECT version FROM schema_version").fetchone()
            if row is None:
                conn.execute("INSERT INTO schema_version VALUES (0)")
                version = 0
            else:
                version = int(row[0])
            if version > len(MIGRATIONS):
                raise StoreError(
                    f"database schema version {version} is newer than this anychat supports "
                    f"({len(MIGRATIONS)}); upgrade anychat"
                )
            if version == len(MIGRATIONS):
                return
            # Another node may have migrated while we waited for the lock: apply only the next.
            conn.execute(MIGRATIONS[version])
            conn.execute("UPDATE schema_version SET version = %s", (version + 1,))


def _is_stale(conn: psycopg.Connection[tuple[Any, ...]]) -> bool:
    """Whether an idle connection was closed by the server (its socket has something to read)."""
    if conn.closed or conn.pgconn.transaction_status != pq.TransactionStatus.IDLE:
        return True
    try:
        readable, _, _ = select.select([conn.pgconn.socket], [], [], 0)
    except (OSError, ValueError, psycopg.OperationalError):
        return True
    return bool(readable)


def _rows(messages: Sequence[m.Message]) -> list[tuple[object, ...]]:
    rows: list[tuple[object, ...]] = []
    for msg in messages:
        text, escaped = _escape(msg.text)
        rows.append(
            (
                msg.id,
                msg.time,
                msg.sender,
                m.casefold(msg.sender),
                msg.target,
                m.casefold(msg.target),
                text,
                escaped,
                msg.kind.value,
                msg.key,  # keys have no NUL (the broker refuses control characters)
            )
        )
    return rows


def _append(rows: list[tuple[object, ...]], conn: psycopg.Connection[tuple[Any, ...]]) -> None:
    with conn.transaction(), conn.cursor() as cur:
        # COPY: one statement for the whole batch (about 1.5x faster than executemany's
        # pipelined INSERTs for 50 rows, measured on this machine); the primary key
        # still refuses an id stored twice, aborting the batch.
        with cur.copy(
            "COPY messages (id, time, sender, sender_key, target, target_key, text, "
            "text_escaped, kind, msg_key) FROM STDIN"
        ) as copy:
            for row in rows:
                copy.write_row(row)


class PostgresStore:
    """Use :func:`anychat.store.open_store` (``postgresql://...``) or :meth:`open`."""

    def __init__(self, url: str, conn: psycopg.Connection[tuple[Any, ...]] | None) -> None:
        self.url = url
        self.label = describe_url(url)
        self._conn = conn
        self._closed = False
        self._worker = StoreThread("anychat-postgres")

    @classmethod
    async def open(cls, url: str) -> PostgresStore:
        """Connect and migrate; StoreError when the database cannot be reached or used."""
        store = cls(url, None)
        try:
            store._conn = await anyio.to_thread.run_sync(store._connect, True)
        except psycopg.Error as exc:
            raise StoreError(f"cannot open database {store.label}: {_reason(exc)}") from exc
        return store

    def _connect(self, migrate: bool = False) -> psycopg.Connection[tuple[Any, ...]]:
        given = conninfo_to_dict(self.url)
        extra = {k: v for k, v in _CONNECT_DEFAULTS.items() if k not in given}
        conn = psycopg.connect(make_conninfo(self.url, **extra), autocommit=True)
        try:
            if migrate:
                _migrate(conn)
        except BaseException:
            conn.close()
            raise
        return conn

    def _guarded(self, func: Callable[[psycopg.Connection[tuple[Any, ...]]], T]) -> Callable[[], T]:
        """``func`` as the store's thread runs it: on a live connection (made anew when the
        last one broke), recovered and its error made a StoreError when it fails."""

        def call() -> T:
            if self._closed:
                raise StoreError("store is closed")
            conn = self._conn
            if conn is not None and _is_stale(conn):
                conn.close()
                conn = self._conn = None
            if conn is None:
                try:
                    conn = self._conn = self._connect()
                except psycopg.Error as exc:
                    raise StoreError(f"database {self.label} unreachable: {_reason(exc)}") from exc
            try:
                return func(conn)
            except BaseException as exc:
                # Whatever went wrong, the next call must start on a clean connection: roll back
                # what may still be open, and drop a connection that is broken or unsure.
                self._recover(conn)
                if isinstance(exc, psycopg.Error):
                    raise StoreError(f"database {self.label}: {_reason(exc)}") from exc
                raise

        return call

    async def _run(self, func: Callable[[psycopg.Connection[tuple[Any, ...]]], T]) -> T:
        if self._closed:  # its thread is gone too
            raise StoreError("store is closed")
        return await self._worker.run(self._guarded(func))

    def _recover(self, conn: psycopg.Connection[tuple[Any, ...]]) -> None:
        if not conn.closed and conn.pgconn.transaction_status != pq.TransactionStatus.IDLE:
            try:
                conn.rollback()
            except psycopg.Error:
                pass
        if (
            conn.closed
            or conn.broken
            or conn.pgconn.transaction_status != pq.TransactionStatus.IDLE
        ):
            conn.close()
            if self._conn is conn:
                self._conn = None

    # ------------------------------------------------------------------ accounts

    async def create_account(self, account: Account) -> bool:
        def create(conn: psycopg.Connection[tuple[Any, ...]]) -> bool:
            cur = conn.execute(
                "INSERT INTO accounts (nick_key, nick, password_hash, created, since_id) "
                "VALUES (%s, %s, %s, %s, %s) ON CONFLICT (nick_key) DO NOTHING",
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
        def get(conn: psycopg.Connection[tuple[Any, ...]]) -> Account | None:
            row = conn.execute(
                "SELECT nick, password_hash, created, since_id FROM accounts WHERE nick_key = %s",
                (m.casefold(nick),),
            ).fetchone()
            return (
                None
                if row is None
                else Account(nick=row[0], password_hash=row[1], created=row[2], since_id=row[3])
            )

        return await self._run(get)

    async def list_accounts(self) -> list[Account]:
        def list_(conn: psycopg.Connection[tuple[Any, ...]]) -> list[Account]:
            rows = conn.execute(
                "SELECT nick, password_hash, created, since_id FROM accounts ORDER BY nick_key"
            ).fetchall()
            return [
                Account(nick=r[0], password_hash=r[1], created=r[2], since_id=r[3]) for r in rows
            ]

        return await self._run(list_)

    async def set_password(self, nick: str, password_hash: str) -> bool:
        def set_(conn: psycopg.Connection[tuple[Any, ...]]) -> bool:
            cur = conn.execute(
                "UPDATE accounts SET password_hash = %s WHERE nick_key = %s",
                (password_hash, m.casefold(nick)),
            )
            return cur.rowcount == 1

        return await self._run(set_)

    async def delete_account(self, nick: str) -> bool:
        def delete(conn: psycopg.Connection[tuple[Any, ...]]) -> bool:
            cur = conn.execute("DELETE FROM accounts WHERE nick_key = %s", (m.casefold(nick),))
            return cur.rowcount == 1

        return await self._run(delete)

    # ------------------------------------------------------------------ messages

    def instant_append(self) -> None:
        return None  # every append waits for the server (and its thread)

    async def append_messages(self, messages: Sequence[m.Message]) -> None:
        rows = _rows(messages)
        if rows:
            await self._run(partial(_append, rows))

    def background_append(self) -> BackgroundAppend:
        submit = self._worker.submitter()

        def append(
            messages: Sequence[m.Message], done: Callable[[BaseException | None], object]
        ) -> None:
            if self._closed:  # its thread is gone too
                raise StoreError("store is closed")
            work = self._guarded(partial(_append, _rows(messages)))
            submit(work, lambda _, error: done(error))

        return append

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
            where, args = "target_key = %s", [key]
        else:
            me = m.casefold(viewer or "")
            if key == me:
                where = "(target_key = %s OR (sender_key = %s AND target_key NOT LIKE '#%%'))"
                args = [me, me]
            else:
                where = "((sender_key = %s AND target_key = %s) OR (sender_key = %s AND target_key = %s))"
                args = [me, key, key, me]
        if before is not None:
            where += " AND id < %s"
            args.append(before)
        if after is not None:
            where += " AND id > %s"
            args.append(after)
        if before_time is not None:
            where += " AND time < %s"
            args.append(before_time)
        if after_time is not None:
            where += " AND time > %s"
            args.append(after_time)
        order = "ASC" if after is not None or after_time is not None else "DESC"
        sql = f"SELECT {_COLUMNS} FROM messages WHERE {where} ORDER BY id {order} LIMIT %s"
        params = (*args, limit)

        def query(conn: psycopg.Connection[tuple[Any, ...]]) -> list[m.Message]:
            rows = conn.execute(sql, params).fetchall()
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
        in_rooms = (
            "SELECT r.i, x.id, x.time FROM unnest(%s::text[]) WITH ORDINALITY AS r(key, i)"
            " CROSS JOIN LATERAL (SELECT id, time FROM messages"
            "  WHERE target_key = r.key AND time > %s AND time < %s"
            "  ORDER BY id DESC LIMIT 1) AS x"
        )
        # Each correspondent's newest message, and of those only as many as can be picked,
        # from the end counted from.
        order = "ASC" if start <= end else "DESC"
        private = (
            "SELECT id, time, peer FROM ("
            " SELECT DISTINCT ON (peer_key) id, time,"
            "  CASE WHEN sender_key = %s THEN target ELSE sender END AS peer,"
            "  CASE WHEN sender_key = %s THEN target_key ELSE sender_key END AS peer_key"
            " FROM messages"
            " WHERE (target_key = %s OR (sender_key = %s AND target_key NOT LIKE '#%%'))"
            "  AND id >= %s AND time > %s AND time < %s"
            " ORDER BY peer_key, id DESC"
            f") AS latest ORDER BY time {order}, id {order} LIMIT %s"
        )
        keys = [m.casefold(room) for room in rooms]

        def query(conn: psycopg.Connection[tuple[Any, ...]]) -> list[m.Conversation]:
            found = []
            if keys:
                for i, msg_id, when in conn.execute(in_rooms, (keys, low, high)).fetchall():
                    found.append(m.Conversation(target=rooms[i - 1], time=when, id=msg_id))
            if me is not None and count:
                args = (me, me, me, me, private_since, low, high, count)
                for msg_id, when, peer in conn.execute(private, args).fetchall():
                    found.append(m.Conversation(target=peer, time=when, id=msg_id))
            return pick_conversations(found, start, end, limit)

        return await self._run(query)

    async def keyed_messages(self, limit: int) -> list[m.Message]:
        sql = (
            f"SELECT {_COLUMNS}, msg_key FROM messages WHERE msg_key IS NOT NULL "
            "ORDER BY id DESC LIMIT %s"
        )

        def keyed(conn: psycopg.Connection[tuple[Any, ...]]) -> list[m.Message]:
            rows = conn.execute(sql, (limit,)).fetchall()
            rows.reverse()
            return [dataclasses.replace(_row_to_message(r[:7]), key=r[7]) for r in rows]

        return await self._run(keyed)

    async def last_message_id(self) -> int:
        def last(conn: psycopg.Connection[tuple[Any, ...]]) -> int:
            row = conn.execute("SELECT COALESCE(MAX(id), 0) FROM messages").fetchone()
            return int(row[0]) if row else 0

        return await self._run(last)

    async def account_changes(self, after: int | None = None) -> tuple[int, list[AccountChange]]:
        def changes(conn: psycopg.Connection[tuple[Any, ...]]) -> tuple[int, list[AccountChange]]:
            if after is None:
                row = conn.execute("SELECT COALESCE(MAX(id), 0) FROM account_changes").fetchone()
                return (int(row[0]) if row else 0), []
            rows = conn.execute(
                "SELECT id, nick, registered FROM account_changes WHERE id > %s ORDER BY id",
                (after,),
            ).fetchall()
            found = [AccountChange(id=r[0], nick=r[1], registered=bool(r[2])) for r in rows]
            return (found[-1].id if found else after), found

        return await self._run(changes)

    async def aclose(self) -> None:
        def close() -> None:
            if self._conn is not None:
                self._conn.close()
                self._conn = None

        if not self._closed:
            self._closed = True
            with anyio.CancelScope(shield=True):
                await self._worker.run(close)
            self._worker.close()


def _reason(exc: psycopg.Error) -> str:
    """The first line of a driver error (libpq's messages run over several lines)."""
    text = str(exc).strip().splitlines()
    return text[0] if text else type(exc).__name__
