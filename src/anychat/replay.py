"""Each room's recent messages, kept in memory so a join replays history without a disk read.

Pure bookkeeping for the broker. A room is *cold* until its stored messages have been loaded
once; from then on it is *warm* and kept up to date as messages are said. While a load is in
flight the room is *loading*: messages said meanwhile are kept aside and appended after the
stored ones, so nothing falls between the store read and live delivery (the store read covers
every id below the point where the room started loading, and the broker remembers the rest).
In a cluster no id marks that point (other nodes number messages too): the store read goes up to
the newest message, after the node began to hear the room, and the two are merged by id.
"""

from __future__ import annotations

from collections import deque
from collections.abc import Iterable, Mapping

from . import model as m

__all__ = ["RecentHistory"]


def _id(msg: m.Message) -> int:
    return msg.id


class RecentHistory:
    """The last ``length`` messages of every warm room (``length`` 0 = no replays at all)."""

    def __init__(self, length: int) -> None:
        self.length = length
        self._warm: dict[str, deque[m.Message]] = {}
        #: Folded room -> (first id the store will not supply, messages said since).
        self._loading: dict[str, tuple[int, list[m.Message]]] = {}

    def cold(self, rooms: Iterable[str]) -> tuple[str, ...]:
        """The rooms among ``rooms`` whose history is not in memory yet."""
        if not self.length:
            return ()
        return tuple(room for room in rooms if m.casefold(room) not in self._warm)

    def start_loading(self, rooms: Iterable[str], next_id: int) -> int:
        """Begin remembering new messages of ``rooms``; returns the id the store read stops at.

        A room already loading keeps its earlier starting point, so every request for it asks
        the store for the same range.
        """
        below = next_id
        for room in rooms:
            key = m.casefold(room)
            if key not in self._warm:
                started = self._loading.setdefault(key, (next_id, []))[0]
                below = min(below, started)
        return below

    def loaded(self, stored: Mapping[str, list[m.Message]]) -> None:
        """The store read for these rooms is done: they are warm from now on."""
        for room, messages in stored.items():
            key = m.casefold(room)
            if key in self._warm:
                continue  # another request for the same room got there first
            start, newer = self._loading.pop(key, (0, []))
            if start:
                kept = [msg for msg in messages if msg.id < start] + newer
            else:  # read up to the newest (a cluster): what was also heard live counts once
                kept = sorted({msg.id: msg for msg in (*messages, *newer)}.values(), key=_id)
            self._warm[key] = deque(kept, maxlen=self.length)

    def remember(self, msg: m.Message) -> None:
        """Hot path: one dict lookup (and an append) per room message."""
        key = m.casefold(msg.target)
        warm = self._warm.get(key)
        if warm is not None:
            warm.append(msg)
            return
        loading = self._loading.get(key)
        if loading is not None:
            loading[1].append(msg)

    def replay(self, room: str) -> list[m.Message]:
        """The room's recent messages, marked as history."""
        return [
            msg
            if msg.history
            else m.Message(
                id=msg.id,
                time=msg.time,
                sender=msg.sender,
                target=msg.target,
                text=msg.text,
                kind=msg.kind,
                history=True,
            )
            for msg in self._warm.get(m.casefold(room), ())
        ]
