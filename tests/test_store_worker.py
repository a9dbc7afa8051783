"""StoreThread: calls run in one thread, in order; errors come back; nothing made is abandoned."""

from __future__ import annotations

import threading

import anyio
import pytest

from anychat.store.worker import StoreThread


async def test_calls_run_in_order_in_one_thread_of_its_own() -> None:
    worker = StoreThread("test-store")
    seen: list[tuple[int, int]] = []

    async def call(i: int) -> None:
        def work() -> int:
            seen.append((i, threading.get_ident()))
            return i

        assert await worker.run(work) == i

    with anyio.fail_after(10):
        async with anyio.create_task_group() as tg:
            for i in range(50):
                tg.start_soon(call, i)
                await anyio.lowlevel.checkpoint()  # each queued before the next is made
    assert [i for i, _ in seen] == list(range(50))
    threads = {ident for _, ident in seen}
    assert len(threads) == 1 and threads != {threading.get_ident()}
    worker.close()


async def test_what_the_call_raised_is_raised_to_the_caller() -> None:
    worker = StoreThread("test-store")

    def fail() -> None:
        raise ValueError("disk on fire")

    with anyio.fail_after(10), pytest.raises(ValueError, match="disk on fire"):
        await worker.run(fail)
    with anyio.fail_after(10):
        assert await worker.run(lambda: 7) == 7  # the thread survived it
    worker.close()
    with pytest.raises(RuntimeError, match="closed"):
        await worker.run(lambda: 1)


async def test_a_cancelled_caller_waits_until_its_call_finished() -> None:
    worker = StoreThread("test-store")
    started, release = threading.Event(), threading.Event()
    finished: list[bool] = []

    def commit() -> None:
        started.set()
        release.wait(10)
        finished.append(True)

    returned: list[list[bool]] = []

    async def caller(scope: anyio.CancelScope) -> None:
        with scope:
            await worker.run(commit)
            returned.append(list(finished))  # only once the commit is done
            await anyio.sleep_forever()  # where the cancellation reaches it

    scope = anyio.CancelScope()
    with anyio.fail_after(10):
        async with anyio.create_task_group() as tg:
            tg.start_soon(caller, scope)
            await anyio.to_thread.run_sync(started.wait, 10)
            scope.cancel()
            await anyio.lowlevel.checkpoint()
            assert finished == []
            release.set()
    assert returned == [[True]]
    assert scope.cancelled_caught
    worker.close()
