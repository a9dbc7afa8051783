"""An anychat server embedded in an existing asyncio application.

The application owns the event loop; the chat server is one more thing it runs. Here the "app"
is a periodic announcement task that speaks in the room through the client API.
Run: ``python examples/embed_server.py`` and connect with ``anychat chat --port 3000``.
"""

from __future__ import annotations

import asyncio
import sys

import anychat


async def app(port: int = 3000, *, announcements: int | None = None) -> int:
    """Run the server and an announcer; returns the bound port when ``announcements`` ends it."""
    async with anychat.serve(port=port) as server:
        print(f"chat server embedded on {server.host}:{server.port}", flush=True)
        async with anychat.connect(server.host, server.port, nick="announcer") as announcer:
            sent = 0
            while announcements is None or sent < announcements:
                await announcer.send("#general", f"the app is alive (announcement {sent + 1})")
                sent += 1
                if announcements is None:
                    await asyncio.sleep(60)  # a real app would do real work here
        return server.port


if __name__ == "__main__":
    asyncio.run(app(int(sys.argv[1]) if len(sys.argv) > 1 else 3000))
