"""How many new connections register per turn of the event loop.

A new connection's first step usually does all of its registration at once (hello, the default
room's join, the member list it is sent), and every task woken in one turn of the event loop
runs before any task woken later. When thousands of connections arrive together, letting them
all register in the same turn would make everyone already chatting wait for all of them. So
each newcomer passes a turnstile first: at most ``per_turn`` pass in one turn, the rest queue
(in arrival order) for the next turns. The kernel's accept queue is still drained quickly (a
queued newcomer costs a socket and a few hundred bytes; a SYN dropped because the accept queue
is full costs the client a retry a second or more later).

One task per server (:meth:`Turnstile.run`) lets the queue through, ``per_turn`` at a time,
and sleeps while nobody waits.
"""

from __future__ import annotations

from collections import deque

import anyio
import anyio.lowlevel

__all__ = ["Turnstile"]


class Turnstile:
    def __init__(self, per_turn: int) -> None:
        self.per_turn = per_turn
        self._queue: deque[anyio.Event] = deque()
        #: Newcomers let through since the last turn began.
        self._passed = 0
        self._wake = anyio.Event()

    async def wait_turn(self) -> None:
        """Return once this newcomer may register (at once, unless this turn is full)."""
        if not self._wake.is_set():
            self._wake.set()  # the counter is reset at the next turn
        if self._passed < self.per_turn and not self._queue:
            self._passed += 1
            return
        turn = anyio.Event()
        self._queue.append(turn)
        await turn.wait()  # cancelled (the connection closed): its place is let through

    async def run(self) -> None:
        """Let the queue through, ``per_turn`` newcomers a turn, until cancelled."""
        while True:
            await self._wake.wait()
            self._wake = anyio.Event()
            while True:
                await anyio.lowlevel.checkpoint()  # one turn of the event loop
                self._passed = 0
                queue = self._queue
                while queue and self._passed < self.per_turn:
                    queue.popleft().set()
                    self._passed += 1
                if not queue:
                    break
