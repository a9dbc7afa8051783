"""People on nc/telnet: /register, /login, /history over a raw socket; passwords never echoed."""

from __future__ import annotations

from pathlib import Path

import anyio
from anyio.abc import SocketStream

import anychat


async def _until(stream: SocketStream, needle: bytes, seen: bytearray) -> bytes:
    with anyio.fail_after(10):
        while needle not in seen:
            seen += await stream.receive()
    head, _, rest = bytes(seen).partition(needle)
    seen[:] = rest
    return head + needle


async def test_text_client_registers_logs_in_and_reads_history(tmp_path: Path) -> None:
    url = f"sqlite:///{tmp_path / 'chat.db'}"
    async with anychat.serve(port=0, database_url=url, sniff_seconds=0.05) as srv:
        async with await anyio.connect_tcp(*srv.address) as nc:
            seen = bytearray()
            await _until(nc, b"Welcome", seen)
            await nc.send(b"/nick zed\r\n/register tiny\r\n")
            assert b"too short" in await _until(nc, b"characters\r\n", seen)
            await nc.send(b"/register zed's long password\r\n")
            await _until(nc, b"logged in as zed", seen)
            await nc.send(b"hello from zed\r\n/history\r\n")
            page = await _until(nc, b"(history) #general <zed> hello from zed\r\n", seen)
            assert b"history of #general" in page
            await nc.send(b"/history #nowhere\r\n/history bob\r\n/history 1 2 3\r\n")
            await _until(nc, b"join #nowhere", seen)
            await _until(nc, b"no earlier messages in bob", seen)
            await _until(nc, b"usage: /history", seen)
            assert b"for earlier ones" not in seen  # the one message is the first: no more pages
        async with await anyio.connect_tcp(*srv.address) as nc:
            seen = bytearray()
            await _until(nc, b"Welcome", seen)
            await nc.send(b"/nick zed\r\n")
            registered = await _until(nc, b"or /nick ANOTHER\r\n", seen)
            assert b"! nick zed is registered: log in or pick another; /login NICK" in registered
            await nc.send(b"/login zed wrong-password-here\r\n")
            failed = await _until(nc, b"wrong nick or password\r\n", seen)
            await nc.send(b"/login zed zed's long password\r\n")
            await _until(nc, b"logged in as zed", seen)
            await _until(nc, b"is now known as zed", seen)
            transcript = failed + bytes(seen)
            assert b"password here" not in transcript
            assert b"long password" not in transcript
