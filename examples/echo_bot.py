"""An echo bot: repeats every message said in a room, and answers private messages.

Run a server (``anychat serve``), then ``python examples/echo_bot.py [host] [port]``.
Works on asyncio and trio alike: pass ``--backend trio`` as the last argument to prove it.
"""

from __future__ import annotations

import sys

import anyio

import anychat


async def echo(host: str, port: int, *, max_messages: int | None = None) -> None:
    """Echo until the connection ends (or ``max_messages`` were answered, for tests)."""
    async with anychat.connect(host, port, nick="echobot") as bot:
        answered = 0
        # Only what is said from now on: messages replayed on joining a room are not yielded
        # unless asked for (``connect(..., history=True)``; then ``event.history`` tells them).
        async for event in bot:
            if not isinstance(event, anychat.Message):
                continue
            # ``event.text`` is exactly what the sender typed, escape sequences included: print
            # ``event.safe_text``, which cannot drive your terminal.
            print(f"{event.sender} -> {event.target}: {event.safe_text}")
            # A room message is echoed to the room; a private one back to its sender.
            reply_to = event.target if event.target.startswith("#") else event.sender
            await bot.send(reply_to, f"{event.sender} said: {event.text}")
            answered += 1
            if max_messages is not None and answered >= max_messages:
                return


def main() -> None:
    args = [a for a in sys.argv[1:] if not a.startswith("--")]
    backend = "trio" if "--backend" in sys.argv and sys.argv[-1] == "trio" else "asyncio"
    host = args[0] if args else "127.0.0.1"
    port = int(args[1]) if len(args) > 1 else 3000
    anyio.run(echo, host, port, backend=backend)


if __name__ == "__main__":
    main()
