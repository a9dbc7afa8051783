"""Fan-out under load, over real sockets: nothing lost, nothing duplicated, order kept.

The hot path batches output per connection, sends from the task that did the fan-out and falls
back to a writer task only for what the kernel did not take. These tests drive each of those
paths hard enough that batching, partial writes and slow-consumer cuts all happen, and check
properties of what arrives (never how fast).
"""

from __future__ import annotations

import json
import socket
from collections.abc import Callable
from functools import partial
from typing import Any

import anyio
import pytest
from anyio.abc import SocketAttribute, SocketStream

import anychat
from anychat import reader
from anychat import server as server_module

SENDERS = 4
MESSAGES = 300


class Peer:
    """A raw JSON-lines client that keeps every event it receives, in order."""

    def __init__(self, stream: SocketStream, nick: str) -> None:
        self.stream = stream
        self.nick = nick
        self.events: list[dict[str, Any]] = []
        self.message_count = 0
        self.ack_count = 0
        self._buffer = b""

    @classmethod
    async def join(cls, port: int, nick: str) -> Peer:
        peer = cls(await anyio.connect_tcp("127.0.0.1", port), nick)
        await peer.stream.send(json.dumps({"type": "hello", "nick": nick}).encode() + b"\n")
        await peer.until(lambda e: e["type"] == "members")
        return peer

    async def receive_some(self, max_bytes: int = 65536) -> None:
        self._buffer += await self.stream.receive(max_bytes)
        *lines, self._buffer = self._buffer.split(b"\n")
        for line in lines:
            event = json.loads(line)
            self.events.append(event)
            self.message_count += event["type"] == "message"
            self.ack_count += event["type"] == "ack"

    async def until(self, done: Callable[[dict[str, Any]], bool], max_bytes: int = 65536) -> None:
        """Read until an event satisfies ``done`` (bounded by the caller's deadline)."""
        start = 0
        while True:
            for event in self.events[start:]:
                if done(event):
                    return
            start = len(self.events)
            await self.receive_some(max_bytes)

    def messages(self) -> list[dict[str, Any]]:
        return [e for e in self.events if e["type"] == "message"]


def burst(sender: int, count: int, text_bytes: int = 40) -> bytes:
    """``count`` say lines whose texts name the sender and number the message."""
    return b"".join(
        json.dumps(
            {"type": "say", "to": "#general", "text": f"{sender}:{seq}:".ljust(text_bytes, "x")}
        ).encode()
        + b"\n"
        for seq in range(count)
    )


def by_sender(messages: list[dict[str, Any]]) -> dict[int, list[int]]:
    seen: dict[int, list[int]] = {}
    for msg in messages:
        sender, seq, _ = msg["text"].split(":", 2)
        seen.setdefault(int(sender), []).append(int(seq))
    return seen


async def read_all(
    peers: list[Peer], count_for: Callable[[Peer], int], acks_for: int | None = None
) -> None:
    """Read every peer until it holds ``count_for(peer)`` messages (and, for peers that have
    sent, ``acks_for`` acks)."""

    async def one(peer: Peer) -> None:
        want = count_for(peer)
        acks = acks_for if acks_for is not None and peer.nick.startswith("s") else 0
        while peer.message_count < want or peer.ack_count < acks:
            await peer.receive_some()

    async with anyio.create_task_group() as tg:
        for peer in peers:
            tg.start_soon(one, peer)


async def close_all(peers: list[Peer]) -> None:
    for peer in peers:
        await peer.stream.aclose()


async def test_several_senders_nothing_lost_duplicated_or_reordered(anyio_backend: str) -> None:
    async with anychat.serve(port=0, flood_rate=0) as server:
        senders = [await Peer.join(server.port, f"s{i}") for i in range(SENDERS)]
        listeners = [await Peer.join(server.port, f"r{i}") for i in range(3)]
        everyone = senders + listeners
        try:
            with anyio.fail_after(30):
                async with anyio.create_task_group() as tg:
                    for i, peer in enumerate(senders):
                        # Chunks of 50 lines: each read on the server is a batch of many says.
                        data = burst(i, MESSAGES)
                        lines = data.splitlines(keepends=True)
                        chunks = [b"".join(lines[j : j + 50]) for j in range(0, MESSAGES, 50)]
                        tg.start_soon(_send_chunks, peer.stream, chunks)
                    tg.start_soon(
                        read_all,
                        everyone,
                        lambda p: MESSAGES * (SENDERS - (p in senders)),
                        MESSAGES,
                    )
            for peer in everyone:
                mine = int(peer.nick[1:]) if peer in senders else None
                expected = {i: list(range(MESSAGES)) for i in range(SENDERS) if i != mine}
                assert by_sender(peer.messages()) == expected, peer.nick
            for i, peer in enumerate(senders):
                acks = [e for e in peer.events if e["type"] == "ack"]
                assert len(acks) == MESSAGES, i
                assert [a["id"] for a in acks] == sorted(a["id"] for a in acks)
        finally:
            await close_all(everyone)


async def _send_chunks(stream: SocketStream, chunks: list[bytes]) -> None:
    for chunk in chunks:
        await stream.send(chunk)


async def test_stalled_receiver_is_cut_and_the_room_keeps_flowing(anyio_backend: str) -> None:
    async with anychat.serve(port=0, flood_rate=0, max_queue_bytes=64 * 1024) as server:
        senders = [await Peer.join(server.port, f"s{i}") for i in range(2)]
        watcher = await Peer.join(server.port, "watch")
        sloth = await Peer.join(server.port, "sloth")
        sloth.stream.extra(SocketAttribute.raw_socket).setsockopt(
            socket.SOL_SOCKET, socket.SO_RCVBUF, 4096
        )
        peers = [*senders, watcher, sloth]
        try:
            with anyio.fail_after(30):
                # Sloth stops reading. Keep the room busy until the server gives up on it.
                rounds = 0
                while not any(e["type"] == "quit" for e in watcher.events):
                    async with anyio.create_task_group() as tg:
                        for i, peer in enumerate(senders):
                            tg.start_soon(peer.stream.send, _round(i, rounds))
                        tg.start_soon(
                            read_all,
                            [*senders, watcher],
                            partial(_expected, senders, 20 * (rounds + 1)),
                        )
                    rounds += 1
                # After the cut, the room still flows to everyone else, in order.
                async with anyio.create_task_group() as tg:
                    for i, peer in enumerate(senders):
                        tg.start_soon(peer.stream.send, _round(i, rounds))
                    tg.start_soon(
                        read_all,
                        [*senders, watcher],
                        partial(_expected, senders, 20 * (rounds + 1)),
                    )
            quits = [e for e in watcher.events if e["type"] == "quit"]
            assert [q["nick"] for q in quits] == ["sloth"]
            assert quits[0]["reason"].startswith("send queue exceeded")
            total = 20 * (rounds + 1)
            assert by_sender(watcher.messages()) == {0: list(range(total)), 1: list(range(total))}
            assert by_sender(senders[0].messages()) == {1: list(range(total))}
        finally:
            await close_all(peers)


def _expected(senders: list[Peer], per_sender: int, peer: Peer) -> int:
    """Messages ``peer`` should hold: every sender's but its own."""
    return per_sender * (len(senders) - (peer in senders))


def _round(sender: int, number: int) -> bytes:
    """Twenty long messages, numbered on from the previous rounds."""
    return b"".join(
        json.dumps(
            {
                "type": "say",
                "to": "#general",
                "text": f"{sender}:{number * 20 + seq}:".ljust(380, "z"),
            }
        ).encode()
        + b"\n"
        for seq in range(20)
    )


@pytest.fixture
def tiny_server_send_buffers(monkeypatch: pytest.MonkeyPatch) -> None:
    """Shrink each accepted socket's kernel send buffer, so most sends are partial."""
    serve_peer = reader.serve_peer

    async def small_buffer_serve_peer(
        hub: Any, sock: socket.socket, *args: Any, **kwargs: Any
    ) -> None:
        sock.setsockopt(socket.SOL_SOCKET, socket.SO_SNDBUF, 4096)
        await serve_peer(hub, sock, *args, **kwargs)

    monkeypatch.setattr(server_module, "serve_peer", small_buffer_serve_peer)


@pytest.mark.usefixtures("tiny_server_send_buffers")
async def test_partial_writes_deliver_every_byte_in_order(anyio_backend: str) -> None:
    async with anychat.serve(port=0, flood_rate=0, max_queue_bytes=16 << 20) as server:
        senders = [await Peer.join(server.port, f"s{i}") for i in range(2)]
        slow = await Peer.join(server.port, "slow")
        count = 400
        try:
            with anyio.fail_after(30):
                async with anyio.create_task_group() as tg:
                    for i, peer in enumerate(senders):
                        tg.start_soon(peer.stream.send, burst(i, count, text_bytes=390))
                    # The slow reader takes a few hundred bytes at a time.
                    tg.start_soon(_until_count, slow, 2 * count, 300)
                    tg.start_soon(read_all, senders, lambda p: count)
            expected_text = {
                (i, seq): f"{i}:{seq}:".ljust(390, "x") for i in range(2) for seq in range(count)
            }
            got = slow.messages()
            assert by_sender(got) == {0: list(range(count)), 1: list(range(count))}
            for msg in got:
                sender, seq, _ = msg["text"].split(":", 2)
                assert msg["text"] == expected_text[int(sender), int(seq)]
        finally:
            await close_all([*senders, slow])


async def _until_count(peer: Peer, count: int, max_bytes: int) -> None:
    while peer.message_count < count:
        await peer.receive_some(max_bytes)


async def test_one_batch_mixing_messages_and_membership_keeps_order(anyio_backend: str) -> None:
    # Consecutive messages in one read are fanned out together; a part or join in between
    # must still reach everyone in its place.
    async with anychat.serve(port=0, flood_rate=0) as server:
        ada = await Peer.join(server.port, "ada")
        bob = await Peer.join(server.port, "bob")
        lines = [
            {"type": "say", "to": "#general", "text": "a1"},
            {"type": "say", "to": "#general", "text": "a2"},
            {"type": "say", "to": "bob", "text": "private"},
            {"type": "say", "to": "#general", "text": "a3"},
            {"type": "part", "room": "#general"},
            {"type": "say", "to": "#general", "text": "lost: ada is not in the room"},
            {"type": "join", "room": "#general"},
            {"type": "say", "to": "#general", "text": "a4"},
        ]
        try:
            with anyio.fail_after(10):
                await ada.stream.send(b"".join(json.dumps(x).encode() + b"\n" for x in lines))
                await bob.until(lambda e: e.get("text") == "a4")
                await ada.until(lambda e: e["type"] == "ack" and e["id"] == bob.events[-1]["id"])
            seen = [
                (e["type"], e.get("text") or e.get("nick"))
                for e in bob.events
                if e["type"] in ("message", "parted", "joined") and e.get("nick") != "bob"
            ]
            assert seen == [
                ("message", "a1"),
                ("message", "a2"),
                ("message", "private"),
                ("message", "a3"),
                ("parted", "ada"),
                ("joined", "ada"),
                ("message", "a4"),
            ]
            errors = [e["code"] for e in ada.events if e["type"] == "error"]
            assert errors == ["not_member"]
        finally:
            await close_all([ada, bob])
