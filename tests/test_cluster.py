"""Several nodes, one chat: real servers sharing a real Redis (the test's own), real clients.

Every node here runs in this process (``anychat.serve`` several times with the same cluster
URL); clients of every protocol connect to different nodes and must see one chat.
"""

from __future__ import annotations

import json
import signal
import socket
import subprocess
from typing import Any

import anyio
import pytest

import anychat
from anychat import model as m

from .cluster_support import nodes
from .helpers import LineClient
from .redis_server import RedisServer
from .test_cli import ANYCHAT, LISTENING
from .test_irc_server import raw

pytestmark = pytest.mark.timeout(60)

DEADLINE = 10


async def test_room_messages_cross_nodes_once_in_order_with_cluster_ids(
    redis: RedisServer,
) -> None:
    async with (
        nodes(redis.url, 2) as (a, b),
        anychat.connect(*a.address, nick="ada") as ada,
        anychat.connect(*a.address, nick="al") as al,
        anychat.connect(*b.address, nick="bob") as bob,
        anychat.connect(*b.address, nick="bea") as bea,
    ):
        with anyio.fail_after(DEADLINE):
            await ada.wait_for(m.Joined, lambda e: e.nick == "bea")
            acks = [await ada.send("#general", f"line {i}") for i in range(20)]
            ids = [ack.id for ack in acks]
            assert ids == sorted(ids) and len(set(ids)) == 20
            for client in (al, bob, bea):  # the same node and the other one alike
                got = [await client.wait_for(m.Message) for _ in range(20)]
                assert [(g.id, g.text, g.sender) for g in got] == [
                    (ack.id, f"line {i}", "ada") for i, ack in enumerate(acks)
                ]
            # The other way, and ids keep increasing across nodes in accept order.
            back = await bob.send("#general", "hi ada")
            assert back.id > ids[-1]
            for client in (ada, al, bea):
                msg = await client.wait_for(m.Message)
                assert (msg.id, msg.sender, msg.text) == (back.id, "bob", "hi ada")
            # Nobody heard anything twice, the sender not at all: the next message is new.
            await bea.send("#general", "last")
            for client in (ada, al, bob):
                assert (await client.wait_for(m.Message)).text == "last"


async def test_private_messages_reach_a_nick_on_another_node(redis: RedisServer) -> None:
    async with (
        nodes(redis.url, 2) as (a, b),
        anychat.connect(*a.address, nick="ada", autojoin=False) as ada,
        anychat.connect(*a.address, nick="probe", autojoin=False) as probe,
        anychat.connect(*b.address, nick="bob", autojoin=False) as bob,
    ):
        with anyio.fail_after(DEADLINE):
            # Bob shares no room with ada. Once a probe on ada's node sees him join, his
            # registration (told to every node before his join) has reached that node.
            await probe.join("#probe")
            await bob.join("#probe")
            await probe.wait_for(m.Joined, lambda e: e.nick == "bob")
            ack = await ada.send("BOB", "psst")
            pm = await bob.wait_for(m.Message)
            assert (pm.id, pm.sender, pm.target, pm.text) == (ack.id, "ada", "bob", "psst")
            reply = await bob.send("ada", "hi")
            pm = await ada.wait_for(m.Message)
            assert (pm.id, pm.sender, pm.text) == (reply.id, "bob", "hi") and reply.id > ack.id
            with pytest.raises(anychat.NoSuchNick):
                await ada.send("nobody", "hello?")


async def test_members_who_whois_and_presence_span_the_nodes(redis: RedisServer) -> None:
    async with (
        nodes(redis.url, 2) as (a, b),
        anychat.connect(*a.address, nick="ada") as ada,
        anychat.connect(*b.address, nick="bob") as bob,
    ):
        with anyio.fail_after(DEADLINE):
            await ada.wait_for(m.Joined, lambda e: e.nick == "bob")
            assert set(await ada.who("#general")) == {"ada", "bob"}
            assert set(await bob.who("#general")) == {"ada", "bob"}
            info = await ada.whois("bob")
            assert (info.nick, info.rooms) == ("bob", ("#general",))
            await ada.join("#rust")
            await bob.join("#rust")
            await ada.wait_for(m.Joined, lambda e: e.room == "#rust")
            assert set((await ada.whois("bob")).rooms) == {"#general", "#rust"}
            await bob.set_nick("robert")
            changed = await ada.wait_for(m.NickChanged)
            assert (changed.old, changed.new) == ("bob", "robert")
            assert set(await ada.who("#general")) == {"ada", "robert"}
            assert set(await ada.who("#rust")) == {"ada", "robert"}
            await bob.part("#rust")
            parted = await ada.wait_for(m.Parted)
            assert (parted.room, parted.nick) == ("#rust", "robert")
            await ada.topic("#general", "one chat")
            topic = await bob.wait_for(m.RoomTopic, lambda e: e.text == "one chat")
            assert topic.setter == "ada"
        await bob.aclose()
        with anyio.fail_after(DEADLINE):
            quit = await ada.wait_for(m.Quitted)
            assert quit.nick == "robert"
            assert set(await ada.who("#general")) == {"ada"}


async def test_a_nick_is_held_once_cluster_wide_case_insensitively(redis: RedisServer) -> None:
    async with (
        nodes(redis.url, 2) as (a, b),
        anychat.connect(*a.address, nick="Ada") as ada,
        anychat.connect(*b.address, nick="watcher") as watcher,
    ):
        with anyio.fail_after(DEADLINE):
            # The watcher's join may still wait for Redis after its welcome: until it sees Ada
            # in the room, her quit would find nobody on node b to tell.
            while True:
                event = await watcher.receive()
                if (isinstance(event, m.Members) and "Ada" in event.nicks) or (
                    isinstance(event, m.Joined) and event.nick == "Ada"
                ):
                    break
        with pytest.raises(anychat.NickInUse):
            async with anychat.connect(*b.address, nick="aDA"):
                pass
        await ada.aclose()
        with anyio.fail_after(DEADLINE):
            # Node a frees the nick in Redis before it tells the others she quit.
            await watcher.wait_for(m.Quitted, lambda e: e.nick == "Ada")
            async with anychat.connect(*b.address, nick="ADA") as again:
                assert again.nick == "ADA"


async def _contend(client: LineClient, nick: str, results: list[str]) -> None:
    await client.send(json.dumps({"type": "hello", "nick": nick}).encode() + b"\n")
    while True:
        event = json.loads(await client.line(timeout=DEADLINE))
        if event["type"] in ("welcome", "error"):
            results.append(event["type"] + ":" + event.get("code", ""))
            return


async def test_two_nodes_racing_for_one_nick_exactly_one_wins(redis: RedisServer) -> None:
    async with nodes(redis.url, 2) as servers:
        for round_ in range(5):
            results: list[str] = []
            clients = [await LineClient.open(s.port) for s in servers * 3]  # 3 per node
            async with anyio.create_task_group() as tg:
                for client in clients:
                    tg.start_soon(_contend, client, f"racer{round_}", results)
            assert sorted(results) == ["error:nick_in_use"] * 5 + ["welcome:"]
            for client in clients:
                await client.aclose()


async def test_three_nodes_every_protocol(redis: RedisServer) -> None:
    async with (
        nodes(redis.url, 3, sniff_seconds=0.05) as (a, b, c),
        anychat.connect(*a.address, nick="ada") as ada,
        raw(b.port, "irene") as irene,
        await LineClient.open(c.port) as nc,
    ):
        with anyio.fail_after(DEADLINE):
            await nc.line_containing(b"Welcome")
            await nc.send(b"/nick ned\r\n")
            await nc.line_containing(b"ned")
            await irene.send("JOIN #general")
            await irene.until("366 irene #general")
            await ada.wait_for(m.Joined, lambda e: e.nick == "irene")
            await ada.send("#general", "hello everyone")
            assert "hello everyone" in await irene.until("PRIVMSG #general :hello everyone")
            assert b"hello everyone" in await nc.line_containing(b"hello everyone")
            await irene.send("PRIVMSG #general :hi from irc")
            msg = await ada.wait_for(m.Message)
            assert (msg.sender, msg.text) == ("irene", "hi from irc")
            assert b"hi from irc" in await nc.line_containing(b"hi from irc")
            await nc.send(b"plain text here\r\n")
            assert (await ada.wait_for(m.Message)).text == "plain text here"
            await irene.until("PRIVMSG #general :plain text here")
            await irene.send("NAMES #general")
            names = await irene.until(" 353 ")
            assert {"ada", "irene", "ned"} <= set(names.split(":")[-1].lstrip("@+").split())
            await irene.send("WHOIS ada")
            assert "ada" in await irene.until(" 311 ")


async def test_redis_restarted_mid_conversation(redis: RedisServer) -> None:
    """Local clients stay; they are told the chat is degraded and when it is whole again;
    messages are refused meanwhile (never half-sent); ids go on past the old ones."""
    async with (
        nodes(redis.url, 2) as (a, b),
        anychat.connect(*a.address, nick="ada") as ada,
        anychat.connect(*b.address, nick="bob") as bob,
        raw(a.port, "irene") as irene,
    ):
        with anyio.fail_after(DEADLINE):
            await ada.wait_for(m.Joined, lambda e: e.nick == "bob")
            before = await ada.send("#general", "before")
            assert (await bob.wait_for(m.Message)).text == "before"
        await anyio.to_thread.run_sync(redis.stop)
        with anyio.fail_after(DEADLINE):
            for client in (ada, bob):
                notice = await client.wait_for(m.Error)
                assert notice.code is m.ErrorCode.CLUSTER_UNAVAILABLE
            assert "NOTICE" in await irene.until("degraded")
            with pytest.raises(anychat.Refused) as refused:
                await ada.send("#general", "while down")
            assert "degraded" in str(refused.value)
            assert set(await ada.who("#general")) == {"ada", "bob"}  # still served locally
        await anyio.to_thread.run_sync(redis.start)
        with anyio.fail_after(DEADLINE):
            for client in (ada, bob):
                back = await client.wait_for(m.Message)
                assert (back.id, back.kind) == (0, m.Kind.NOTICE) and "whole" in back.text
            assert "NOTICE" in await irene.until("whole again")
            after = await bob.send("#general", "after")
            assert after.id > before.id  # the empty Redis counts on from what nodes saw
            msg = await ada.wait_for(m.Message)
            assert (msg.id, msg.text) == (after.id, "after")
            again = await ada.send("#general", "and again")
            assert (await bob.wait_for(m.Message)).id == again.id
            assert set(await bob.who("#general")) == {"ada", "bob"}


def _start_node(cluster_url: str, database_url: str, lease: float) -> tuple[Any, int]:
    """``anychat serve`` as a subprocess of this cluster; returns it and its port."""
    proc = subprocess.Popen(
        [
            *ANYCHAT,
            "serve",
            "--port", "0",
            "--database-url", database_url,
            "--cluster-url", cluster_url,
            "--cluster-lease", str(lease),
            "--history-length", "0",
        ],
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
    )  # fmt: skip
    assert proc.stdout is not None
    first = proc.stdout.readline()  # blocks until the server is listening (or died)
    match = LISTENING.search(first)
    if not match:
        proc.kill()
        raise AssertionError(first + (proc.stderr.read() if proc.stderr else b""))
    return proc, int(match.group(1))


async def test_a_node_killed_loses_nothing_acked_and_its_users_quit_within_the_lease(
    redis: RedisServer, postgres_url: str
) -> None:
    lease = 2.0
    async with (
        nodes(redis.url, 1, database_urls=[postgres_url], cluster_lease_seconds=lease) as (a,),
        anychat.connect(*a.address, nick="ada") as ada,
    ):
        proc, port = await anyio.to_thread.run_sync(_start_node, redis.url, postgres_url, lease)
        try:
            async with anychat.connect("127.0.0.1", port, nick="bob") as bob:
                with anyio.fail_after(DEADLINE):
                    await ada.wait_for(m.Joined, lambda e: e.nick == "bob")
                    acked = await bob.send("#general", "stored before the crash")
                    assert (await ada.wait_for(m.Message)).id == acked.id
                    proc.send_signal(signal.SIGKILL)
                    await anyio.to_thread.run_sync(proc.wait)
                    # No goodbye from the dead node: its lease runs out, and node a says so.
                    quit = await ada.wait_for(m.Quitted)
                    assert quit.nick == "bob"
                    assert set(await ada.who("#general")) == {"ada"}
        finally:
            if proc.poll() is None:
                proc.kill()
            await anyio.to_thread.run_sync(proc.wait)
            for pipe in (proc.stdout, proc.stderr):
                if pipe:
                    pipe.close()
        with anyio.fail_after(DEADLINE):
            # The nick is free again, and what the dead node acked is in the shared store.
            async with anychat.connect(*a.address, nick="bob") as bob_again:
                page = await bob_again.history("#general")
                assert [(msg.id, msg.text) for msg in page] == [
                    (acked.id, "stored before the crash")
                ]


def _redis_command(port: int, *words: str) -> bytes:
    command = f"*{len(words)}\r\n" + "".join(f"${len(w.encode())}\r\n{w}\r\n" for w in words)
    with socket.create_connection(("127.0.0.1", port), timeout=5) as sock:
        sock.sendall(command.encode())
        return sock.recv(256)


async def test_garbage_on_the_bus_costs_nothing(redis: RedisServer) -> None:
    async with (
        nodes(redis.url, 2) as (a, b),
        anychat.connect(*a.address, nick="ada") as ada,
        anychat.connect(*b.address, nick="bob") as bob,
    ):
        with anyio.fail_after(DEADLINE):
            await ada.wait_for(m.Joined, lambda e: e.nick == "bob")
            for channel in ("anychat:presence", "anychat:room:#general"):
                for junk in ("not json", '{"n":"x","t":"Message","f":{"id":"1"}}', "{}"):
                    _redis_command(redis.port, "PUBLISH", channel, junk)
            ack = await ada.send("#general", "still here")
            msg = await bob.wait_for(m.Message)
            assert (msg.id, msg.text) == (ack.id, "still here")


async def test_a_node_started_without_redis_serves_degraded_then_joins(
    redis: RedisServer,
) -> None:
    await anyio.to_thread.run_sync(redis.stop)
    async with nodes(redis.url, 1) as (a,), await LineClient.open(a.port) as js:
        await js.send_json(type="hello", nick="ada")
        refusal = await js.json_event("error", timeout=DEADLINE)
        assert refusal["code"] == "cluster_unavailable"  # cannot claim a nick yet
        await anyio.to_thread.run_sync(redis.start)
        with anyio.fail_after(DEADLINE * 2):
            while True:  # the node reconnects by itself (backoff): a hello waits for it a while
                await js.send_json(type="hello", nick="ada")
                event = json.loads(await js.line(timeout=DEADLINE))
                if event["type"] == "welcome":
                    break
                assert event["code"] == "cluster_unavailable"
            assert event["nick"] == "ada"


async def test_resume_on_another_node_from_shared_postgresql(
    redis: RedisServer, postgres_url: str
) -> None:
    """Ids are cluster-wide, so ``history after=<last id seen>`` on any node misses nothing."""
    async with nodes(redis.url, 2, database_urls=[postgres_url] * 2) as (a, b):
        async with (
            anychat.connect(*a.address, nick="ada") as ada,
            anychat.connect(*b.address, nick="bob") as bob,
        ):
            with anyio.fail_after(DEADLINE):
                # Both joins answered: both nodes hear #general (waiting for bob to see ada
                # join would hang whenever her join reached node b before his own join).
                for client in (ada, bob):
                    await client.wait_for(m.Members)
                first = await bob.send("#general", "seen by ada")
                assert (await ada.wait_for(m.Message)).id == first.id
                last_seen = ada.last_id
            await ada.aclose()  # ada drops off node a...
            with anyio.fail_after(DEADLINE):
                missed = [await bob.send("#general", f"missed {i}") for i in range(3)]
                mine = await bob.send("#general", "x" * 10)  # acked: committed
        async with anychat.connect(*b.address, nick="ada") as ada_again:  # ...back on node b
            with anyio.fail_after(DEADLINE):
                page = await ada_again.history("#general", after=last_seen)
                assert [msg.id for msg in page] == [*(ack.id for ack in missed), mine.id]
                assert [msg.text for msg in page][:3] == ["missed 0", "missed 1", "missed 2"]


async def test_the_first_member_of_a_room_on_a_node_hears_everything_after_joining(
    redis: RedisServer,
) -> None:
    async with (
        nodes(redis.url, 2) as (a, b),
        anychat.connect(*a.address, nick="ada", autojoin=False) as ada,
        anychat.connect(*b.address, nick="bob", autojoin=False) as bob,
    ):
        with anyio.fail_after(DEADLINE):
            for i in range(10):
                room = f"#room{i}"
                await ada.join(room)
                await bob.join(room)  # node b listens to the room before answering the join
                ack = await ada.send(room, f"to {room}")  # not waiting for bob's join event
                msg = await bob.wait_for(m.Message)
                assert (msg.id, msg.target) == (ack.id, room)


async def test_a_join_on_another_node_replays_what_was_said_on_the_first(
    redis: RedisServer,
) -> None:
    """Node b hears the room (bob is in it), so its recent history has what ada said on a."""
    async with (
        nodes(redis.url, 2, history_length=10) as (a, b),
        anychat.connect(*a.address, nick="ada") as ada,
        anychat.connect(*b.address, nick="bob") as bob,
    ):
        with anyio.fail_after(DEADLINE):
            await ada.wait_for(m.Joined, lambda e: e.nick == "bob")
            acks = [await ada.send("#general", f"from a {i}") for i in range(3)]
            acks.append(await bob.send("#general", "from b"))
            for ack in acks[:3]:
                assert (await bob.wait_for(m.Message)).id == ack.id
        async with anychat.connect(*b.address, nick="carl", history=True) as carl:
            with anyio.fail_after(DEADLINE):
                replay = [await carl.wait_for(m.Message) for _ in acks]
        assert [(msg.id, msg.text, msg.history) for msg in replay] == [
            (ack.id, text, True)
            for ack, text in zip(acks, ["from a 0", "from a 1", "from a 2", "from b"], strict=True)
        ]


async def test_a_join_replays_from_the_shared_store_on_a_node_that_never_heard_the_room(
    redis: RedisServer, postgres_url: str
) -> None:
    """Node b has nobody in #talk: the replay comes from PostgreSQL, whose ids are node a's."""
    async with (
        nodes(redis.url, 2, history_length=10, database_urls=[postgres_url] * 2) as (a, b),
        anychat.connect(*a.address, nick="ada", autojoin=False) as ada,
    ):
        with anyio.fail_after(DEADLINE):
            await ada.join("#talk")
            acks = [await ada.send("#talk", f"line {i}") for i in range(3)]  # acked: stored
        async with anychat.connect(*b.address, nick="bob", autojoin=False, history=True) as bob:
            with anyio.fail_after(DEADLINE):
                await bob.join("#talk")
                replay = [await bob.wait_for(m.Message) for _ in acks]
                assert [(msg.id, msg.text, msg.history) for msg in replay] == [
                    (ack.id, f"line {i}", True) for i, ack in enumerate(acks)
                ]
                # Then live, with the ids going on.
                later = await ada.send("#talk", "live")
                msg = await bob.wait_for(m.Message)
                assert (msg.id, msg.text, msg.history) == (later.id, "live", False)
                assert later.id > acks[-1].id


async def _member(port: int, nick: str, rooms: tuple[str, ...]) -> LineClient:
    """A raw JSON-lines client in ``rooms`` (each join answered: its node hears the room)."""
    client = await LineClient.open(port)
    await client.send_json(type="hello", nick=nick, autojoin=False)
    await client.json_event("welcome", timeout=DEADLINE)
    for room in rooms:
        await client.send_json(type="join", room=room)
        await client.json_event("members", timeout=DEADLINE)
    return client


async def _burst(
    client: LineClient,
    to: str | list[str],
    texts: list[str],
    acks: list[int],
    heard: list[dict[str, Any]] | None = None,
) -> None:
    """A few lines per write (so nodes number them in batches, which interleave), all to one
    room or nick, or one target per text; collects the acks, and in ``heard`` the messages
    that arrive meanwhile."""
    targets = [to] * len(texts) if isinstance(to, str) else to
    lines = [
        json.dumps({"type": "say", "to": target, "text": t}).encode() + b"\n"
        for target, t in zip(targets, texts, strict=True)
    ]
    for i in range(0, len(lines), 5):
        await client.send(b"".join(lines[i : i + 5]))
    while len(acks) < len(texts):
        event = json.loads(await client.line(timeout=DEADLINE))
        assert event["type"] != "error", event
        if event["type"] == "ack":
            acks.append(event["id"])
        elif event["type"] == "message" and heard is not None:
            heard.append(event)


async def _messages(client: LineClient, count: int) -> list[dict[str, Any]]:
    got: list[dict[str, Any]] = []
    while len(got) < count:
        event = json.loads(await client.line(timeout=DEADLINE))
        if event["type"] == "message":
            got.append(event)
    return got


async def test_several_rooms_at_once_each_message_only_to_its_room_in_order(
    redis: RedisServer,
) -> None:
    """Three rooms, three nodes, a burst into each at once: every member gets exactly its
    rooms' messages, each room's in the order said, and ids rising in the order received."""
    count = 25
    layout = {"#a": ("ra", "rc"), "#b": ("ra", "rb", "rc"), "#c": ("rb", "rc")}
    async with nodes(redis.url, 3) as servers:
        with anyio.fail_after(DEADLINE):
            senders = {
                room: await _member(servers[i].port, f"s{i}", (room,))
                for i, room in enumerate(layout)
            }
            receivers = {
                nick: await _member(
                    servers[i].port, nick, tuple(r for r, who in layout.items() if nick in who)
                )
                for i, nick in enumerate(("ra", "rb", "rc"))
            }
            acks: dict[str, list[int]] = {room: [] for room in layout}
            async with anyio.create_task_group() as tg:
                for room, sender in senders.items():
                    texts = [f"{room} {i}" for i in range(count)]
                    tg.start_soon(_burst, sender, room, texts, acks[room])
            for nick, receiver in receivers.items():
                rooms = [room for room, who in layout.items() if nick in who]
                got = await _messages(receiver, count * len(rooms))
                ids = [event["id"] for event in got]
                assert ids == sorted(ids) and len(set(ids)) == len(ids), nick
                for room in layout:
                    said = [(e["id"], e["text"]) for e in got if e["to"] == room]
                    expected = [(i, f"{room} {n}") for n, i in enumerate(acks[room])]
                    assert said == (expected if room in rooms else []), (nick, room)
            # Nothing else is on its way to anyone: a last line per room arrives next.
            for room, sender in senders.items():
                await _burst(sender, room, ["end"], [])
            for nick, receiver in receivers.items():
                joined = {room for room, who in layout.items() if nick in who}
                assert {(e["to"], e["text"]) for e in await _messages(receiver, len(joined))} == {
                    (room, "end") for room in joined
                }
        for client in (*senders.values(), *receivers.values()):
            await client.aclose()


async def test_two_nodes_saying_into_one_room_at_once_every_member_sees_ids_rising(
    redis: RedisServer,
) -> None:
    """Both nodes number their messages for #x at the same moment: every member, on either
    node, hears all of them with rising ids, each sender's in its own order."""
    count = 40
    async with nodes(redis.url, 2) as (a, b):
        with anyio.fail_after(DEADLINE):
            sa = await _member(a.port, "sa", ("#x",))
            sb = await _member(b.port, "sb", ("#x",))
            watchers = [await _member(s.port, f"w{i}", ("#x",)) for i, s in enumerate((a, b))]
            acks: dict[str, list[int]] = {"sa": [], "sb": []}
            heard: dict[str, list[dict[str, Any]]] = {"sa": [], "sb": []}
            async with anyio.create_task_group() as tg:
                for nick, sender in (("sa", sa), ("sb", sb)):
                    texts = [f"{nick} {i}" for i in range(count)]
                    tg.start_soon(_burst, sender, "#x", texts, acks[nick], heard[nick])
            for nick, acked in acks.items():
                assert acked == sorted(acked), nick
            for watcher in watchers:
                got = await _messages(watcher, 2 * count)
                ids = [event["id"] for event in got]
                assert ids == sorted(ids) and len(set(ids)) == 2 * count
                for nick, acked in acks.items():
                    assert [(e["id"], e["text"]) for e in got if e["from"] == nick] == [
                        (i, f"{nick} {n}") for n, i in enumerate(acked)
                    ]
            for nick, sender, other in (("sa", sa, "sb"), ("sb", sb, "sa")):
                # Each sender hears the other's messages (partly while it was sending), in order.
                got = heard[nick] + await _messages(sender, count - len(heard[nick]))
                assert [e["id"] for e in got] == acks[other]
        for client in (sa, sb, *watchers):
            await client.aclose()


async def test_an_empty_redis_counts_on_past_what_the_shared_store_holds(
    redis: RedisServer, postgres_url: str
) -> None:
    """Node b never heard #a: after Redis restarts empty, its ids still go on past node a's
    (read from PostgreSQL), so nothing is numbered twice."""
    async with nodes(redis.url, 1, database_urls=[postgres_url]) as (b,):
        async with (
            nodes(redis.url, 1, database_urls=[postgres_url]) as (a,),
            anychat.connect(*a.address, nick="ada", autojoin=False) as ada,
        ):
            with anyio.fail_after(DEADLINE):
                await ada.join("#a")
                acks = [await ada.send("#a", f"line {i}") for i in range(3)]  # committed
        await anyio.to_thread.run_sync(redis.restart)
        async with await LineClient.open(b.port) as bob:
            with anyio.fail_after(DEADLINE * 2):
                while True:  # until node b is back on the (empty) Redis
                    await bob.send_json(type="hello", nick="bob", autojoin=False)
                    event = json.loads(await bob.line(timeout=DEADLINE))
                    if event["type"] == "welcome":
                        break
                    assert event["code"] == "cluster_unavailable"
                await bob.send_json(type="join", room="#a")
                await bob.json_event("members", timeout=DEADLINE)
                await bob.send_json(type="say", to="#a", text="after the restart")
                ack = json.loads(await bob.line(timeout=DEADLINE))
                assert ack["type"] == "ack", ack  # not a duplicate id refused by the store
                assert ack["id"] > acks[-1].id


async def test_private_and_room_messages_reach_a_member_once_with_ids_rising(
    redis: RedisServer,
) -> None:
    """One sender on each node says into #x and privately to ``r`` (on node b) by turns, at
    once: ``r`` gets every message once, ids rising across the room and both private chats
    (the one from node a crossed the nodes, the one from node b stayed on it)."""
    count = 40
    async with nodes(redis.url, 2) as (a, b):
        with anyio.fail_after(DEADLINE):
            sa = await _member(a.port, "sa", ("#x",))
            sb = await _member(b.port, "sb", ("#x",))
            r = await _member(b.port, "r", ("#x",))
            while (await sa.json_event("joined", timeout=DEADLINE))["nick"] != "r":
                pass  # node a knows r now (its registration came before its join)
            acks: dict[str, list[int]] = {"sa": [], "sb": []}
            targets = ["#x", "R"] * (count // 2)
            async with anyio.create_task_group() as tg:
                for nick, sender in (("sa", sa), ("sb", sb)):
                    texts = [f"{nick} {i}" for i in range(count)]
                    tg.start_soon(_burst, sender, targets, texts, acks[nick], [])
            got = await _messages(r, 2 * count)
            ids = [event["id"] for event in got]
            assert ids == sorted(ids) and len(set(ids)) == 2 * count
            for nick, acked in acks.items():
                assert [(e["id"], e["text"], e["to"]) for e in got if e["from"] == nick] == [
                    (i, f"{nick} {n}", "#x" if n % 2 == 0 else "r") for n, i in enumerate(acked)
                ]
            # Nothing more is on its way (no private message twice): the next one is new.
            await _burst(sa, "r", ["end"], [])
            (last,) = await _messages(r, 1)
            assert (last["from"], last["text"], last["to"]) == ("sa", "end", "r")
            assert last["id"] > ids[-1]
        for client in (sa, sb, r):
            await client.aclose()
