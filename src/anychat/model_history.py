"""The history part of the vocabulary: asking for stored messages, and for conversations.

Re-exported by :mod:`anychat.model` (use it from there); kept in its own module so each stays
small. The answer to :class:`History`, :class:`~anychat.model.HistoryPage`, lives in
:mod:`anychat.model` beside the :class:`~anychat.model.Message` it carries.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import TypeAlias

__all__ = ["Conversation", "ConversationList", "Conversations", "History"]

Ref: TypeAlias = str | int | None


@dataclass(frozen=True, slots=True, kw_only=True)
class History:
    """Ask for stored messages of a room, or of a private conversation with a nick.

    ``target`` ``None`` = the current room; your own nick = all your private messages. Without
    ``after`` the page is the newest ``limit`` messages older than ``before`` (if given); with
    ``after`` it is the oldest ``limit`` messages newer than it. Pages are in id order.
    ``before_time``/``after_time`` bound the page by message time (seconds since the epoch,
    both exclusive) the same way, alone or with the ids.
    """

    target: str | None = None
    before: int | None = None
    after: int | None = None
    limit: int = 50
    ref: Ref = None
    before_time: float | None = None
    after_time: float | None = None


@dataclass(frozen=True, slots=True, kw_only=True)
class Conversations:
    """Ask which conversations had messages between two moments (IRC ``CHATHISTORY TARGETS``).

    The conversations are the rooms you are in and, once logged in, the nicks you exchanged
    private messages with: the same ones whose history you may read. ``start`` and ``end`` are
    seconds since the epoch, both exclusive, and counted from ``start`` towards ``end``: with
    ``start`` the earlier, the ``limit`` conversations whose last message in between is the
    oldest; with ``start`` the later, the ``limit`` whose last message is the newest (what a
    client reconnecting asks: ``start`` now, ``end`` when it left). Answered by
    :class:`ConversationList`.
    """

    start: float
    end: float
    limit: int = 50
    ref: Ref = None


@dataclass(frozen=True, slots=True, kw_only=True)
class Conversation:
    """One conversation and its last message between the two moments asked about."""

    #: A room's name, or the nick at the other end of a private conversation.
    target: str
    #: The time and id of that conversation's last message (by id) in between.
    time: float
    id: int


@dataclass(frozen=True, slots=True, kw_only=True)
class ConversationList:
    """Reply to :class:`Conversations`: in order of their last message's time, oldest first."""

    conversations: tuple[Conversation, ...] = ()
    ref: Ref = None
