"""The bus of a single node: everything it would share is already here, in memory."""

from __future__ import annotations

from collections.abc import Iterable
from typing import TYPE_CHECKING, ClassVar

from .directory import Directory

if TYPE_CHECKING:
    from .directory import BusEvent

__all__ = ["LocalBus"]


class LocalBus:
    """One node, no one to tell: ids count up, claims always succeed, publishing is a no-op.

    Nick collisions between this node's own sessions are the broker's to find (its nick table);
    a claim here only ever fails for a nick another node holds, and there is none.
    """

    shared: ClassVar[bool] = False
    reachable: ClassVar[bool] = True

    def __init__(self, *, first_message_id: int = 1, registered: Iterable[str] = ()) -> None:
        self._next_id = first_message_id
        self._registered = set(registered)
        self.rooms: set[str] = set()
        self.directory = Directory()  # nobody else: stays empty

    @property
    def next_id(self) -> int:
        return self._next_id

    def allocate_id(self) -> int:
        msg_id = self._next_id
        self._next_id = msg_id + 1
        return msg_id

    def claim_nick(self, nick: str) -> bool:
        return True

    def must_ask(self, nick: str) -> bool:
        return False

    def release_nick(self, nick: str) -> None:
        pass

    def is_registered(self, nick: str) -> bool:
        return nick in self._registered

    def set_registered(self, nicks: Iterable[str], registered: bool = True) -> None:
        if registered:
            self._registered.update(nicks)
        else:
            self._registered.difference_update(nicks)

    def room_opened(self, room: str) -> None:
        self.rooms.add(room)

    def must_listen(self, room: str) -> bool:
        return False

    def room_closed(self, room: str) -> None:
        self.rooms.discard(room)

    def save_room(self, room: str, state: str, *, only_if_missing: bool = False) -> None:
        pass  # nobody else opens this node's rooms

    def drop_room(self, room: str, identity: str) -> None:
        pass

    def take_connect_states(self) -> dict[str, str]:
        return {}

    def take_room_state(self, room: str) -> str | None:
        return None

    def publish(self, room: str, event: BusEvent) -> None:
        raise AssertionError("a single node has no one to publish to")
