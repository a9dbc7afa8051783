"""The room-operator part of the vocabulary: modes, kicks, invites, server counts.

Re-exported by :mod:`anychat.model` (use it from there); kept in its own module so each stays
small. docs/protocol.md "Room operators and modes" describes what each mode means.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Final, TypeAlias

__all__ = [
    "FLAG_MODES",
    "LIST_MODES",
    "MAX_BANS",
    "ROOM_MODES",
    "SETTING_MODES",
    "STATUS_MODES",
    "STATUS_PREFIXES",
    "Ban",
    "BanList",
    "Invite",
    "Invited",
    "Kick",
    "Kicked",
    "Mode",
    "ModeChange",
    "ModeChanged",
    "RoomModes",
    "ServerStats",
    "Stats",
]

Ref: TypeAlias = str | int | None

#: Room modes, one letter each as IRC spells them (docs/protocol.md "Room modes"): who may
#: speak (``m`` moderated, ``n`` no messages from outside), who may set the topic (``t``), who
#: sees the room (``s`` secret), who may join (``i`` invite only, ``k`` key, ``l`` limit, ``b``
#: bans), and member status (``o`` operator, ``v`` voice).
FLAG_MODES: Final = "imnst"
#: Modes that take an argument when set (``k`` also when unset, as IRC does).
SETTING_MODES: Final = "kl"
#: Modes that are lists of masks (``+b mask`` adds, ``-b mask`` removes, ``+b`` alone lists).
LIST_MODES: Final = "b"
#: Member status: ``+o nick`` / ``+v nick``.
STATUS_MODES: Final = "ov"
ROOM_MODES: Final = FLAG_MODES + SETTING_MODES + LIST_MODES + STATUS_MODES
#: Status letters as shown before a nick (IRC ``PREFIX=(ov)@+``), highest first.
STATUS_PREFIXES: Final = {"o": "@", "v": "+"}
#: Bans a room keeps at most (IRC ``MAXLIST=b:50``).
MAX_BANS: Final = 50


@dataclass(frozen=True, slots=True, kw_only=True)
class ModeChange:
    """One mode letter set (``on``) or unset, with its argument (a nick, key, limit or mask)."""

    mode: str
    on: bool = True
    arg: str = ""


@dataclass(frozen=True, slots=True, kw_only=True)
class Mode:
    """Change a room's modes (operators only), or ask for them (``changes`` empty).

    ``ModeChange(mode="b")`` with no argument asks for the ban list.
    """

    room: str
    changes: tuple[ModeChange, ...] = ()
    ref: Ref = None


@dataclass(frozen=True, slots=True, kw_only=True)
class Kick:
    """Remove ``nick`` from ``room`` (operators only); ``reason`` defaults to the kicker's nick."""

    room: str
    nick: str
    reason: str = ""
    ref: Ref = None


@dataclass(frozen=True, slots=True, kw_only=True)
class Invite:
    """Invite ``nick`` to ``room``: lets it past +i (and bans) once."""

    nick: str
    room: str
    ref: Ref = None


@dataclass(frozen=True, slots=True, kw_only=True)
class Stats:
    """Ask how many users and rooms the server has (IRC ``LUSERS``)."""

    ref: Ref = None


@dataclass(frozen=True, slots=True, kw_only=True)
class ServerStats:
    """Reply to :class:`Stats`: registered users, connections not registered yet, rooms."""

    users: int
    unregistered: int = 0
    rooms: int = 0
    #: The most users seen at once since the server started.
    max_users: int = 0
    ref: Ref = None


@dataclass(frozen=True, slots=True, kw_only=True)
class RoomModes:
    """A room's modes (answer to an empty :class:`Mode`): flags as ``"+nt"``, then arguments."""

    room: str
    modes: str
    args: tuple[str, ...] = ()
    #: When the room was created (seconds since the epoch).
    created: float = 0.0
    ref: Ref = None


@dataclass(frozen=True, slots=True, kw_only=True)
class ModeChanged:
    """Modes of ``room`` changed by ``by``; sent to every member, the setter included."""

    room: str
    by: str
    changes: tuple[ModeChange, ...]
    ref: Ref = None
    user: str = field(default="", compare=False)


@dataclass(frozen=True, slots=True, kw_only=True)
class Ban:
    mask: str
    setter: str = ""
    time: float = 0.0


@dataclass(frozen=True, slots=True, kw_only=True)
class BanList:
    room: str
    bans: tuple[Ban, ...] = ()
    ref: Ref = None


@dataclass(frozen=True, slots=True, kw_only=True)
class Kicked:
    """``nick`` was removed from ``room`` by ``by``; sent to every member, the kicked included."""

    room: str
    nick: str
    by: str
    reason: str = ""
    ref: Ref = None
    user: str = field(default="", compare=False)


@dataclass(frozen=True, slots=True, kw_only=True)
class Invited:
    """``by`` invited ``nick`` to ``room``: sent to the invited, and (with ref) to the inviter."""

    room: str
    nick: str
    by: str
    ref: Ref = None
    user: str = field(default="", compare=False)
    #: Told to the room's members rather than to ``nick`` (IRC ``invite-notify``).
    notice: bool = field(default=False, compare=False)
