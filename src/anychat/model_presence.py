"""The presence part of the vocabulary: who someone is, and who is away, logged in, online.

Re-exported by :mod:`anychat.model` (use it from there); kept in its own module so each stays
small. These events tell the people who share a room with someone that something about them
changed (IRC's ``away-notify``, ``account-notify`` and ``setname``), tell a watcher when a
nick it watches comes and goes (IRC ``MONITOR``), and carry signals that are not chat (IRC
``TAGMSG`` with client-only tags, such as typing notifications).
"""

from __future__ import annotations

import re
from dataclasses import dataclass, field
from typing import Final, TypeAlias

__all__ = [
    "MAX_CLIENT_TAGS",
    "MAX_WATCHED",
    "USERLEN",
    "AccountChanged",
    "AwayChanged",
    "Presence",
    "RealnameChanged",
    "SetRealname",
    "TagMsg",
    "Tagged",
    "Watch",
    "WatchList",
    "clean_username",
]

Ref: TypeAlias = str | int | None

#: Nicks one session may watch at most (IRC ISUPPORT ``MONITOR=100``).
MAX_WATCHED: Final = 100
#: IRCv3 message-tags: the most bytes of client-only tags one message may carry.
MAX_CLIENT_TAGS: Final = 4094

#: Usernames (IRC ``USER``) keep these characters, up to ``USERLEN`` of them, so a hostmask
#: ``nick!~user@host`` is always one word that cannot be mistaken for another's.
USERLEN: Final = 10
_NOT_USERNAME: Final = re.compile(r"[^A-Za-z0-9._\-\[\]\\{}|^`]")


def clean_username(user: str, nick: str) -> str:
    """The username shown for ``user`` (what ``USER`` sent): legal characters only, or the nick."""
    return _NOT_USERNAME.sub("", user)[:USERLEN] or _NOT_USERNAME.sub("", nick)[:USERLEN]


@dataclass(frozen=True, slots=True, kw_only=True)
class SetRealname:
    """Change this session's real name (IRC ``SETNAME``)."""

    realname: str
    ref: Ref = None


@dataclass(frozen=True, slots=True, kw_only=True)
class Watch:
    """Change or read the nicks this session watches (IRC ``MONITOR``).

    ``op`` is ``"+"`` (add ``nicks``, answered with their presence), ``"-"`` (remove them),
    ``"C"`` (clear the list), ``"L"`` (list it) or ``"S"`` (the presence of every watched nick).
    """

    op: str
    nicks: tuple[str, ...] = ()
    ref: Ref = None


@dataclass(frozen=True, slots=True, kw_only=True)
class AwayChanged:
    """``nick`` went away (``text`` is why) or came back (``text`` empty); sent to the people
    who share a room with it (it gets :class:`~anychat.model.AwayStatus` itself), and after a
    join to the room's members when the joiner is away."""

    nick: str
    text: str = ""
    ref: Ref = None
    user: str = field(default="", compare=False)


@dataclass(frozen=True, slots=True, kw_only=True)
class AccountChanged:
    """``nick`` logged in to ``account`` (``""`` = logged out) after it registered."""

    nick: str
    account: str = ""
    ref: Ref = None
    user: str = field(default="", compare=False)


@dataclass(frozen=True, slots=True, kw_only=True)
class RealnameChanged:
    """``nick`` changed its real name; sent to whoever shares a room with it, itself too."""

    nick: str
    realname: str
    ref: Ref = None
    user: str = field(default="", compare=False)


@dataclass(frozen=True, slots=True, kw_only=True)
class Presence:
    """Watched nicks that are online (with their usernames, same order) or offline.

    The answer to a :class:`Watch` ``+``/``S`` (with its ref), and, unasked, the news that a
    watched nick came (registered, or a nick change to it) or went (quit, or changed away).
    """

    online: tuple[str, ...] = ()
    users: tuple[str, ...] = ()
    offline: tuple[str, ...] = ()
    ref: Ref = None
    #: The nicks a :class:`Watch` ``+`` could not add: the list holds ``MAX_WATCHED`` already.
    refused: tuple[str, ...] = ()


@dataclass(frozen=True, slots=True, kw_only=True)
class TagMsg:
    """Send only client-only tags (IRC ``TAGMSG``) to a room or a nick: no text, not stored."""

    target: str
    tags: str
    ref: Ref = None


@dataclass(frozen=True, slots=True, kw_only=True)
class Tagged:
    """A :class:`TagMsg` as relayed (with ``ref``: the echo to its sender)."""

    sender: str
    target: str
    tags: str
    time: float = 0.0
    ref: Ref = None
    user: str = field(default="", compare=False)
    account: str = field(default="", compare=False)


@dataclass(frozen=True, slots=True, kw_only=True)
class WatchList:
    """The answer to :class:`Watch` ``L``: the watched nicks as they were given."""

    nicks: tuple[str, ...] = ()
    ref: Ref = None


#: The commands and events of this module, for the unions in :mod:`anychat.model`.
PresenceCommand: TypeAlias = SetRealname | Watch | TagMsg
PresenceEvent: TypeAlias = (
    AwayChanged | AccountChanged | RealnameChanged | Presence | WatchList | Tagged
)
