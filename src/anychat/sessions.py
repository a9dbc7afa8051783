"""The broker's records of who is connected and which rooms exist (plain data, no rules)."""

from __future__ import annotations

from dataclasses import dataclass, field
from enum import Enum
from typing import TYPE_CHECKING, Final, Generic, TypeVar

from .rooms import Channel

if TYPE_CHECKING:
    from .model import LoggedIn, Members

__all__ = ["NO_WATCHES", "Room", "Session", "SessionState"]

P = TypeVar("P")

#: What a session watches before its first ``MONITOR +``: one shared empty dict (never
#: written: the first watch gives the session its own), as few clients watch anyone and an
#: empty dict is 64 bytes per idle connection.
NO_WATCHES: Final[dict[str, str]] = {}


class SessionState(Enum):
    #: Connected, no nick yet: only hello, ping and quit are allowed.
    NEW = "new"
    #: Registered with a nick: may chat.
    ACTIVE = "active"
    #: Left; no longer in any room or nick table.
    GONE = "gone"


@dataclass(eq=False, slots=True)
class Session(Generic[P]):
    """The broker's view of one connected client."""

    peer: P
    address: str = ""
    nick: str = ""
    state: SessionState = SessionState.NEW
    #: Rooms joined, keyed by folded name, in join order.
    rooms: dict[str, Room[P]] = field(default_factory=dict)
    #: Where a bare line of text goes (the room joined last), for clients without targets.
    current: Room[P] | None = None
    #: Away message ("" = present) and registration time, for whois-style questions.
    away: str = ""
    since: float = 0.0
    #: When it last said something (0 = not yet), for the idle time whois reports.
    spoke: float = 0.0
    #: Folded nick of the account this session logged in to ("" = a guest).
    account: str = ""
    #: Username shown in hostmasks (IRC ``USER``, else the nick at hello) and real name.
    user: str = ""
    realname: str = ""
    #: Nicks it watches (IRC ``MONITOR``): folded -> as given (:data:`NO_WATCHES` until the
    #: first).
    watching: dict[str, str] = field(default_factory=lambda: NO_WATCHES)
    #: What a hello with a password earns once its nick is claimed cluster-wide (sent then;
    #: not at all if the claim fails, as when a hello is refused).
    logged_in: LoggedIn | None = None

    def relist(self) -> None:
        """Its nick, identity, away message or account changed: every room it is in must
        build its member list afresh (see :attr:`Room.listing`)."""
        for room in self.rooms.values():
            room.listing = None


@dataclass(eq=False, slots=True)
class Room(Generic[P]):
    name: str
    #: Members keyed by peer, in join order: fan-out iterates this mapping as it is.
    members: dict[P, Session[P]] = field(default_factory=dict)
    topic: str = ""
    topic_setter: str = ""
    topic_time: float = 0.0
    #: Operators, voices and modes (see :mod:`anychat.rooms`).
    channel: Channel[P] = field(default_factory=Channel)
    #: Members whose joining was not announced (guests joining a large room): their parts,
    #: quits and nick changes are not announced to it either.
    quiet: set[P] = field(default_factory=set)
    #: The member list as a join and ``who`` show it (without a ``ref``), kept between asks:
    #: built from ``members`` when first asked for, extended by each join, and dropped
    #: (``None``) by anything that changes a listed member (a part or quit, a nick, away,
    #: real name or account change, an operator or voice change). So a storm of N joins into
    #: one room builds N entries in all, not N²/2 (each newcomer gets the whole list).
    listing: Members | None = None
