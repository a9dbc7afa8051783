"""One contract, every store: memory, SQLite and PostgreSQL answer every query identically."""

from __future__ import annotations

from collections.abc import AsyncIterator
from pathlib import Path

import pytest

from anychat import model as m
from anychat.errors import ConfigError, StoreError
from anychat.store import Account, Store, describe_url, open_store, parse_url
from anychat.store.sqlite import MIGRATIONS


def store_url(kind: str, request: pytest.FixtureRequest, tmp_path: Path) -> str:
    """A fresh store of ``kind``; PostgreSQL only when asked for (it may skip)."""
    if kind == "postgresql":
        url: str = request.getfixturevalue("postgres_url")
        return url
    return "memory://" if kind == "memory" else f"sqlite:///{tmp_path / 'chat.db'}"


@pytest.fixture(params=["memory", "sqlite", "postgresql"])
async def store(request: pytest.FixtureRequest, tmp_path: Path) -> AsyncIterator[Store]:
    async with open_store(store_url(request.param, request, tmp_path)) as opened:
        yield opened


def msg(msg_id: int, sender: str, target: str, text: str = "hi") -> m.Message:
    return m.Message(id=msg_id, time=1000.0 + msg_id, sender=sender, target=target, text=text)


async def test_accounts_round_trip(store: Store) -> None:
    assert await store.create_account(
        Account(nick="Alice", password_hash="h1", created=5.0, since_id=7)
    )
    assert not await store.create_account(Account(nick="ALICE", password_hash="h2"))
    found = await store.get_account("alice")
    assert found == Account(nick="Alice", password_hash="h1", created=5.0, since_id=7)
    assert "h1" not in repr(found)
    assert await store.set_password("aLiCe", "h3")
    assert not await store.set_password("bob", "h3")
    assert (await store.get_account("Alice")).password_hash == "h3"  # type: ignore[union-attr]
    await store.create_account(Account(nick="bob", password_hash="x"))
    assert [a.nick for a in await store.list_accounts()] == ["Alice", "bob"]
    assert await store.delete_account("ALICE")
    assert not await store.delete_account("alice")
    assert await store.get_account("alice") is None


async def test_last_message_id_and_room_paging(store: Store) -> None:
    assert await store.last_message_id() == 0
    await store.append_messages([msg(i, "ann", "#General", f"m{i}") for i in range(1, 11)])
    await store.append_messages([msg(11, "bob", "#other")])
    assert await store.last_message_id() == 11
    latest = await store.history("#general", limit=3)
    assert [x.id for x in latest] == [8, 9, 10]
    assert all(x.history for x in latest)
    assert latest[0] == m.Message(
        id=8, time=1008.0, sender="ann", target="#General", text="m8", history=True
    )
    assert [x.id for x in await store.history("#GENERAL", before=8, limit=3)] == [5, 6, 7]
    assert [x.id for x in await store.history("#general", after=8, limit=5)] == [9, 10]
    assert [x.id for x in await store.history("#general", after=2, before=6)] == [3, 4, 5]
    assert [x.id for x in await store.history("#other")] == [11]
    assert await store.history("#general", limit=0) == []
    assert await store.history("#nowhere") == []


async def test_room_paging_by_time(store: Store) -> None:
    """Time bounds (exclusive) page like id bounds: a lower bound pages upwards from it."""
    await store.append_messages([msg(i, "ann", "#t", f"m{i}") for i in range(1, 11)])
    await store.append_messages([msg(11, "bob", "#other")])

    async def ids(**bounds: float | int) -> list[int]:
        return [x.id for x in await store.history("#t", **bounds)]  # type: ignore[arg-type]

    assert await ids(before_time=1008.0, limit=3) == [5, 6, 7]
    assert await ids(after_time=1008.0, limit=5) == [9, 10]
    assert await ids(after_time=1002.0, before_time=1006.0) == [3, 4, 5]
    assert await ids(after_time=1002.5, limit=2) == [3, 4]
    assert await ids(after_time=1002.0, before=5) == [3, 4]
    assert await ids(before_time=1001.0) == []


async def test_private_messages_only_for_their_two_parties(store: Store) -> None:
    await store.append_messages(
        [
            msg(1, "ann", "bob", "ann to bob"),
            msg(2, "bob", "ann", "bob to ann"),
            msg(3, "eve", "bob", "eve to bob"),
            msg(4, "ann", "#room", "public"),
        ]
    )
    assert [x.id for x in await store.history("bob", viewer="Ann")] == [1, 2]
    assert [x.id for x in await store.history("ann", viewer="bob")] == [1, 2]
    assert [x.id for x in await store.history("BOB", viewer="bob")] == [1, 2, 3]
    assert [x.id for x in await store.history("ann", viewer="eve")] == []
    assert [x.id for x in await store.history("bob", viewer="eve")] == [3]
    assert [x.id for x in await store.history("eve", viewer="eve")] == [3]
    with pytest.raises(ValueError, match="viewer"):
        await store.history("bob")


async def test_conversations_between_two_moments(store: Store) -> None:
    """CHATHISTORY TARGETS: the rooms asked about and the viewer's correspondents that had
    messages strictly between two moments, each with its last one, counted from the first."""
    await store.append_messages(
        [
            msg(1, "ann", "#General"),
            msg(2, "bob", "#general"),
            msg(3, "ann", "Bob"),
            msg(4, "Bob", "ann"),
            msg(5, "eve", "ann"),
            msg(6, "ann", "#other"),
            msg(7, "eve", "bob"),  # not ann's
            msg(8, "carl", "ANN"),
            msg(9, "bob", "#secret"),  # not asked about
        ]
    )

    async def found(
        start: float = 0, end: float = 2000, limit: int = 10, **kw: object
    ) -> list[tuple[str, float, int]]:
        options: dict[str, object] = {"rooms": ["#General", "#Other"], "viewer": "Ann", **kw}
        got = await store.conversations(start=start, end=end, limit=limit, **options)  # type: ignore[arg-type]
        return [(c.target, c.time, c.id) for c in got]

    everything = [
        ("#General", 1002.0, 2),
        ("Bob", 1004.0, 4),
        ("eve", 1005.0, 5),
        ("#Other", 1006.0, 6),
        ("carl", 1008.0, 8),
    ]
    assert await found() == everything
    assert await found(limit=2) == everything[:2]
    assert await found(2000, 0, limit=2) == everything[-2:]  # the newest, still oldest first
    assert await found(2000, 0) == everything
    assert await found(1002, 1006) == everything[1:3]  # both moments excluded
    assert await found(1003.5, 1001.5) == [("#General", 1002.0, 2), ("Bob", 1003.0, 3)]
    assert await found(viewer=None) == [everything[0], everything[3]]
    assert await found(private_since=6) == [everything[0], everything[3], everything[4]]
    assert await found(rooms=[]) == [everything[1], everything[2], everything[4]]
    assert await found(limit=0) == []
    assert await found(1500, 1500) == []
    assert await found(rooms=[], viewer="BOB") == [("ann", 1004.0, 4), ("eve", 1007.0, 7)]


async def test_message_ids_must_increase(store: Store) -> None:
    await store.append_messages([msg(5, "a", "#r")])
    with pytest.raises(StoreError):
        await store.append_messages([msg(5, "a", "#r")])
    assert [x.id for x in await store.history("#r")] == [5]


@pytest.mark.parametrize("size", [1, 9, 10, 11, 100, 237])
async def test_a_batch_of_any_size_is_stored_whole_or_not_at_all(store: Store, size: int) -> None:
    """SQLite inserts a batch in chunks of several rows per statement: every size comes back
    in order, and a clash anywhere in a batch (here its last row) stores none of it."""
    texts = [f"m{i}" for i in range(1, size + 1)]
    rooms = ["#a", "#b", "bob"]
    await store.append_messages(
        [msg(i, "ann", rooms[i % 3], text) for i, text in enumerate(texts, 1)]
    )
    assert [x.text for x in await store.history("#a", limit=500)] == texts[2::3]
    assert [x.text for x in await store.history("#b", limit=500)] == texts[::3]
    assert [x.text for x in await store.history("bob", viewer="ann", limit=500)] == texts[1::3]
    clash = [msg(size + i, "ann", "#a", "lost") for i in range(1, size + 1)]
    clash[-1] = msg(size, "ann", "#a", "lost")  # an id already stored
    with pytest.raises(StoreError):
        await store.append_messages(clash)
    assert await store.last_message_id() == size
    assert "lost" not in [x.text for x in await store.history("#a", limit=500)]


async def test_sqlite_finds_private_messages_by_index(tmp_path: Path) -> None:
    """Only private messages are in the index by sender: the queries that look a sender's
    messages up must still use it (SQLite needs the index's condition in the query)."""
    import sqlite3

    async with open_store(f"sqlite:///{tmp_path / 'chat.db'}") as store:
        await store.append_messages([msg(1, "ann", "bob"), msg(2, "bob", "#r")])
        assert [x.id for x in await store.history("ann", viewer="ann")] == [1]
    db = sqlite3.connect(tmp_path / "chat.db")
    try:
        plan = " ".join(
            row[3]
            for row in db.execute(
                "EXPLAIN QUERY PLAN SELECT id FROM messages WHERE (target_key = ? OR "
                "(sender_key = ? AND target_key NOT LIKE '#%')) ORDER BY id DESC LIMIT 50",
                ("ann", "ann"),
            )
        )
    finally:
        db.close()
    assert "messages_private_by_sender" in plan and "SCAN" not in plan


async def test_kinds_and_unicode_survive(store: Store) -> None:
    action = m.Message(
        id=1, time=1.5, sender="ann", target="#r", text="wave 👋 ünïcode", kind=m.Kind.ACTION
    )
    await store.append_messages([action])
    (back,) = await store.history("#r")
    assert back.kind is m.Kind.ACTION
    assert back.text == action.text


async def test_closed_store_raises_store_error(store: Store) -> None:
    await store.aclose()
    with pytest.raises(StoreError):
        await store.last_message_id()
    with pytest.raises(StoreError):
        await store.append_messages([msg(1, "a", "#r")])
    await store.aclose()  # closing twice is harmless


async def test_texts_come_back_exactly(store: Store) -> None:
    """Whatever a codec lets through comes back byte for byte: NUL (which PostgreSQL text
    cannot hold), backslashes next to it, C0/C1 controls, bidi overrides, long lines."""
    texts = [
        "a\x00b",
        "\x00",
        "\\0 and \\\x00\\",
        "\\0 not escaped",
        "\x01\x1b[2J\x7f\x9b bidi \u202e\u2066 done",
        "\U0001f600" * 2000,
        "",
    ]
    await store.append_messages([msg(i, "ann", "#r", t) for i, t in enumerate(texts, 1)])
    assert [x.text for x in await store.history("#r", limit=50)] == texts


async def test_sqlite_reopens_with_data_and_schema_version(tmp_path: Path) -> None:
    url = f"sqlite:///{tmp_path / 'sub' / 'chat.db'}"
    async with open_store(url) as store:
        await store.append_messages([msg(1, "a", "#r")])
    async with open_store(url) as store:
        assert await store.last_message_id() == 1
    import sqlite3

    db = sqlite3.connect(tmp_path / "sub" / "chat.db")
    try:
        assert db.execute("PRAGMA user_version").fetchone()[0] == len(MIGRATIONS)
        assert db.execute("PRAGMA journal_mode").fetchone()[0] == "wal"
        db.execute("PRAGMA user_version = 99")
        db.commit()
    finally:
        db.close()
    with pytest.raises(StoreError, match="newer"):
        async with open_store(url):
            pass


async def test_sqlite_garbage_file_is_a_store_error(tmp_path: Path) -> None:
    path = tmp_path / "junk.db"
    path.write_bytes(b"this is not a database" * 100)
    with pytest.raises(StoreError, match="cannot open"):
        async with open_store(f"sqlite:///{path}"):
            pass


def test_store_urls() -> None:
    assert parse_url("sqlite:///chat.db") == ("sqlite", "chat.db")
    assert parse_url("sqlite:////abs/chat.db") == ("sqlite", "/abs/chat.db")
    assert parse_url("memory://") == ("memory", "")
    url = "postgresql://ann@127.0.0.1:5432/chat"
    assert parse_url(url) == ("postgresql", url)
    assert parse_url("postgres://db.example/chat") == ("postgresql", "postgres://db.example/chat")
    for bad in ("chat.db", "sqlite://", "sqlite:///", "mysql://x", "postgresql:x"):
        with pytest.raises(ConfigError, match="ANYCHAT_DATABASE_URL"):
            parse_url(bad)
    with pytest.raises(ConfigError) as info:
        parse_url("pgsql://ann:hunter2@host/db")
    assert "hunter2" not in str(info.value)
    assert describe_url("postgresql://ann:hunter2@h/db") == "postgresql://ann:***@h/db"
    assert describe_url("postgresql://h/db?sslmode=require&password=x1") == (
        "postgresql://h/db?sslmode=require&password=***"
    )


async def test_sqlite_migrates_an_old_database(tmp_path: Path) -> None:
    import sqlite3

    from anychat.store.sqlite import MIGRATIONS

    path = tmp_path / "old.db"
    db = sqlite3.connect(path)
    try:
        db.executescript(MIGRATIONS[0] + "; PRAGMA user_version = 1;")
        db.execute("INSERT INTO accounts VALUES ('ann', 'Ann', 'h', 1.0)")
        db.commit()
    finally:
        db.close()
    async with open_store(f"sqlite:///{path}") as store:
        assert await store.get_account("ann") == Account(
            nick="Ann", password_hash="h", created=1.0, since_id=0
        )


async def test_a_batch_that_cannot_be_written_does_not_poison_the_next(store: Store) -> None:
    """A batch is all or nothing, and whatever one raises (here: text no encoder takes, which
    the codecs refuse long before a store sees it), the next batch commits."""
    batch = [msg(1, "ann", "#a", "ok"), msg(2, "eve", "#a", "X\ud800")]
    try:
        await store.append_messages(batch)
    except Exception:
        stored: list[str] = []
    else:
        stored = [x.text for x in batch]
    await store.append_messages([msg(3, "ann", "#a", "next")])
    assert [x.text for x in await store.history("#a", limit=10)] == [*stored, "next"]


async def test_keyed_messages_are_the_newest_with_a_key_in_id_order(store: Store) -> None:
    def keyed(i: int, key: str | None) -> m.Message:
        return m.Message(id=i, time=float(i), sender="ann", target="#r", text=f"t{i}", key=key)

    await store.append_messages([keyed(1, "k1"), keyed(2, None), keyed(3, "k3")])
    await store.append_messages([keyed(4, "k4"), keyed(5, None)])
    got = await store.keyed_messages(2)
    assert [(msg.id, msg.key, msg.text, msg.target) for msg in got] == [
        (3, "k3", "t3", "#r"),
        (4, "k4", "t4", "#r"),
    ]
    assert [msg.id for msg in await store.keyed_messages(10)] == [1, 3, 4]
    assert await store.keyed_messages(0) == []


async def test_sqlite_keys_survive_a_reopen_and_old_databases_migrate(tmp_path: Path) -> None:
    import sqlite3

    path = tmp_path / "old.db"
    db = sqlite3.connect(path, isolation_level=None)
    for number, migration in enumerate(MIGRATIONS[:3]):  # a database from before keys
        db.executescript(f"BEGIN; {migration}; PRAGMA user_version = {number + 1}; COMMIT;")
    db.execute("INSERT INTO messages VALUES (1, 1.0, 'ann', 'ann', '#r', '#r', 'old', 'plain')")
    db.close()
    url = f"sqlite:///{path}"
    async with open_store(url) as store:
        assert [msg.text for msg in await store.history("#r")] == ["old"]
        await store.append_messages(
            [m.Message(id=2, time=2.0, sender="ann", target="#r", text="new", key="k")]
        )
    async with open_store(url) as store:
        (again,) = await store.keyed_messages(5)
        assert (again.id, again.key) == (2, "k")


async def test_account_changes_are_logged_in_order_from_a_cursor(store: Store) -> None:
    start, none = await store.account_changes()
    assert none == []
    await store.create_account(Account(nick="Ada", password_hash="h"))
    await store.create_account(Account(nick="ADA", password_hash="h"))  # refused: no change
    await store.create_account(Account(nick="bob", password_hash="h"))
    await store.set_password("bob", "h2")  # not a change of who is registered
    await store.delete_account("ada")
    cursor, changes = await store.account_changes(start)
    assert [(c.nick, c.registered) for c in changes] == [
        ("Ada", True),
        ("bob", True),
        ("Ada", False),
    ]
    assert cursor == changes[-1].id and [c.id for c in changes] == sorted(c.id for c in changes)
    assert await store.account_changes(cursor) == (cursor, [])
    assert (await store.account_changes())[0] == cursor


async def test_another_process_s_account_changes_are_seen(tmp_path: Path) -> None:
    """What `anychat users add` does from another process: a second connection to the file."""
    url = f"sqlite:///{tmp_path / 'chat.db'}"
    async with open_store(url) as server_side, open_store(url) as admin:
        cursor, _ = await server_side.account_changes()
        await admin.create_account(Account(nick="quinn", password_hash="h"))
        cursor, changes = await server_side.account_changes(cursor)
        assert [(c.nick, c.registered) for c in changes] == [("quinn", True)]
        await admin.delete_account("quinn")
        _, changes = await server_side.account_changes(cursor)
        assert [(c.nick, c.registered) for c in changes] == [("quinn", False)]


async def test_a_missing_database_is_not_created_when_asked_not_to(tmp_path: Path) -> None:
    path = tmp_path / "nope" / "chat.db"
    with pytest.raises(StoreError, match="no database at"):
        async with open_store(f"sqlite:///{path}", create=False):
            pass
    assert not path.exists() and not path.parent.exists()
