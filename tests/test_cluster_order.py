"""A node's own messages reach its store in id order, and each sender gets its ack or a clear
error, also when a room stops being heard here while its messages are on their way through
Redis, or the connection drops meanwhile (real Redis, real nodes in this process; node A talks
to Redis through a relay that can hold what Redis tells it, or cut it off)."""

from __future__ import annotations

import json
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from typing import Any

import anyio
import pytest

import anychat

from .cluster_support import nodes
from .helpers import LineClient
from .redis_proxy import RedisProxy, redis_proxy
from .redis_server import RedisServer
from .test_cluster import _member

pytestmark = pytest.mark.timeout(60)

DEADLINE = 10
ROUNDS = 3


def _line(**obj: Any) -> bytes:
    return json.dumps(obj).encode() + b"\n"


@asynccontextmanager
async def _two_nodes(
    redis: RedisServer,
) -> AsyncIterator[tuple[RedisProxy, anychat.Server, anychat.Server]]:
    """Node A (through a relay) and node B, one chat."""
    async with (
        redis_proxy(redis.port) as proxy,
        nodes(proxy.url, 1) as (a,),
        nodes(redis.url, 1) as (b,),
    ):
        yield proxy, a, b


async def _answers(client: LineClient, count: int, until: str = "") -> list[dict[str, Any]]:
    """The next ``count`` answers to commands: acks and errors with a ``ref`` (or those before
    an event of type ``until``)."""
    got: list[dict[str, Any]] = []
    while until or len(got) < count:
        event = json.loads(await client.line(timeout=DEADLINE))
        if event["type"] in ("ack", "error") and event.get("ref"):
            got.append(event)
        elif event["type"] == until:
            break
    return got


async def _ping(client: LineClient, token: str) -> list[dict[str, Any]]:
    """A round trip to ``client``'s node (which does not involve Redis): the acks and errors
    that came before its pong."""
    await client.send_json(type="ping", token=token)
    return await _answers(client, 0, until="pong")


async def _said(client: LineClient, count: int) -> list[str]:
    """The texts of the next ``count`` messages ``client`` receives."""
    return [
        json.loads(await client.line_containing(b'"message"', DEADLINE))["text"]
        for _ in range(count)
    ]


async def test_a_room_left_while_its_message_is_in_flight_keeps_the_store_in_id_order(
    redis: RedisServer,
) -> None:
    """The sender says into a room it shares (heard back on node A) and then into a room where
    it is A's last member, and leaves that room, in one write: A stops hearing that room, so
    the second message never comes back to A. Redis numbers both and answers A, and A reads
    that answer before it hears the first message back: the second must still be stored (and
    acked) after the first, not before (the memory store refuses an id below the last one it
    stored: ``store_unavailable``)."""
    async with _two_nodes(redis) as (proxy, a, b):
        with anyio.fail_after(DEADLINE):
            sender = await _member(a.port, "sender", ("#shared",))
            listener = await _member(b.port, "listener", ("#shared", "#lone"))
        try:
            for i in range(ROUNDS):
                with anyio.fail_after(DEADLINE):
                    await sender.send_json(type="join", room="#lone")
                    await sender.json_event("members", timeout=DEADLINE)
                    proxy.hold()
                    await sender.send(
                        _line(type="say", to="#shared", text=f"first {i}", ref=f"f{i}")
                        + _line(type="say", to="#lone", text=f"second {i}", ref=f"s{i}")
                        + _line(type="part", room="#lone")
                    )
                    # Redis ran the batch (B heard it) and A has left #lone (a round trip to
                    # A after that: A's part is done); then A gets the script's answer (and
                    # reads it: another round trip), and only then hears the first message.
                    assert await _said(listener, 2) == [f"first {i}", f"second {i}"]
                    answers = await _ping(sender, f"{i} parted")
                    proxy.release("other")
                    answers += await _ping(sender, f"{i} answered")
                    proxy.release("subscriber")
                    answers += await _answers(sender, 2 - len(answers))
                    assert [(e["type"], e.get("ref")) for e in answers] == [
                        ("ack", f"f{i}"),
                        ("ack", f"s{i}"),
                    ], answers
                    assert answers[0]["id"] < answers[1]["id"]
        finally:
            await sender.aclose()
            await listener.aclose()


async def _message(client: LineClient) -> dict[str, Any]:
    """The next chat message ``client`` receives (not a server notice: those have id 0)."""
    while True:
        event: dict[str, Any] = json.loads(await client.line_containing(b'"message"', DEADLINE))
        if event["id"]:
            return event


async def _whole_again(client: LineClient) -> None:
    """Until the server tells ``client`` the chat is whole again (a notice with id 0)."""
    while True:
        event = json.loads(await client.line_containing(b'"message"', DEADLINE))
        if event["id"] == 0 and "whole" in event["text"]:
            return


async def test_an_answer_lost_with_the_connection_is_settled_by_the_next_one(
    redis: RedisServer,
) -> None:
    """Node A's connection to Redis is cut after Redis ran a batch but before A heard of it:
    the other node showed the message, so once A is back it is delivered on A too, stored and
    acked, with the id the others saw. Unless Redis restarted empty meanwhile: then whether it
    ran cannot be known, and its sender is told it was not sent (``cluster_unavailable``),
    never left waiting."""
    async with _two_nodes(redis) as (proxy, a, b):
        with anyio.fail_after(DEADLINE):
            sender = await _member(a.port, "sender", ("#talk",))
            mate = await _member(a.port, "mate", ("#talk",))
            listener = await _member(b.port, "listener", ("#talk",))
        try:
            with anyio.fail_after(DEADLINE):
                proxy.hold()
                await sender.send(_line(type="say", to="#talk", text="in doubt", ref="d"))
                seen = await _message(listener)  # Redis ran it
                assert seen["text"] == "in doubt"
                proxy.cut()  # A reconnects through the relay, which relays new connections
                [answer] = await _answers(sender, 1)
                assert (answer["type"], answer.get("id")) == ("ack", seen["id"]), answer
                here = await _message(mate)
                assert (here["id"], here["text"]) == (seen["id"], "in doubt")
                await sender.send_json(type="history", to="#talk", ref="h")
                history = await sender.json_event("history", timeout=DEADLINE)
                assert [e["id"] for e in history["messages"]] == [seen["id"]]
                await _whole_again(mate)
                await mate.send_json(type="say", to="#talk", text="after", ref="a")
                [ack] = await _answers(mate, 1)
                assert ack["type"] == "ack" and ack["id"] > seen["id"]
                assert (await _message(listener))["text"] == "after"
            with anyio.fail_after(DEADLINE):
                proxy.hold()
                await sender.send(_line(type="say", to="#talk", text="lost", ref="l"))
                assert (await _message(listener))["text"] == "lost"
                await anyio.to_thread.run_sync(redis.restart)
                proxy.cut()  # (what the relay held from the old Redis is lost with it)
                [answer] = await _answers(sender, 1)
                assert (answer["type"], answer["code"]) == ("error", "cluster_unavailable")
        finally:
            for client in (sender, mate, listener):
                await client.aclose()
