"""Accounts across nodes sharing PostgreSQL: resume from another node, the admin command line,
and a login taking its nick over from a ghost on another node (real Redis, real PostgreSQL)."""

from __future__ import annotations

import json
import time

import anyio
import pytest

import anychat
from anychat import model as m
from anychat.auth import hash_password_async
from anychat.store import Account, open_store

from .cluster_support import nodes
from .redis_server import RedisServer
from .test_cli import ANYCHAT

pytestmark = pytest.mark.timeout(60)

DEADLINE = 10


async def _create_account(database_url: str, nick: str, password: str) -> None:
    """An account in the shared store before the nodes start (so each knows it at once)."""
    async with open_store(database_url) as store:
        account = Account(
            nick=nick,
            password_hash=await hash_password_async(password),
            created=time.time(),
            since_id=1,
        )
        assert await store.create_account(account)


async def test_resume_on_another_node_misses_no_private_message(
    redis: RedisServer, postgres_url: str
) -> None:
    """An account drops off node a and logs in on node b: ``history after=<last id seen>``
    of its private chat has every private message since, and of its room every message."""
    password = "ada's long password"
    await _create_account(postgres_url, "ada", password)
    async with nodes(redis.url, 2, database_urls=[postgres_url] * 2) as (a, b):
        async with (
            anychat.connect(*a.address, nick="ada", password=password) as ada,
            anychat.connect(*b.address, nick="bob") as bob,
        ):
            with anyio.fail_after(DEADLINE):
                for client in (ada, bob):
                    await client.wait_for(m.Members)  # both nodes hear #general
                await ada.wait_for(m.Joined, lambda e: e.nick == "bob")  # node a knows bob
                seen = [await bob.send("ada", "private, seen"), await bob.send("#general", "seen")]
                for ack in seen:
                    assert (await ada.wait_for(m.Message)).id == ack.id
                last_seen = ada.last_id
            await ada.aclose()
            with anyio.fail_after(DEADLINE):
                await bob.wait_for(m.Quitted, lambda e: e.nick == "ada")  # node b knows
                missed = [await bob.send("ada", f"private {i}") for i in range(3)]
                in_room = await bob.send("#general", "said meanwhile")
                missed.append(await bob.send("ADA", "private, last"))
        async with anychat.connect(*b.address, nick="ada", password=password) as again:
            with anyio.fail_after(DEADLINE):
                page = await again.history("bob", after=last_seen)
                assert [(msg.id, msg.sender, msg.text) for msg in page] == [
                    (ack.id, "bob", text)
                    for ack, text in zip(
                        missed,
                        ["private 0", "private 1", "private 2", "private, last"],
                        strict=True,
                    )
                ]
                room = await again.history("#general", after=last_seen)
                assert [msg.id for msg in room] == [in_room.id]


async def test_an_account_added_with_the_command_line_logs_in_on_either_node(
    redis: RedisServer, postgres_url: str
) -> None:
    """``anychat users add`` (a process) while two nodes share the database: the account logs
    in on either node, and history exported from it has what was said on both."""
    async with nodes(redis.url, 2, database_urls=[postgres_url] * 2) as (a, b):
        added = await anyio.run_process(
            [*ANYCHAT, "users", "add", "zoe", "--database-url", postgres_url],
            input=b"zoe's long password\n",
            check=False,
        )
        assert added.returncode == 0, added.stderr
        acks = []
        async with anychat.connect(*b.address, nick="watcher") as watcher:
            for node in (a, b):
                async with anychat.connect(
                    *node.address, nick="zoe", password="zoe's long password"
                ) as zoe:
                    with anyio.fail_after(DEADLINE):
                        assert zoe.token is not None
                        assert await zoe.history("zoe") == []  # logged in: may read her own
                        acks.append(await zoe.send("#general", f"from {node.port}"))
                        # Heard on node b: the watcher is in the room and b knows zoe is too.
                        while (await watcher.wait_for(m.Message)).id != acks[-1].id:
                            pass
                with anyio.fail_after(DEADLINE):  # her node let the nick go: the other may take it
                    await watcher.wait_for(m.Quitted, lambda e: e.nick == "zoe")
        exported = await anyio.run_process(
            [*ANYCHAT, "history", "export", "--room", "#general", "--database-url", postgres_url],
            check=False,
        )
        assert exported.returncode == 0, exported.stderr
        lines = [json.loads(line) for line in exported.stdout.decode().splitlines()]
        assert [(e["id"], e["from"]) for e in lines] == [(ack.id, "zoe") for ack in acks]


async def test_a_login_on_another_node_takes_the_nick_over_from_its_ghost(
    redis: RedisServer, postgres_url: str
) -> None:
    """Zoe's old session (a dropped link, say) holds her nick on node a; she logs in on node
    b: that one is closed, as a second login on one node closes the first, and she has it."""
    password = "zoe's long password"
    await _create_account(postgres_url, "zoe", password)
    async with (
        nodes(redis.url, 2, database_urls=[postgres_url] * 2) as (a, b),
        anychat.connect(*b.address, nick="watcher") as watcher,
        anychat.connect(*a.address, nick="zoe", password=password) as ghost,
    ):
        with anyio.fail_after(DEADLINE):
            await watcher.wait_for(m.Joined, lambda e: e.nick == "zoe")  # node b knows her
            with pytest.raises(anychat.NickRegistered):  # nobody else may take it over
                async with anychat.connect(*b.address, nick="ZOE"):
                    pass
            async with anychat.connect(*b.address, nick="zoe", password=password) as zoe:
                assert zoe.nick == "zoe" and zoe.token is not None
                bye = await ghost.wait_for(m.Bye)
                assert bye.code is m.ErrorCode.LOGGED_IN_ELSEWHERE
                quit = await watcher.wait_for(m.Quitted)  # the ghost left, for everyone
                assert quit.nick == "zoe"
                ack = await watcher.send("zoe", "to the new session")
                msg = await zoe.wait_for(m.Message)
                assert (msg.id, msg.text) == (ack.id, "to the new session")


async def test_a_guest_who_logged_in_later_is_taken_over_from_another_node_too(
    redis: RedisServer, postgres_url: str
) -> None:
    """The ghost logged in after its hello (as a guest, then ``login``): the other nodes
    learnt its account then, so a login on node b takes the nick over all the same."""
    password = "zoe's long password"
    await _create_account(postgres_url, "zoe", password)
    async with (
        nodes(redis.url, 2, database_urls=[postgres_url] * 2) as (a, b),
        anychat.connect(*b.address, nick="watcher") as watcher,
        anychat.connect(*a.address, nick="guest1") as ghost,
    ):
        with anyio.fail_after(DEADLINE):
            await watcher.wait_for(m.Joined, lambda e: e.nick == "guest1")
            await ghost.login("zoe", password)
            await watcher.wait_for(m.NickChanged, lambda e: e.new == "zoe")
            async with anychat.connect(*b.address, nick="zoe", password=password) as zoe:
                assert zoe.nick == "zoe"
                bye = await ghost.wait_for(m.Bye)
                assert bye.code is m.ErrorCode.LOGGED_IN_ELSEWHERE
