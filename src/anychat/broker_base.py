"""What every part of the broker shares.

The broker is one class assembled from mixins (operators, presence, slow work, cluster rules),
each in its own module so that one person can read it. They all refuse a command the same way
and see the same session tables; this base says so once, so a mixin never needs a stub of its
own that the method resolution order could pick instead of the real thing.
"""

from __future__ import annotations

from typing import Generic, TypeVar

from . import model as m
from .effects import Deliver, Effect
from .sessions import Room, Session

__all__ = ["BrokerPart"]

P = TypeVar("P")


class BrokerPart(Generic[P]):
    """The state and the refusal every broker mixin uses."""

    #: Folded nick -> its session (local users only).
    _nicks: dict[str, Session[P]]
    #: Folded room name -> the room.
    _rooms: dict[str, Room[P]]
    _sessions: dict[P, Session[P]]

    @staticmethod
    def _refuse(
        session: Session[P], cmd: m.Command, code: m.ErrorCode, text: str
    ) -> list[Effect[P]]:
        """An error for ``session`` only, answering ``cmd`` (its ``ref`` is echoed)."""
        return [Deliver(m.Error(code=code, text=text, ref=cmd.ref), (session.peer,))]
