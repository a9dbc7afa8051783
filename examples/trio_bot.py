"""A bot written in plain trio: counts the messages said since it came, reports on ``!count``.

anychat's client is built on AnyIO, so it runs inside any trio program as it is: no adapters.
Run: ``python examples/trio_bot.py [host] [port]``.
"""

from __future__ import annotations

import sys
from collections import Counter

import trio

import anychat


async def count_bot(host: str, port: int, *, stop_after_reports: int | None = None) -> None:
    counts: Counter[str] = Counter()
    reports = 0
    async with anychat.connect(host, port, nick="countbot") as bot:
        # Live messages only (the default): what was said before the bot came is not counted.
        async for event in bot:
            if not isinstance(event, anychat.Message) or not event.target.startswith("#"):
                continue
            if event.text.strip() == "!count":
                summary = ", ".join(f"{nick}: {n}" for nick, n in counts.most_common()) or "none"
                await bot.send(event.target, f"messages so far: {summary}")
                reports += 1
                if stop_after_reports is not None and reports >= stop_after_reports:
                    return
            else:
                counts[event.sender] += 1


if __name__ == "__main__":
    trio.run(
        count_bot,
        sys.argv[1] if len(sys.argv) > 1 else "127.0.0.1",
        int(sys.argv[2]) if len(sys.argv) > 2 else 3000,
    )
