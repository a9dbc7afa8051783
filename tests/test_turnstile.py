"""The turnstile newcomers pass before registering: all get through, a few per turn of the
event loop and in arrival order from one turn to the next, and one that gives up waiting holds
nobody up."""

from __future__ import annotations

import anyio
import pytest

from anychat.turnstile import Turnstile


def _turns(order: list[int], per_turn: int) -> list[set[int]]:
    """Who passed together (trio wakes the tasks released in one turn in any order)."""
    return [set(order[i : i + per_turn]) for i in range(0, len(order), per_turn)]


pytestmark = pytest.mark.timeout(30)


async def test_everyone_passes_in_arrival_order() -> None:
    turnstile = Turnstile(per_turn=2)
    arrived: list[int] = []  # trio starts tasks in an order of its own: arrival is what counts
    passed: list[int] = []

    async def newcomer(n: int) -> None:
        arrived.append(n)
        await turnstile.wait_turn()
        passed.append(n)

    with anyio.fail_after(5):
        async with anyio.create_task_group() as tg:
            tg.start_soon(turnstile.run)
            async with anyio.create_task_group() as crowd:
                for n in range(9):
                    crowd.start_soon(newcomer, n)
            tg.cancel_scope.cancel()
    assert sorted(passed) == list(range(9))
    assert _turns(passed, 2) == _turns(arrived, 2)


async def test_no_more_than_per_turn_pass_before_the_turnstile_turns() -> None:
    turnstile = Turnstile(per_turn=3)
    arrived: list[int] = []
    passed: list[int] = []
    all_in = anyio.Event()

    async def newcomer(n: int) -> None:
        arrived.append(n)
        await turnstile.wait_turn()
        passed.append(n)
        if len(passed) == 7:
            all_in.set()

    with anyio.fail_after(5):
        async with anyio.create_task_group() as crowd:
            for n in range(7):
                crowd.start_soon(newcomer, n)
            await anyio.wait_all_tasks_blocked()
            assert set(passed) == set(arrived[:3])  # the rest wait for run() to let them in
            async with anyio.create_task_group() as tg:
                tg.start_soon(turnstile.run)
                await all_in.wait()
                tg.cancel_scope.cancel()
    assert _turns(passed, 3) == _turns(arrived, 3)


async def test_a_newcomer_that_gives_up_holds_nobody_up() -> None:
    turnstile = Turnstile(per_turn=1)
    passed: list[str] = []
    late_in = anyio.Event()

    async def newcomer(name: str) -> None:
        await turnstile.wait_turn()
        passed.append(name)
        if name == "late":
            late_in.set()

    with anyio.fail_after(5):
        async with anyio.create_task_group() as crowd:
            crowd.start_soon(newcomer, "first")
            await anyio.wait_all_tasks_blocked()
            with anyio.CancelScope() as gone:
                gone.cancel()
                await turnstile.wait_turn()  # queued, then cancelled: its client left
            crowd.start_soon(newcomer, "late")
            await anyio.wait_all_tasks_blocked()
            async with anyio.create_task_group() as tg:
                tg.start_soon(turnstile.run)
                await late_in.wait()
                tg.cancel_scope.cancel()
    assert passed == ["first", "late"]
