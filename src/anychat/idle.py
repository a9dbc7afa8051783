"""The idle watcher: ping quiet clients, drop silent ones and those that never register.

It also asks readers that have heard nothing for ``park_after_seconds`` to park, where
:func:`parking_for` found a way to (:mod:`anychat.parking`). One task per server. Scanning every connection each tick costs far less than a timer per
connection, and a tick of a fraction of the shortest timeout keeps every deadline within that
fraction. Whether a protocol can be pinged at all is the codec's call (:meth:`Codec.keepalive`).
"""

from __future__ import annotations

import asyncio
import time
from typing import TYPE_CHECKING

import anyio
import anyio.lowlevel

from . import model as m
from .broker import SessionState
from .parking import Parking, ReaderParking
from .parking_selector import selector_parking

if TYPE_CHECKING:
    from anyio.abc import TaskGroup

    from .hub import Hub

__all__ = ["PARKS_PER_TURN", "parking_for", "watch_idle"]

#: Readers asked to park before the watcher lets them (each parks in the next turn of the event
#: loop): 10,000 quiet connections (after a join storm) park over forty short turns, not in one
#: that stalls the chat, and within one tick, not over forty ticks, which measured to hold more
#: memory once all were parked (docs/performance.md, "Parking idle readers").
PARKS_PER_TURN = 256


def parking_for(task_group: TaskGroup | None, after_seconds: float) -> ReaderParking | None:
    """Parking on this event loop (its watching task, if it needs one, started in
    ``task_group``), or ``None`` where it is off or the platform cannot watch sockets."""
    if task_group is None or after_seconds <= 0:
        return None
    try:
        loop = asyncio.get_running_loop()  # none under trio
    except RuntimeError:
        return selector_parking(task_group, after_seconds)
    return Parking(loop, task_group, after_seconds)


async def watch_idle(hub: Hub) -> None:
    config = hub.config
    ping_after = config.idle_ping_seconds
    drop_after = ping_after + config.idle_timeout_seconds
    register_by = config.registration_timeout_seconds
    silent_for = config.silent_timeout_seconds
    park_after = config.park_after_seconds
    deadlines = [ping_after, config.idle_timeout_seconds, register_by, silent_for, 4.0]
    tick = min(deadlines + ([park_after] if park_after > 0 else [])) / 4
    broker = hub.broker
    parking = hub.parking
    while True:
        await anyio.sleep(tick)
        now = time.monotonic()  # the clock of heard_at and connected_at
        parks = PARKS_PER_TURN
        for conn in list(hub.connections):
            if conn.closing or conn.closed:
                continue
            session = broker.session(conn) if conn in broker.peers() else None
            if session is not None and session.state is SessionState.NEW:
                if now - conn.connected_at > register_by:
                    conn.close(m.Bye(code=None, reason="registration timed out"))
                continue
            if not conn.spoke and now - conn.connected_at > silent_for:
                conn.close(m.Bye(code=None, reason="closing a connection that never said anything"))
                continue
            quiet = now - conn.heard_at
            if quiet > drop_after and conn.pinged:
                conn.close(m.Bye(code=None, reason=f"ping timeout: {int(quiet)} seconds"))
                continue
            if quiet > ping_after and not conn.pinged:
                ping = conn.codec.keepalive(config.server_name)
                if ping is not None:
                    conn.pinged = True
                    conn.push(ping)
            if parking is not None and quiet > park_after and conn.waiter is not None:
                if not parks:
                    hub.flush()
                    await anyio.lowlevel.checkpoint()  # the readers asked so far park now
                    parks = PARKS_PER_TURN
                    if conn.closing or conn.closed:
                        continue
                parks -= parking.nudge(conn)
        hub.flush()
