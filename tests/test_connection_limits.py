"""Per-address connection limits and the silent-socket timeout (a flood must not lock anyone out)."""

from __future__ import annotations

import json

import anyio

import anychat

from .helpers import LineClient


async def _json(port: int, source: str, nick: str) -> tuple[LineClient, dict[str, object]]:
    """Connect from ``source`` and say hello; returns the client and its first event."""
    client = LineClient(await anyio.connect_tcp("127.0.0.1", port, local_host=source))
    await client.send_json(type="hello", nick=nick)
    return client, json.loads(await client.line())


async def test_one_address_gets_at_most_its_share_and_others_carry_on() -> None:
    async with anychat.serve(
        port=0, max_connections_per_address=3, connection_rate_per_address=0, sniff_seconds=5
    ) as server:
        held = []
        for n in range(3):
            client, first = await _json(server.port, "127.0.0.5", f"a{n}")
            assert first["type"] == "welcome"
            held.append(client)
        refused, bye = await _json(server.port, "127.0.0.5", "a3")
        assert bye["type"] == "bye" and bye["code"] == "too_many_connections"
        assert "from your address" in str(bye["reason"])
        await refused.aclose()
        other, first = await _json(server.port, "127.0.0.6", "b0")
        assert first["type"] == "welcome"
        await other.aclose()
        # A connection that leaves frees its place.
        await held.pop().aclose()
        with anyio.fail_after(10):
            while True:
                again, first = await _json(server.port, "127.0.0.5", "a9")
                await again.aclose()
                if first["type"] == "welcome":
                    break
        for client in held:
            await client.aclose()


async def test_connecting_too_fast_is_refused() -> None:
    async with anychat.serve(
        port=0, connection_rate_per_address=0.01, connection_burst_per_address=2, sniff_seconds=5
    ) as server:
        firsts = []
        for n in range(3):
            client, first = await _json(server.port, "127.0.0.7", f"r{n}")
            firsts.append(first)
            await client.aclose()
        assert [f["type"] for f in firsts] == ["welcome", "welcome", "bye"]
        assert firsts[2]["reason"] == "connecting too fast from your address, try again later"


async def test_loopback_is_exempt_by_default() -> None:
    async with anychat.serve(port=0, sniff_seconds=5) as server:
        clients = []
        for n in range(25):
            client, first = await _json(server.port, "127.0.0.1", f"l{n}")
            assert first["type"] == "welcome"
            clients.append(client)
        for client in clients:
            await client.aclose()


async def test_a_socket_that_never_speaks_is_closed_and_a_talker_stays() -> None:
    async with anychat.serve(port=0, sniff_seconds=0.05, silent_timeout_seconds=0.5) as server:
        async with await LineClient.open(server.port) as talker:
            await talker.line_containing(b"Welcome")
            await talker.send(b"/ping\r\n")
            await talker.line_containing(b"pong")
            async with await LineClient.open(server.port) as silent:
                await silent.line_containing(b"Welcome")
                rest = await silent.read_to_eof(timeout=10)
                assert b"never said anything" in rest
            await talker.send(b"/ping\r\n")
            await talker.line_containing(b"pong")
