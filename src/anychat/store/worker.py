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

The committer does not await its commits at all: :meth:`StoreThread.submitter` hands a call to
the thread with a callback that the thread schedules on the event loop once the call is done
(the result or the error as its arguments). No task waits, no event is made, no cancel scope
is entered: the callback answers the batch and sends its acks in the same loop turn that the
thread's wake-up starts. ``benchmarks/store_hop.py`` times both ways; on one core, on a
busier day than the figures above: asyncio 93 µs awaited against 39 submitted, trio 144 against
78.
"""

from __future__ import annotations

import asyncio
import queue
import threading
from collections.abc import Callable
from functools import partial
from typing import Any, Generic, TypeVar

import anyio
import anyio.lowlevel

from ..turns import on_asyncio

__all__ = ["Done", "StoreThread", "Submit"]

T = TypeVar("T")

#: Called on the event loop when a submitted call is done: ``(result, None)`` or
#: ``(None, error)``.
Done = Callable[[T | None, BaseException | None], object]
#: Hands ``func`` to the store's thread; ``done`` follows on the event loop (never inline).
Submit = Callable[[Callable[[], T], Done[T]], None]
Waker = Callable[[Callable[[], object]], object]


class _Call(Generic[T]):
    __slots__ = ("done", "error", "func", "result", "then", "wake")

    def __init__(self, func: Callable[[], T], wake: Waker, then: Done[T] | None = None):
        self.func = func
        self.wake = wake
        #: What an awaiting caller waits on; a submitted call has its callback instead.
        self.done = anyio.Event() if then is None else None
        self.then = then
        self.result: T | None = None
        self.error: BaseException | None = None


def _waker(context: bool = False) -> Waker:
    """How a foreign thread schedules a callback on the running event loop.

    With ``context``, an asyncio callback runs where AnyIO knows its loop (the callback may
    start tasks: see :func:`anychat.turns.on_asyncio`); trio's callbacks always do.
    """
    native: Any = anyio.lowlevel.current_token().native_token  # a TrioToken, or the loop
    if isinstance(native, asyncio.AbstractEventLoop):
        if context:
            return partial(native.call_soon_threadsafe, context=on_asyncio())
        return native.call_soon_threadsafe
    return native.run_sync_soon  # type: ignore[no-any-return]


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
        done = call.done
        assert done is not None
        self._start()
        self._queue.put(call)
        with anyio.CancelScope(shield=True):  # made is made: see the module docs
            await done.wait()
        if call.error is not None:
            error, call.error = call.error, None  # no cycle through the traceback
            raise error
        return call.result  # type: ignore[return-value]

    def submitter(self) -> Submit[Any]:
        """A way to hand calls to the thread without awaiting them, bound to the running loop.

        ``submit(func, done)`` queues ``func`` behind every call made before it; when it has
        run, ``done(result, error)`` is scheduled on this event loop (call this from inside
        the loop, once: the look-up of the loop is the part worth not repeating). A call
        submitted after :meth:`close` raises ``RuntimeError`` at once.
        """
        wake = _waker(context=True)

        def submit(func: Callable[[], Any], done: Done[Any]) -> None:
            if self._closed:
                raise RuntimeError(f"{self._name} is closed")
            self._start()
            self._queue.put(_Call(func, wake, done))

        return submit

    def _start(self) -> None:
        if self._thread is None:
            self._thread = threading.Thread(target=self._work, name=self._name, daemon=True)
            self._thread.start()

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
                if call.then is not None:
                    call.wake(partial(call.then, call.result, call.error))
                    call.error = None  # no cycle through the traceback
                else:
                    assert call.done is not None
                    call.wake(call.done.set)
            except RuntimeError:  # the caller's event loop has ended (asyncio; trio's
                pass  # RunFinishedError is a RuntimeError too): nobody is waiting
            del call
