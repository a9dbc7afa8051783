"""Accounts and message history behind one narrow interface, so the backend is a URL away.

``memory://`` serves tests and throwaway servers; ``sqlite:///path`` is the embedded, durable
default; ``postgresql://user@host/db`` (or ``postgres://``) is shared by several nodes and needs
the ``cluster`` extra (psycopg, imported only for such a URL). The interface is deliberately small
(create/get/list/delete an account, append a batch of messages in one transaction, read a page of
history, which conversations had messages when, the last id, the idempotency keys of recent
messages) so any database can implement it. Implementations raise
:class:`~anychat.errors.StoreError` for every failure of the medium, never a driver exception.

History visibility is decided here, in one place: a room's history is the room's messages; a
nick's history is the private conversation between that nick and the viewer (and the viewer's own
nick means all of the viewer's private messages). Nobody reads somebody else's private messages.
"""

from __future__ import annotations

import re
from collections.abc import AsyncIterator, Callable, Iterable, Sequence
from contextlib import asynccontextmanager
from dataclasses import dataclass
from typing import Final, Protocol

from .. import model as m
from ..errors import ConfigError

__all__ = [
    "MAX_HISTORY_LIMIT",
    "Account",
    "AccountChange",
    "BackgroundAppend",
    "Store",
    "describe_url",
    "open_store",
    "parse_url",
    "pick_conversations",
    "visible",
]

#: How the committer hands a batch to a store without awaiting it (``Store.background_append``).
BackgroundAppend = Callable[[Sequence[m.Message], Callable[[BaseException | None], object]], None]

#: The largest page a history query returns, whatever the caller asks for.
MAX_HISTORY_LIMIT: Final = 500


@dataclass(frozen=True, slots=True, kw_only=True)
class Account:
    nick: str
    #: An Argon2 PHC string; the password itself is never stored.
    password_hash: str = ""
    created: float = 0.0
    #: The first message id of the account's private history: a nick may have been used by
    #: guests before it was registered, and their private messages are not the owner's.
    since_id: int = 0

    def __repr__(self) -> str:  # the hash stays out of logs too
        return f"Account(nick={self.nick!r}, created={self.created!r}, since_id={self.since_id!r})"


@dataclass(frozen=True, slots=True, kw_only=True)
class AccountChange:
    """An account added (``registered``) or deleted, by this process or another one."""

    id: int
    nick: str
    registered: bool


class Store(Protocol):
    """What the server needs from persistent storage. Every method may raise StoreError."""

    async def create_account(self, account: Account) -> bool:
        """Add an account; ``False`` if the nick (case-insensitively) already has one."""
        ...

    async def get_account(self, nick: str) -> Account | None: ...

    async def list_accounts(self) -> list[Account]: ...

    async def set_password(self, nick: str, password_hash: str) -> bool:
        """``False`` if there is no such account."""
        ...

    async def delete_account(self, nick: str) -> bool:
        """``False`` if there is no such account."""
        ...

    async def append_messages(self, messages: Sequence[m.Message]) -> None:
        """Store a batch atomically: when this returns, every message in it is durable."""
        ...

    def instant_append(self) -> Callable[[Sequence[m.Message]], None] | None:
        """``append_messages`` as a plain call, for a store whose appends never wait (the
        memory store), else ``None``. With one, the hub's flush stores what is due and queues
        its acks in the reader's own turn, instead of the committer's task taking a turn of
        its own (``Committer.commit_due``)."""
        ...

    def background_append(self) -> BackgroundAppend | None:
        """``append_messages`` without awaiting it, for a store whose appends run in a thread
        of its own (SQLite, PostgreSQL), else ``None`` (the committer's task then awaits
        ``append_messages``). ``append(messages, done)`` queues the batch behind every call
        made before it and returns; ``done(error)`` follows on the event loop, never inline:
        ``None`` once the batch is durable, else what failed. Bound to the running event loop:
        call it from inside the loop (the committer does, once, as its task starts)."""
        ...

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
        """A page of messages in id order, each with ``history=True`` (see :mod:`anychat.model`
        ``History`` for the paging rules: a lower bound, by id or time, pages upwards from it).
        A nick ``target`` needs a ``viewer``."""
        ...

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
        """The conversations that had messages strictly between ``start`` and ``end``: of
        ``rooms`` (the names as given), and with ``viewer``, the private ones (the nick at the
        other end as its newest message spells it; ids below ``private_since`` not counted).
        Each with its newest message by id in between; chosen and ordered by
        :func:`pick_conversations` (see :class:`~anychat.model.Conversations`)."""
        ...

    async def keyed_messages(self, limit: int) -> list[m.Message]:
        """The newest ``limit`` messages that carry an idempotency key (``Message.key``), in id
        order: a restarted server learns them, so a client's resend is not stored twice."""
        ...

    async def last_message_id(self) -> int:
        """The highest stored message id (0 when empty), to seed the broker's counter."""
        ...

    async def account_changes(self, after: int | None = None) -> tuple[int, list[AccountChange]]:
        """Accounts added or deleted since change ``after``, oldest first, and the cursor to
        pass next time. ``None``: no changes, just the current cursor (where to start).

        Cheap enough to poll every second: ``anychat users add`` runs in another process, and
        this is how a running server hears of it (SQLite records each change with a trigger).
        """
        ...

    async def aclose(self) -> None: ...


def visible(msg: m.Message, target: str, viewer: str | None) -> bool:
    """Whether ``msg`` belongs to the history of ``target`` as seen by ``viewer``."""
    key = m.casefold(target)
    if m.is_room(target):
        return m.casefold(msg.target) == key
    if m.is_room(msg.target) or viewer is None:
        return False
    me = m.casefold(viewer)
    sender, to = m.casefold(msg.sender), m.casefold(msg.target)
    if key == me:
        return me in (sender, to)
    return (sender, to) in ((me, key), (key, me))


def pick_conversations(
    found: Iterable[m.Conversation], start: float, end: float, limit: int
) -> list[m.Conversation]:
    """The ``limit`` conversations counted from ``start`` towards ``end`` (the ones whose last
    message is the oldest when ``start`` is the earlier, the newest when it is the later), in
    order of that message's time, oldest first (ties by its id: one order on every store)."""
    ordered = sorted(found, key=lambda c: (c.time, c.id))
    limit = max(0, min(limit, MAX_HISTORY_LIMIT))
    if limit == 0:
        return []
    return ordered[:limit] if start <= end else ordered[-limit:]


def check_query(target: str, viewer: str | None, limit: int) -> int:
    """Validate a history query; returns the effective limit."""
    if not m.is_room(target) and viewer is None:
        raise ValueError("private history needs a viewer")
    return max(0, min(limit, MAX_HISTORY_LIMIT))


def parse_url(url: str) -> tuple[str, str]:
    """``(scheme, rest)`` for a store URL; ConfigError naming the setting when unusable.

    For PostgreSQL, ``rest`` is the whole URL (libpq parses it when the store opens)."""
    scheme, sep, rest = url.partition("://")
    if scheme in ("postgresql", "postgres") and sep:
        return "postgresql", url
    if not sep or scheme not in ("memory", "sqlite"):
        raise ConfigError(
            f"ANYCHAT_DATABASE_URL: unsupported store URL {describe_url(url)!r} "
            "(use sqlite:///path/to/file.db, postgresql://user@host/dbname or memory://)"
        )
    if scheme == "sqlite":
        # sqlite:///relative.db and sqlite:////abs/path.db, as SQLAlchemy spells them.
        if not rest.startswith("/") or rest == "/":
            raise ConfigError(f"ANYCHAT_DATABASE_URL: {url!r} names no file (sqlite:///chat.db)")
        rest = rest[1:]
    return scheme, rest


def describe_url(url: str) -> str:
    """A store URL as errors and logs may show it: any password in it is replaced by ``***``."""
    url = re.sub(r"(://[^/?#@:]*:)[^/?#@]*@", r"\1***@", url)
    return re.sub(r"(?i)\b(password=)[^&\s]*", r"\1***", url)


@asynccontextmanager
async def open_store(url: str, *, create: bool = True) -> AsyncIterator[Store]:
    """Open the store a URL names and close it afterwards (backends are imported lazily).

    ``create=False``: a database file that does not exist is a :class:`StoreError`, not a new
    empty database (admin commands must not invent one the server never sees).
    """
    scheme, rest = parse_url(url)
    store: Store
    if scheme == "memory":
        from .memory import MemoryStore

        store = MemoryStore()
    elif scheme == "postgresql":
        try:
            from .postgres import PostgresStore
        except ImportError as exc:
            raise ConfigError(
                f"ANYCHAT_DATABASE_URL: PostgreSQL needs psycopg ({exc}); "
                "install it with: pip install 'anychat[cluster]'"
            ) from exc
        store = await PostgresStore.open(rest)
    else:
        from .sqlite import SqliteStore

        store = await SqliteStore.open(rest, create=create)
    try:
        yield store
    finally:
        await store.aclose()
