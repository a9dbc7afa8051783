"""One long-lived thread per store for its blocking calls, fed through a queue.

SQLite and psycopg's sync API block, so the stores run every call off the event loop. They
used to hand each call to :func:`anyio.to_thread.run_sync` under a ``CapacityLimiter(1)``,
paying AnyIO's bookkeeping around the hop (the limiter, a cancel scope, its worker pool) once
per commit, and an idle server commits every message on its own. Here one thread, started at
the first call and ended by :meth:`StoreThread.close`, takes calls from a
:class:`queue.SimpleQueue` in order and answers each by scheduling an :class:`anyio.Event`'s
``set`` on the caller's event loop (``call_soon_threadsafe`` on asyncio, ``run_sync_soon`` on
trio). CPU per call that does nothing, both threads on one core as ``benchmarks/run.py`` pins
the server (``benchmarks/store_hop.py``): asyncio 46 -> 33 µs, trio 62 -> 39 µs; on two cores
102 -> 75 and 123 -> 106 µs (the rest is the two wake-ups themselves).

The contract is the one the stores had: calls run one at a time, in the order they were made;
a call that was made is never abandoned, so a COMMIT in flight finishes (or fails) before its
caller sees a cancellation, and no ack is ever sent for a transaction that may still roll back.
"""

from __future__ import annotations

import queue
import threading
from collections.abc import Callable
from typing import Any, Generic, TypeVar

import anyio
import anyio.lowlevel

__all__ = ["StoreThread"]

T = TypeVar("T")


class _Call(Generic[T]):
    __slots__ = ("done", "error", "func", "result", "wake")

    def __init__(self, func: Callable[[], T], wake: Callable[[Callable[[], object]], object]):
        self.func = func
        self.wake = wake
        self.done = anyio.Event()
        self.result: T | None = None
        self.error: BaseException | None = None


def _waker() -> Callable[[Callable[[], object]], object]:
    """How a foreign thread schedules a callback on the running event loop."""
    native: Any = anyio.lowlevel.current_token().native_token  # a TrioToken, or the loop
    return getattr(native, "run_sync_soon", None) or native.call_soon_threadsafe  # type: ignore[no-any-return]


class StoreThread:
    """Runs blocking calls in one thread of its own, in order, one at a time."""

    def __init__(self, name: str) -> None:
        self._name = name
        self._queue: queue.SimpleQueue[_Call[Any] | None] = queue.SimpleQueue()
        self._thread: threading.Thread | None = None
        self._closed = False

    async def run(self, func: Callable[[], T]) -> T:
        """``func()`` in the store's thread; its result, or what it raised."""
        if self._closed:
            raise RuntimeError(f"{self._name} is closed")
        call = _Call(func, _waker())
        if self._thread is None:
            self._thread = threading.Thread(target=self._work, name=self._name, daemon=True)
            self._thread.start()
        self._queue.put(call)
        with anyio.CancelScope(shield=True):  # made is made: see the module docs
            await call.done.wait()
        if call.error is not None:
            error, call.error = call.error, None  # no cycle through the traceback
            raise error
        return call.result  # type: ignore[return-value]

    def close(self) -> None:
        """No more calls; the thread ends once the queued ones ran (it is not waited for)."""
        if not self._closed:
            self._closed = True
            self._queue.put(None)

    def _work(self) -> None:
        while (call := self._queue.get()) is not None:
            try:
                call.result = call.func()
            except BaseException as exc:  # handed to the caller, whatever it is
                call.error = exc
            try:
                call.wake(call.done.set)
            except RuntimeError:  # the caller's event loop has ended (asyncio; trio's
                pass  # RunFinishedError is a RuntimeError too): nobody is waiting
            del call
