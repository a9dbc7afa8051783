"""Send one message and exit: the shape of a cron job or a CI notification.

Run: ``python examples/send_once.py '#general' 'deploy finished' [host] [port]``.
Exit status 1 with a one-line reason if the server cannot be reached or refuses.
"""

from __future__ import annotations

import sys

import anyio

import anychat


async def send_once(host: str, port: int, target: str, text: str) -> int:
    async with anychat.connect(host, port, nick=None, autojoin=False) as client:
        if target.startswith("#"):
            await client.join(target)
        ack = await client.send(target, text)
        return ack.id


def main() -> int:
    target, text = sys.argv[1], sys.argv[2]
    host = sys.argv[3] if len(sys.argv) > 3 else "127.0.0.1"
    port = int(sys.argv[4]) if len(sys.argv) > 4 else 3000
    try:
        msg_id = anyio.run(send_once, host, port, target, text)
    except anychat.ChatError as exc:
        print(f"send_once: {exc}", file=sys.stderr)
        return 1
    print(f"sent message {msg_id}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
