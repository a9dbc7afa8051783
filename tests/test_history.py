"""History over the wire: replay on join, paging, DM privacy, reconnects, a failing disk."""

from __future__ import annotations

from collections.abc import AsyncIterator, Sequence
from pathlib import Path
from typing import Any

import anyio
import pytest

import anychat
from anychat import model as m
from anychat.errors import LoginRequired, NotMember, StoreError, StoreUnavailable
from anychat.store import Store
from anychat.store.memory import MemoryStore

from .helpers import LineClient

SECRET = "s" * 40


@pytest.fixture(params=["memory", "sqlite", "postgresql"])
def database_url(request: pytest.FixtureRequest, tmp_path: Path) -> str:
    if request.param == "postgresql":
        url: str = request.getfixturevalue("postgres_url")  # skips without PostgreSQL
        return url
    return "memory://" if request.param == "memory" else f"sqlite:///{tmp_path / 'chat.db'}"


@pytest.fixture
async def server(database_url: str) -> AsyncIterator[anychat.Server]:
    async with anychat.serve(
        port=0, database_url=database_url, secret=SECRET, history_length=3
    ) as srv:
        yield srv


async def test_join_replays_recent_messages_marked_as_history(server: anychat.Server) -> None:
    with anyio.fail_after(10):
        async with anychat.connect(*server.address, nick="ann") as ann:
            for i in range(5):
                await ann.send("#general", f"m{i}")
            async with anychat.connect(
                *server.address, nick="bob", autojoin=False, history=True
            ) as bob:
                await bob.join("#general")
                replay = [await bob.wait_for(m.Message) for _ in range(3)]
                assert [x.text for x in replay] == ["m2", "m3", "m4"]
                assert all(x.history and x.sender == "ann" for x in replay)
                await ann.send("#general", "live")
                live = await bob.wait_for(m.Message)
                assert (live.text, live.history) == ("live", False)
                assert live.id == replay[-1].id + 1


async def test_history_paging(server: anychat.Server) -> None:
    with anyio.fail_after(10):
        async with anychat.connect(*server.address, nick="ann") as ann:
            acks = [await ann.send("#general", f"m{i}") for i in range(10)]
            ids = [a.id for a in acks]
            page = await ann.history("#general", limit=4)
            assert [x.id for x in page] == ids[-4:]
            older = await ann.history("#general", before=page[0].id, limit=4)
            assert [x.id for x in older] == ids[2:6]
            newer = await ann.history("#general", after=ids[1], limit=3)
            assert [x.text for x in newer] == ["m2", "m3", "m4"]
            assert [x.id for x in await ann.history(limit=2)] == ids[-2:]  # current room
            with pytest.raises(NotMember):
                await ann.history("#elsewhere")
            with pytest.raises(LoginRequired):
                await ann.history("bob")


async def test_private_history_is_only_for_its_two_parties(server: anychat.Server) -> None:
    address = server.address
    with anyio.fail_after(15):
        async with (
            anychat.connect(*address, nick="ann") as ann,
            anychat.connect(*address, nick="bob") as bob,
            anychat.connect(*address, nick="eve") as eve,
        ):
            await ann.register("ann's password")
            await bob.register("bob's password")
            await eve.register("eve's password")
            await ann.send("bob", "secret for bob")
            await bob.send("ann", "secret for ann")
            await ann.send("#general", "public")
            assert [x.text for x in await ann.history("bob")] == [
                "secret for bob",
                "secret for ann",
            ]
            assert [x.text for x in await bob.history("ann")] == [
                "secret for bob",
                "secret for ann",
            ]
            assert await eve.history("ann") == []
            assert await eve.history("bob") == []
            assert await eve.history("eve") == []
            assert [x.text for x in await bob.history("bob")] == [
                "secret for bob",
                "secret for ann",
            ]
            # "cy" is a guest when ann writes to it; whoever registers cy later cannot read it.
            async with anychat.connect(*address, nick="cy") as cy:
                await ann.send("cy", "for the guest cy")
                await cy.wait_for(m.Message)
            async with anychat.connect(*address, nick="cy") as cy:
                await cy.register("cy's new password")
                assert await cy.history("ann") == []
                assert await cy.history("cy") == []
                await ann.send("cy", "for the account cy")
                assert [x.text for x in await cy.history("ann")] == ["for the account cy"]
                assert [x.text for x in await cy.history("cy", after=0)] == ["for the account cy"]
            assert [x.text for x in await ann.history("cy")] == [
                "for the guest cy",
                "for the account cy",
            ]


async def conversations(
    port: int, nick: str, password: str, autojoin: bool = True, **ask: object
) -> list[object]:
    """What a JSON client logged in as ``nick`` hears to ``conversations`` (``ask``'s fields)."""
    async with await LineClient.open(port) as peer:
        await peer.send_json(type="hello", nick=nick, password=password, autojoin=autojoin)
        await peer.json_event("welcome")
        await peer.send_json(type="conversations", ref=1, **ask)
        event = await peer.json_event("conversations")
        assert event["ref"] == 1
        found: list[object] = event["conversations"]
        return found


async def test_conversations_are_the_ones_the_asker_may_read(server: anychat.Server) -> None:
    address = server.address
    with anyio.fail_after(15):
        async with (
            anychat.connect(*address, nick="cy", autojoin=False),
            anychat.connect(*address, nick="ann") as ann,
        ):
            await ann.register("ann's password")
            to_guest = await ann.send("cy", "for the guest cy")
        async with (
            anychat.connect(*address, nick="cy", autojoin=False) as cy,
            anychat.connect(*address, nick="bob") as bob,
        ):
            await cy.register("cy's password")
            await bob.join("#bobs")
            await bob.send("#bobs", "not ann's room")
            public = await bob.send("#general", "public")
            to_cy = await bob.send("cy", "for the account cy")

        def seen(name: str, ack: m.Ack) -> dict[str, object]:
            return {"to": name, "time": round(ack.time, 6), "id": ack.id}

        everything: dict[str, Any] = {"start": 0, "end": 4102444800}
        # cy: not in #general; what the guest cy was sent is not the account's.
        assert await conversations(
            server.port, "cy", "cy's password", autojoin=False, **everything
        ) == [seen("bob", to_cy)]
        # ann joins #general again as she logs in; #bobs is not hers.
        assert await conversations(server.port, "ann", "ann's password", **everything) == [
            seen("cy", to_guest),
            seen("#general", public),
        ]
        newest: dict[str, Any] = {"start": 4102444800, "end": 0, "limit": 1}
        assert await conversations(server.port, "ann", "ann's password", **newest) == [
            seen("#general", public)
        ]
        async with await LineClient.open(server.port) as peer:
            await peer.send_json(type="hello", nick="dee")
            await peer.send_json(type="conversations", start="then", end=0, ref=2)
            await peer.send_json(type="conversations", start=0, end=1, limit=-1, ref=3)
            bad = await peer.json_event("error")
            assert (bad["code"], bad["ref"]) == ("bad_command", 2)
            negative = await peer.json_event("error")
            assert (negative["code"], negative["ref"]) == ("bad_command", 3)


async def test_ack_means_stored_and_ids_continue_after_restart(tmp_path: Path) -> None:
    url = f"sqlite:///{tmp_path / 'chat.db'}"
    with anyio.fail_after(10):
        async with (
            anychat.serve(port=0, database_url=url) as srv,
            anychat.connect(*srv.address, nick="ann") as ann,
        ):
            first = await ann.send("#general", "before restart")
        async with (
            anychat.serve(port=0, database_url=url) as srv,
            anychat.connect(*srv.address, nick="ann", history=True) as ann,
        ):
            replayed = await ann.wait_for(m.Message)
            assert (replayed.id, replayed.text, replayed.history) == (
                first.id,
                "before restart",
                True,
            )
            second = await ann.send("#general", "after restart")
            assert second.id == first.id + 1


class FailingStore(MemoryStore):
    """A memory store whose disk can be made to fail and recover."""

    def __init__(self) -> None:
        super().__init__()
        self.broken = False

    async def append_messages(self, messages: Sequence[m.Message]) -> None:
        if self.broken:
            raise StoreError("disk I/O error (simulated)")
        await super().append_messages(messages)


async def test_failing_disk_is_reported_and_live_chat_continues(
    caplog: pytest.LogCaptureFixture,
) -> None:
    store = FailingStore()
    failing: Store = store
    with anyio.fail_after(10):
        async with (
            anychat.serve(port=0, store=failing) as srv,
            anychat.connect(*srv.address, nick="ann") as ann,
            anychat.connect(*srv.address, nick="bob") as bob,
        ):
            await ann.send("#general", "stored")
            store.broken = True
            for text in ("lost 1", "lost 2"):
                with pytest.raises(StoreUnavailable, match="not stored"):
                    await ann.send("#general", text)
            # Live delivery never waited for the disk.
            got = [(await bob.wait_for(m.Message)).text for _ in range(3)]
            assert got == ["stored", "lost 1", "lost 2"]
            store.broken = False
            ack = await ann.send("#general", "stored again")
            assert [x.text for x in await ann.history("#general")] == ["stored", "stored again"]
            assert ack.id == 4
    failures = [r for r in caplog.records if "message store failed" in r.getMessage()]
    assert len(failures) == 1  # once per outage, not once per message
    assert any("recovered" in r.getMessage() for r in caplog.records)


async def test_sqlite_write_failure_mid_run(tmp_path: Path) -> None:
    from anychat.store.sqlite import SqliteStore

    store = await SqliteStore.open(str(tmp_path / "chat.db"))
    try:
        with anyio.fail_after(10):
            async with (
                anychat.serve(port=0, store=store) as srv,
                anychat.connect(*srv.address, nick="ann") as ann,
                anychat.connect(*srv.address, nick="bob") as bob,
            ):
                await ann.send("#general", "fine")
                assert store._db is not None
                store._db.execute("PRAGMA query_only = 1")  # every write now fails in SQLite
                with pytest.raises(StoreUnavailable):
                    await ann.send("#general", "not stored")
                assert [(await bob.wait_for(m.Message)).text for _ in range(2)] == [
                    "fine",
                    "not stored",
                ]
                assert [x.text for x in await bob.history("#general")] == ["fine"]
                store._db.execute("PRAGMA query_only = 0")
                await ann.send("#general", "stored again")
    finally:
        await store.aclose()


@pytest.mark.parametrize("new_secret", [False, True], ids=["same-secret", "new-secret"])
async def test_reconnect_fetches_exactly_what_was_missed(tmp_path: Path, new_secret: bool) -> None:
    """After a server restart the client logs in again (by token, or by password when the
    restarted server no longer accepts the token) and gets the missed messages exactly once."""
    url = f"sqlite:///{tmp_path / 'chat.db'}"
    async with anyio.create_task_group() as tg:
        first = await tg.start(_serve_until, url, 0)
        port = first.port
        async with anychat.connect("127.0.0.1", port, nick="ann") as ann:
            await ann.register("ann's password")
        async with (
            anychat.connect(
                "127.0.0.1",
                port,
                nick="ann",
                password="ann's password",
                reconnect=True,
                reconnect_delay=0.05,
            ) as ann,
            anychat.connect("127.0.0.1", port, nick="bob") as bob,
        ):
            with anyio.fail_after(15):
                await bob.send("#general", "m1")
                assert (await ann.wait_for(m.Message)).text == "m1"
                await bob.send("ann", "dm1")
                assert (await ann.wait_for(m.Message)).text == "dm1"
                first.stop()
                await first.stopped.wait()
                second = await tg.start(_serve_until, url, port, "n" * 40 if new_secret else SECRET)
                async with anychat.connect("127.0.0.1", port, nick="bob2") as bob2:
                    for text in ("m2", "m3"):
                        await bob2.send("#general", text)
                    await bob2.send("ann", "dm2")
                    got = [await ann.wait_for(m.Message) for _ in range(3)]
                    assert [x.text for x in got] == ["m2", "m3", "dm2"]
                    await bob2.send("#general", "m4")
                    nxt = await ann.wait_for(m.Message)
                    assert nxt.text == "m4"  # nothing replayed twice in between
                    assert ann.nick == "ann"
                second.stop()
        tg.cancel_scope.cancel()


class _Running:
    def __init__(self, port: int, scope: anyio.CancelScope) -> None:
        self.port = port
        self.scope = scope
        self.stopped = anyio.Event()

    def stop(self) -> None:
        self.scope.cancel()


async def _serve_until(
    url: str, port: int, secret: str = SECRET, *, task_status: anyio.abc.TaskStatus[_Running]
) -> None:
    with anyio.CancelScope() as scope:
        try:
            async with anychat.serve(port=port, database_url=url, secret=secret) as srv:
                running = _Running(srv.port, scope)
                task_status.started(running)
                await anyio.sleep_forever()
        finally:
            if "running" in locals():
                running.stopped.set()


class GatedStore(MemoryStore):
    """Holds the first write until released, and records the size of every batch."""

    def __init__(self) -> None:
        super().__init__()
        self.gate = anyio.Event()
        self.writing = anyio.Event()
        self.batches: list[int] = []

    async def append_messages(self, messages: Sequence[m.Message]) -> None:
        self.batches.append(len(messages))
        self.writing.set()
        await self.gate.wait()
        await super().append_messages(messages)


async def test_group_commit_batches_what_arrives_during_a_commit() -> None:
    store = GatedStore()
    gated: Store = store
    with anyio.fail_after(10):
        async with (
            anychat.serve(port=0, store=gated) as srv,
            anychat.connect(*srv.address, nick="bob") as bob,
            anyio.create_task_group() as tg,
        ):
            acks: list[int] = []

            async def send(nick: str, text: str) -> None:
                async with anychat.connect(*srv.address, nick=nick) as client:
                    acks.append((await client.send("#general", text)).id)

            tg.start_soon(send, "first", "first")
            await store.writing.wait()  # the first transaction is "on disk" now
            for i in range(5):
                tg.start_soon(send, f"s{i}", f"during {i}")
            live = {(await bob.wait_for(m.Message)).text for _ in range(6)}
            assert len(live) == 6  # delivered live while the disk was busy
            assert acks == []  # but nobody was acked before the commit
            store.gate.set()
    assert sorted(acks) == list(range(1, 7))
    assert store.batches == [1, 5]  # the five that waited share one transaction
