"""What an idle connection keeps alive while its reader waits (docs/performance.md, "Memory per
idle connection"): an idle server holds thousands of these waits, so nothing short-lived may
ride along with them."""

from __future__ import annotations

import gc

import anyio

import anychat

from .helpers import LineClient


async def test_idle_readers_hold_no_exception(anyio_backend: object) -> None:
    """The ``BlockingIOError`` of the empty receive is gone before the reader waits (awaited
    inside the ``except``, it and its traceback lived as long as the client stayed quiet)."""
    async with anychat.serve(port=0, database_url="memory://") as server:
        with anyio.fail_after(10):
            js = await LineClient.open(server.port)
            await js.send_json(type="hello", nick="js", rooms=["#idle"])
            await js.json_event("members")
            irc = await LineClient.open(server.port)
            await irc.send(b"NICK ircer\r\nUSER u 0 * :U\r\nJOIN #idle\r\n")
            await irc.line_containing(b" 366 ")  # end of the room's names: registered, joined
            # Both readers have answered and gone back to waiting for input.
            await anyio.wait_all_tasks_blocked()
        gc.collect()
        held = [obj for obj in gc.get_objects() if isinstance(obj, BlockingIOError)]
        assert held == []
        await js.aclose()
        await irc.aclose()
