"""One room on several nodes has one set of rules: operators, modes, bans, invites, kicks.

Real nodes in this process sharing the test's own Redis, real clients (the library's and a raw
IRC one). Whatever node a member is on, the room's first member anywhere is its only operator,
a mode set on one node holds on every other, a node that opens a room already alive elsewhere
starts from its settings (read from Redis), and kicks and invites reach members of other nodes.
"""

from __future__ import annotations

from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from typing import Any

import anyio
import coredis
import pytest

import anychat
from anychat import model as m
from anychat import services

from .cluster_support import nodes
from .redis_proxy import redis_proxy
from .redis_server import RedisServer
from .test_irc_server import raw

pytestmark = pytest.mark.timeout(60)

DEADLINE = 10


@asynccontextmanager
async def ada_and_bob(
    redis: RedisServer, **settings: Any
) -> AsyncIterator[tuple[anychat.Server, anychat.Server, anychat.Client, anychat.Client]]:
    """Two nodes; ada on the first, bob on the second, in no room yet."""
    async with (
        nodes(redis.url, 2, **settings) as (a, b),
        anychat.connect(*a.address, nick="ada", autojoin=False) as ada,
        anychat.connect(*b.address, nick="bob", autojoin=False) as bob,
    ):
        yield a, b, ada, bob


async def refused(request: object) -> m.ErrorCode | None:
    """The code the server refused ``request`` (an awaitable) with; fails if it was not."""
    with pytest.raises(anychat.Refused) as caught:
        await request  # type: ignore[misc]
    return caught.value.code


async def test_the_first_member_anywhere_is_the_operator_and_modes_hold_on_every_node(
    redis: RedisServer,
) -> None:
    async with (
        ada_and_bob(redis) as (_a, b, ada, bob),
        raw(b.port, "cy") as cy,
    ):
        with anyio.fail_after(DEADLINE):
            await ada.join("#mod")
            await bob.join("#mod")  # the first member on b: the room is ada's already
            await ada.wait_for(m.Joined, lambda e: e.nick == "bob")
            assert await refused(bob.set_modes("#mod", m.ModeChange(mode="m"))) is (
                m.ErrorCode.NOT_OPERATOR
            )
            await ada.set_modes("#mod", m.ModeChange(mode="m"))
            heard = await bob.wait_for(m.ModeChanged)
            assert (heard.by, heard.changes) == ("ada", (m.ModeChange(mode="m"),))
            assert (await bob.modes("#mod")).modes == "+mnt"
            assert await refused(bob.send("#mod", "may I?")) is m.ErrorCode.CANNOT_SEND
            # A member of the other node gets a voice, and may speak there.
            await ada.set_modes("#mod", m.ModeChange(mode="v", arg="BOB"))
            heard = await bob.wait_for(m.ModeChanged)
            assert heard.changes == (m.ModeChange(mode="v", arg="bob"),)
            ack = await bob.send("#mod", "now I may")
            msg = await ada.wait_for(m.Message)
            assert (msg.id, msg.sender, msg.text) == (ack.id, "bob", "now I may")
            # Every node shows the same statuses, whoever is where.
            await cy.send("JOIN #mod")
            names = await cy.until(" 353 ")
            assert set(names.partition(" :")[2].split()) == {"@ada", "+bob", "cy"}
            await cy.send("WHOIS ada")
            assert (await cy.until(" 319 ")).endswith(" ada :@#mod")
            # Operator status given to a member of another node works there.
            await ada.set_modes("#mod", m.ModeChange(mode="o", arg="bob"))
            await bob.wait_for(m.ModeChanged, lambda e: e.changes[0].mode == "o")
            changed = await bob.set_modes("#mod", m.ModeChange(mode="m", on=False))
            assert changed.changes == (m.ModeChange(mode="m", on=False),)
            heard = await ada.wait_for(m.ModeChanged)
            assert (heard.by, heard.changes) == ("bob", (m.ModeChange(mode="m", on=False),))
            assert (await ada.modes("#mod")).modes == "+nt"


async def test_a_node_opening_a_room_takes_its_rules_and_kicks_and_invites_cross_nodes(
    redis: RedisServer,
) -> None:
    async with (
        ada_and_bob(redis) as (_a, b, ada, bob),
        anychat.connect(*b.address, nick="cy", autojoin=False) as cy,
        raw(b.port, "dan") as dan,
    ):
        with anyio.fail_after(DEADLINE):
            await ada.join("#club")
            await ada.topic("#club", "members only")
            await ada.set_modes(
                "#club", m.ModeChange(mode="i"), m.ModeChange(mode="b", arg="mallory")
            )
            # Nobody is in #club on b: b reads the room's rules when bob tries to join.
            assert await refused(bob.join("#club")) is m.ErrorCode.INVITE_ONLY
            await ada.invite("bob", "#club")  # bob is on the other node
            invited = await bob.wait_for(m.Invited)
            assert (invited.room, invited.by) == ("#club", "ada")
            await bob.join("#club")
            topic = await bob.topic("#club")
            assert (topic.text, topic.setter) == ("members only", "ada")
            assert (await bob.modes("#club")).modes == "+int"
            await dan.send("MODE #club +b")
            assert (await dan.until(" 367 ")).startswith(":anychat 367 dan #club mallory!*@* ada ")
            # b has the room open now: cy is held to the same rules, read from memory there.
            assert await refused(cy.join("#club")) is m.ErrorCode.INVITE_ONLY
            await ada.wait_for(m.Joined, lambda e: e.nick == "bob")
            # A kick of a member of another node: it hears it, and is out of the room.
            kicked = await ada.kick("#club", "bob", "enough")
            assert (kicked.nick, kicked.by) == ("bob", "ada")
            heard = await bob.wait_for(m.Kicked)
            assert (heard.nick, heard.by, heard.reason) == ("bob", "ada", "enough")
            # (b has no member of #club left, so it knows no such room: refused either way.)
            assert await refused(bob.send("#club", "still here?")) in {
                m.ErrorCode.NOT_MEMBER,
                m.ErrorCode.NO_SUCH_ROOM,
            }
            assert await ada.who("#club") == ("ada",)
            assert "#club" not in (await ada.whois("bob")).rooms
            # An invite is used up by joining, on whichever node.
            assert await refused(bob.join("#club")) is m.ErrorCode.INVITE_ONLY


async def test_status_goes_with_its_holder_and_an_empty_room_starts_over(
    redis: RedisServer,
) -> None:
    async with (
        ada_and_bob(redis) as (_a, _b, ada, bob),
    ):
        with anyio.fail_after(DEADLINE):
            await ada.join("#r")
            await ada.set_modes("#r", m.ModeChange(mode="s"))
            await bob.join("#r")
            await ada.wait_for(m.Joined, lambda e: e.nick == "bob")
            # ada leaves and comes back: the room lives on (bob is in it), so nobody is its
            # operator now, on either node.
            await ada.part("#r")
            await bob.wait_for(m.Parted, lambda e: e.nick == "ada")
            await ada.join("#r")
            await bob.wait_for(m.Joined, lambda e: e.nick == "ada")
            for client in (ada, bob):
                assert await refused(client.set_modes("#r", m.ModeChange(mode="m"))) is (
                    m.ErrorCode.NOT_OPERATOR
                )
                assert (await client.modes("#r")).modes == "+nst"
            # Everyone leaves: the room is gone everywhere; whoever comes first makes it anew.
            await ada.part("#r")
            await bob.part("#r")
            await bob.join("#r")
            assert (await bob.modes("#r")).modes == "+nt"
            await bob.set_modes("#r", m.ModeChange(mode="t", on=False))
            await ada.join("#r")
            assert (await ada.modes("#r")).modes == "+n"
            assert await refused(ada.set_modes("#r", m.ModeChange(mode="t"))) is (
                m.ErrorCode.NOT_OPERATOR
            )


async def test_a_renamed_operator_keeps_its_status_for_a_node_opening_the_room(
    redis: RedisServer,
) -> None:
    async with (
        nodes(redis.url, 2) as (a, b),
        anychat.connect(*a.address, nick="ada", autojoin=False) as ada,
        raw(b.port, "bob") as bob,
    ):
        with anyio.fail_after(DEADLINE):
            await ada.join("#r")
            await ada.set_nick("adeline")
            await bob.send("JOIN #r")  # b opens #r after the rename: reads it from Redis
            names = await bob.until(" 353 ")
            assert set(names.partition(" :")[2].split()) == {"@adeline", "bob"}


async def test_a_room_keeps_its_rules_for_other_nodes_when_redis_restarts_empty(
    redis: RedisServer,
) -> None:
    async with (
        ada_and_bob(redis) as (_a, _b, ada, bob),
    ):
        with anyio.fail_after(DEADLINE):
            await ada.join("#keep")
            await ada.set_modes("#keep", m.ModeChange(mode="i"))
        await anyio.to_thread.run_sync(redis.stop)
        with anyio.fail_after(DEADLINE):
            await ada.wait_for(m.Error, lambda e: e.code is m.ErrorCode.CLUSTER_UNAVAILABLE)
        await anyio.to_thread.run_sync(redis.start)  # (it keeps nothing: an empty Redis)
        with anyio.fail_after(DEADLINE):
            for client in (ada, bob):
                await client.wait_for(m.Message, lambda e: "whole" in e.text)
            # b opens the room only now, from what a wrote to the new Redis.
            assert await refused(bob.join("#keep")) is m.ErrorCode.INVITE_ONLY


async def test_only_a_member_invites_and_an_invite_is_used_once_on_any_node(
    redis: RedisServer,
) -> None:
    async with (
        ada_and_bob(redis) as (a, b, ada, bob),
        anychat.connect(*a.address, nick="mallory", autojoin=False) as mallory,
        anychat.connect(*b.address, nick="eve", autojoin=False) as eve,
    ):
        with anyio.fail_after(DEADLINE):
            await bob.join("#club")
            await bob.set_modes("#club", m.ModeChange(mode="i"), m.ModeChange(mode="b", arg="eve"))
            await ada.join("#lobby")
            await bob.join("#lobby")  # once a has heard this, it knows bob is in #club too
            await ada.wait_for(m.Joined, lambda e: e.nick == "bob")
            # mallory (no member, on a node where #club has nobody) cannot let eve in.
            assert await refused(mallory.invite("eve", "#club")) is m.ErrorCode.NOT_MEMBER
            assert await refused(eve.join("#club")) is m.ErrorCode.BANNED
            await bob.invite("ada", "#club")
            await ada.wait_for(m.Invited)
            await ada.join("#club")  # on a: the invite, made on b, is used up there
            await bob.wait_for(m.Joined, lambda e: e.nick == "ada")
            await bob.topic("#club", "b writes the room's copy again")
            await ada.wait_for(m.RoomTopic)
            await bob.kick("#club", "ada")
            await ada.wait_for(m.Kicked)
            assert await refused(ada.join("#club")) is m.ErrorCode.INVITE_ONLY


async def test_changes_to_a_shared_room_are_refused_while_the_node_is_cut_off(
    redis: RedisServer,
) -> None:
    async with (
        ada_and_bob(redis) as (_a, _b, ada, bob),
    ):
        with anyio.fail_after(DEADLINE):
            await ada.join("#r")
            await bob.join("#r")
            await ada.wait_for(m.Joined, lambda e: e.nick == "bob")
            await ada.set_modes("#r", m.ModeChange(mode="o", arg="bob"))
            await bob.wait_for(m.ModeChanged)
        await anyio.to_thread.run_sync(redis.stop)
        with anyio.fail_after(DEADLINE):
            await ada.wait_for(m.Error, lambda e: e.code is m.ErrorCode.CLUSTER_UNAVAILABLE)
            unavailable = m.ErrorCode.CLUSTER_UNAVAILABLE
            deop = m.ModeChange(mode="o", on=False, arg="bob")
            assert await refused(ada.set_modes("#r", deop)) is unavailable
            assert await refused(ada.topic("#r", "while away")) is unavailable
            assert await refused(ada.kick("#r", "bob")) is unavailable
        await anyio.to_thread.run_sync(redis.start)
        with anyio.fail_after(DEADLINE):
            for client in (ada, bob):
                await client.wait_for(m.Message, lambda e: "whole" in e.text)
            await ada.set_modes("#r", deop)
            heard = await bob.wait_for(m.ModeChanged)
            assert heard.changes == (deop,)
            assert await refused(bob.set_modes("#r", m.ModeChange(mode="m"))) is (
                m.ErrorCode.NOT_OPERATOR
            )


async def test_a_room_whose_rules_cannot_be_read_is_not_joined_on_another_node(
    redis: RedisServer,
) -> None:
    async with (
        ada_and_bob(redis) as (_a, _b, ada, bob),
        coredis.Redis.from_url(redis.url, decode_responses=True) as client,
    ):
        with anyio.fail_after(DEADLINE):
            await ada.join("#club")
            await ada.set_modes("#club", m.ModeChange(mode="i"))
            assert await refused(bob.join("#club")) is m.ErrorCode.INVITE_ONLY
            await client.delete(["anychat:chan:#club"])  # lost (not a thing nodes do)
            assert await refused(bob.join("#club")) is m.ErrorCode.CLUSTER_UNAVAILABLE


async def test_a_node_that_opened_a_room_while_cut_off_takes_the_clusters_rules_back(
    redis: RedisServer,
) -> None:
    async with (
        redis_proxy(redis.port) as proxy,
        nodes(redis.url, 1) as (a,),
        nodes(proxy.url, 1) as (b,),
        anychat.connect(*a.address, nick="ada", autojoin=False) as ada,
        anychat.connect(*b.address, nick="bob", autojoin=False) as bob,
    ):
        with anyio.fail_after(DEADLINE):
            proxy.cut()
            proxy.hold()  # b's new connections hear nothing: b is cut off until released
            await bob.wait_for(m.Error, lambda e: e.code is m.ErrorCode.CLUSTER_UNAVAILABLE)
            await ada.join("#x")
            await ada.set_modes("#x", m.ModeChange(mode="i"))
            await bob.join("#x")  # b knows of no member of #x: bob makes it, as its operator
            assert (await bob.modes("#x")).modes == "+nt"
            proxy.release()
            changed = await bob.wait_for(m.ModeChanged)
            assert (changed.by, changed.changes) == (
                "anychat",
                (m.ModeChange(mode="i"), m.ModeChange(mode="o", on=False, arg="bob")),
            )
            assert (await bob.modes("#x")).modes == "+int"
            assert await refused(bob.set_modes("#x", m.ModeChange(mode="m"))) is (
                m.ErrorCode.NOT_OPERATOR
            )


async def test_a_change_made_while_a_node_reads_a_rooms_history_holds_there(
    redis: RedisServer, monkeypatch: pytest.MonkeyPatch
) -> None:
    reading, go_on = anyio.Event(), anyio.Event()
    warm = services.Services._warm

    async def held(self: services.Services, req: Any) -> dict[str, list[m.Message]]:
        reading.set()
        await go_on.wait()
        return await warm(self, req)

    monkeypatch.setattr(services.Services, "_warm", held)
    async with (
        ada_and_bob(redis, history_length=50) as (_a, _b, ada, bob),
    ):
        with anyio.fail_after(DEADLINE):
            go_on.set()
            await ada.join("#w")  # (a reads #w's history too)
            go_on = anyio.Event()
            reading = anyio.Event()
            async with anyio.create_task_group() as tg:

                async def bob_joins() -> None:
                    assert await refused(bob.join("#w")) is m.ErrorCode.INVITE_ONLY

                tg.start_soon(bob_joins)
                await reading.wait()  # b subscribed, read #w's rules, and reads its history
                await ada.set_modes("#w", m.ModeChange(mode="i"))
                go_on.set()


async def test_the_rooms_creator_cycles_it_on_its_own_node(redis: RedisServer) -> None:
    """A part and a join in one packet (an IRC client's /cycle) where the room was made: the
    settings read for the first join are not taken for the second."""
    async with (
        ada_and_bob(redis) as (a, _b, _ada, bob),
        raw(a.port, "cy") as cy,
    ):
        with anyio.fail_after(DEADLINE):
            await cy.send("JOIN #c")
            await cy.until(" 366 ")
            await bob.join("#c")
            await cy.until(" JOIN ")
            await cy.send("PART #c", "JOIN #c")
            assert (await cy.until(" 366 ")).startswith(":anychat 366 cy #c")
            await bob.wait_for(m.Joined, lambda e: e.nick == "cy")


async def test_after_a_netsplit_the_older_room_wins(redis: RedisServer) -> None:
    """b is cut off longer than the lease: a forgets its users, and mallory makes bob's room
    anew on a. When b is back, the room made first (bob's) wins on every node, as on IRC."""
    lease = 1.0
    async with (
        redis_proxy(redis.port) as proxy,
        nodes(redis.url, 1, cluster_lease_seconds=lease) as (a,),
        nodes(proxy.url, 1, cluster_lease_seconds=lease) as (b,),
        anychat.connect(*a.address, nick="ada", autojoin=False) as ada,
        anychat.connect(*a.address, nick="mallory", autojoin=False) as mallory,
        anychat.connect(*b.address, nick="bob", autojoin=False) as bob,
    ):
        with anyio.fail_after(DEADLINE):
            await bob.join("#r")
            await bob.set_modes("#r", m.ModeChange(mode="i"))
            await ada.join("#lobby")
            await bob.join("#lobby")
            await ada.wait_for(m.Joined, lambda e: e.nick == "bob")
            proxy.cut()
            proxy.hold()
            await ada.wait_for(m.Quitted, lambda e: e.nick == "bob")  # a: b's lease ran out
            await mallory.join("#r")  # a knows of nobody in #r: mallory makes it anew
            assert (await mallory.modes("#r")).modes == "+nt"
            proxy.release()
            changed = await mallory.wait_for(m.ModeChanged)
            assert changed.by == "anychat"
            assert set(changed.changes) == {
                m.ModeChange(mode="i"),
                m.ModeChange(mode="o", on=False, arg="mallory"),
            }
            assert await refused(mallory.set_modes("#r", m.ModeChange(mode="m"))) is (
                m.ErrorCode.NOT_OPERATOR
            )
            await bob.set_modes("#r", m.ModeChange(mode="m"))  # still its operator everywhere
            heard = await mallory.wait_for(m.ModeChanged)
            assert (heard.by, heard.changes) == ("bob", (m.ModeChange(mode="m"),))
