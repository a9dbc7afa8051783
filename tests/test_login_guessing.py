"""Guessing one account's password in parallel gains nothing, and never locks its owner out."""

from __future__ import annotations

import json

import anyio
import anyio.lowlevel
import pytest

import anychat

from .helpers import LineClient

INTERVAL = 0.1
PASSWORD = "correct horse battery"


async def _guess(port: int, source: str, password: str) -> dict[str, object]:
    stream = await anyio.connect_tcp("127.0.0.1", port, local_host=source)
    async with LineClient(stream) as client:
        await client.send_json(type="hello", nick="victim", password=password, ref=1)
        while True:
            event: dict[str, object] = json.loads(await client.line(timeout=60))
            if event["type"] in ("error", "welcome"):
                return event


@pytest.mark.timeout(300)  # each guess costs an Argon2 hash: slow on a loaded machine
async def test_parallel_guesses_get_one_check_per_interval_and_the_owner_gets_in() -> None:
    # A long sniff window: on a loaded machine a JSON client's first line may come late.
    async with anychat.serve(
        port=0, login_delay_seconds=0.01, login_interval_seconds=INTERVAL, sniff_seconds=5
    ) as server:
        async with anychat.connect(*server.address, nick="victim") as victim:
            await victim.register(PASSWORD)
        answers: list[dict[str, object]] = []
        first_answer = anyio.Event()

        async def attacker(n: int) -> None:
            # Four addresses with five connections each, all guessing at once.
            for _ in range(1):
                answers.append(await _guess(server.port, f"127.0.1.{n % 4}", "wrong password!"))
                first_answer.set()

        started = anyio.current_time()
        with anyio.fail_after(150):
            async with anyio.create_task_group() as tg:
                for n in range(20):
                    tg.start_soon(attacker, n)
                # Once the attack is answering, the owner logs in from an address of its own.
                await first_answer.wait()
                owner = await _guess(server.port, "127.0.2.1", PASSWORD)
        elapsed = anyio.current_time() - started
        assert owner["type"] == "welcome"
        checked = [a for a in answers if "wrong nick or password" in str(a.get("text"))]
        turned_away = [a for a in answers if "too many login attempts" in str(a.get("text"))]
        assert len(checked) + len(turned_away) == len(answers) == 20
        # At most one password check per interval, all attackers together.
        assert len(checked) <= elapsed / INTERVAL + 2


async def test_the_owner_goes_before_an_attackers_queue() -> None:
    """Order, not time: with twenty guesses from one address in line, a clean address's attempt
    gets the next slot but one."""
    from anychat.auth import AccountGate, LoginThrottle
    from anychat.login_queue import LoginQueue

    throttle = LoginThrottle()
    throttle.failed("10.0.0.1")  # the attacker's address has failed before
    queue = LoginQueue(AccountGate(interval_seconds=0.01), throttle)
    granted: list[str] = []

    async def attempt(host: str) -> None:
        assert await queue.turn("victim", host)
        granted.append(host)

    with anyio.fail_after(30):
        async with anyio.create_task_group() as tg:
            for _ in range(20):
                tg.start_soon(attempt, "10.0.0.1")
            await anyio.lowlevel.checkpoint()
            while len(queue._lines.get("victim", ())) < 19:
                await anyio.lowlevel.checkpoint()
            tg.start_soon(attempt, "10.0.0.2")
    assert len(granted) == 21
    assert granted.index("10.0.0.2") <= 2
