"""The event loop's turns, as the reader's path asks for them: a yield, and a flush once a turn.

AnyIO looks the running event loop up on every call (through sniffio: a context variable and,
on asyncio, the current task, which on Python 3.11 costs a ``getpid`` system call each time).
The reader asks for a turn after every batch it handles, so at low load (one message at a time)
that look-up was part of every message. :class:`Turns` looks it up once, when the server
starts, and keeps the loop's own functions.

After a batch the reader must not send at once if other readers are about to run in the same
turn: when several clients' batches arrive together, each recipient should get one send for all
of them. On asyncio (and uvloop) :meth:`Turns.alone` tells whether any are (the readers that
parking has woken and that have not run yet); if none, the reader flushes at once and waits for
more, one turn of the loop per message when one client speaks at a time. Otherwise
:meth:`Turns.flush_soon` flushes once after every task woken in this turn has run, as a loop
callback. Trio can tell neither: its run queue holds only the tasks for the *next* batch (the
readers woken with this one are out of it, in the batch being run), and it has no cheap
callback (``run_sync_soon`` is thread-safe and writes to its wake-up socket); so there the
reader yields after each batch, and the first one back sends for everyone.
"""

from __future__ import annotations

import asyncio
import contextvars
from collections.abc import Awaitable, Callable
from functools import partial

import anyio.lowlevel

__all__ = ["Turns", "on_asyncio", "turns_here"]


def on_asyncio() -> contextvars.Context:
    """A context for a loop callback in which AnyIO knows it runs on asyncio.

    AnyIO (through sniffio) tells asyncio by its current task, and a callback has none: waking
    a reader (``start_soon``), a writer task started by a flush, or ``anyio.notify_closing``
    would fail there unless an ``anyio.run`` set sniffio's variable in the context the callback
    copied (an embedder's ``asyncio.run`` does not). Setting it is what sniffio offers event
    loops for this.
    """
    context = contextvars.copy_context()
    try:
        import sniffio
    except ImportError:  # AnyIO then asks asyncio for a running loop, which a callback has
        return context
    context.run(sniffio.current_async_library_cvar.set, "asyncio")
    return context


class Turns:
    """A yield to the event loop, and (on asyncio) a flush at the end of the turn."""

    __slots__ = ("_context", "_due", "_flush", "_loop", "checkpoint")

    def __init__(
        self,
        flush: Callable[[], None],
        loop: asyncio.AbstractEventLoop | None = None,
        checkpoint: Callable[[], Awaitable[None]] = anyio.lowlevel.checkpoint,
    ) -> None:
        self._flush = flush
        self._loop = loop
        self._due = False
        self._context = on_asyncio() if loop is not None else None
        #: Let every other task that is ready run, then go on: the loop's own checkpoint,
        #: which is what AnyIO's comes down to (on asyncio a ``sleep(0)``).
        self.checkpoint = checkpoint

    def alone(self, woken: int) -> bool:
        """Whether no other reader is about to run in this turn (asyncio): ``woken`` is
        parking's count of readers it woke that have not run (-1 where it does not count)."""
        return woken == 0 and self._loop is not None

    @property
    def can_flush_soon(self) -> bool:
        return self._loop is not None

    def flush_soon(self) -> None:
        """Flush once every task woken in this turn has run (asyncio only)."""
        if not self._due:
            assert self._loop is not None
            self._due = True
            self._loop.call_soon(self._flush_now, context=self._context)

    def _flush_now(self) -> None:
        self._due = False
        self._flush()


def turns_here(flush: Callable[[], None]) -> Turns:
    """The running event loop's :class:`Turns` (call it from inside the loop)."""
    try:
        loop = asyncio.get_running_loop()  # none under trio
    except RuntimeError:
        pass
    else:
        return Turns(flush, loop, partial(asyncio.sleep, 0))
    try:
        import trio
    except ImportError:  # not asyncio and not trio: whatever AnyIO runs on
        return Turns(flush)
    return Turns(flush, checkpoint=trio.lowlevel.checkpoint)
