"""What the broker asks the glue to do: deliver, store, disconnect, and slow work to fetch.

The broker never awaits. Everything it decides comes back as one of these small frozen values;
the hub carries them out. Most effects are immediate (:class:`Deliver`, :class:`Persist`,
:class:`Disconnect`). The rest are *requests*: work that must wait for a password hash, a token
check or the store. The hub hands a request to the services, which do the slow part without
knowing anything about connections or chat rules, and gives the outcome back to
:meth:`Broker.resume`, which decides what follows (a welcome, an error, a history page).

A request carries everything the service needs, so a service is a plain function of its
request and the store; and its ``then`` is the command to continue with once it is done.
"""

from __future__ import annotations

from collections.abc import Collection
from dataclasses import dataclass
from typing import Generic, TypeAlias, TypeVar

from . import model as m
from .bus.directory import BusEvent
from .quickinit import quick_init

__all__ = [
    "Authenticate",
    "Broadcast",
    "BusGrant",
    "ClaimNick",
    "CreateAccount",
    "Deliver",
    "Disconnect",
    "Effect",
    "ListenRoom",
    "LoginGrant",
    "Outcome",
    "Persist",
    "Publish",
    "ReadConversations",
    "ReadHistory",
    "Request",
    "WarmRooms",
]

P = TypeVar("P")


@quick_init
@dataclass(frozen=True, slots=True)
class Deliver(Generic[P]):
    """Send ``event`` to every peer in ``to`` except ``skip``.

    ``to`` may be a live view of a room's members: apply effects before calling the broker again.
    """

    event: m.Event
    to: Collection[P]
    skip: P | None = None


@dataclass(frozen=True, slots=True)
class Disconnect(Generic[P]):
    """Send ``bye`` to ``peer`` as its last event, then close it."""

    peer: P
    bye: m.Bye


@quick_init
@dataclass(frozen=True, slots=True)
class Persist(Generic[P]):
    """Store ``message``, then send ``ack`` to ``peer`` (an ack promises the message is stored).

    The message itself was already delivered live; only the sender's ack waits for the disk.
    """

    message: m.Message
    peer: P
    ack: m.Ack
    #: A resend of a message said before (same idempotency key): nothing is written; the ack
    #: (the original's id) waits for the original to be stored, and fails if that failed.
    resent: bool = False


@dataclass(frozen=True, slots=True)
class Publish:
    """Hand ``event`` to the other nodes (a shared bus only).

    ``room`` (folded) names the room whose nodes hear it (a message, a topic); ``""`` is about
    a user (registered, joined, parted, renamed, quit) and reaches every node, or for a private
    message, the node of its recipient.
    """

    room: str
    event: BusEvent


@quick_init
@dataclass(frozen=True, slots=True)
class Broadcast(Generic[P]):
    """Number a message cluster-wide and publish it to the other nodes, in one step.

    The bus takes the id and publishes in one atomic call, so ids increase in the order every
    node hears its messages. A room message goes to the nodes hearing ``room``; a private
    message (``room`` empty) to the node of its recipient, ``node`` (empty: this node, whose
    own channel it then comes back on, for a recipient here or an account that is offline).
    ``message`` has id 0 until then; once the number is back (in that same order),
    :meth:`~anychat.broker_cluster.ClusterRules.numbered` makes its local effects: the delivery
    to this node's members (or recipient), storing it, the sender's ack.
    Nothing awaits it: the sender's next commands go on meanwhile.
    """

    room: str
    message: m.Message
    peer: P
    then: m.Say
    node: str = ""


# ------------------------------------------------------------------------------ requests


@dataclass(frozen=True, slots=True)
class Authenticate(Generic[P]):
    """Check a password (for ``nick``) or a login token; then continue with ``then``."""

    peer: P
    nick: str | None
    password: str | None
    token: str | None
    ref: m.Ref
    #: The hello to finish once logged in, or ``None`` for a login of a chatting session.
    then: m.Hello | None = None
    #: The peer's address, for the guessing throttle.
    address: str = ""


@dataclass(frozen=True, slots=True)
class CreateAccount(Generic[P]):
    """Register ``nick`` with ``password``; private history counts from ``since_id``."""

    peer: P
    nick: str
    password: str
    since_id: int
    ref: m.Ref
    address: str = ""


@dataclass(frozen=True, slots=True)
class ReadHistory(Generic[P]):
    """A page of stored messages of ``target``; private ones only for ``viewer``."""

    peer: P
    target: str
    #: Set for private history: whose conversation it is (the broker checked the login).
    viewer: str | None
    before: int | None
    after: int | None
    limit: int
    #: Every id up to here was assigned when asked: wait until the store has them.
    settled_upto: int
    ref: m.Ref
    #: Bounds by message time (see :class:`~anychat.model.History`).
    before_time: float | None = None
    after_time: float | None = None


@dataclass(frozen=True, slots=True)
class ReadConversations(Generic[P]):
    """Which of ``rooms`` and of ``viewer``'s private conversations had messages between
    ``start`` and ``end`` (see :class:`~anychat.model.Conversations`)."""

    peer: P
    #: The rooms the peer is in (the broker's names for them).
    rooms: tuple[str, ...]
    #: Set when the peer is logged in: whose private conversations count.
    viewer: str | None
    start: float
    end: float
    limit: int
    settled_upto: int
    ref: m.Ref


@dataclass(frozen=True, slots=True)
class WarmRooms(Generic[P]):
    """Load the recent messages of ``rooms`` into memory (for replays), then run ``then``.

    ``below`` is the first id not yet assigned when the broker started remembering new
    messages of these rooms itself: the store supplies everything under it. In a cluster it is
    0: the store supplies the newest it has, and what was also heard live counts once.
    """

    peer: P
    rooms: tuple[str, ...]
    below: int
    then: m.Command


@dataclass(frozen=True, slots=True)
class ClaimNick(Generic[P]):
    """Take the folded ``nick`` cluster-wide (other nodes may race for it), then run ``then``.

    ``take_from`` names the node where a session logged in to the same account holds it: that
    node is asked to close it (as a second login on one node does) and the nick taken once it
    is free.
    """

    peer: P
    nick: str
    then: m.Command
    take_from: str = ""


@dataclass(frozen=True, slots=True)
class ListenRoom(Generic[P]):
    """Hear the other nodes' events of ``room`` (folded) before the first member here joins
    it, so that member misses nothing said after the join; then run ``then``."""

    peer: P
    room: str
    then: m.Join


@dataclass(frozen=True, slots=True)
class BusGrant:
    """The bus said yes: the nick is this node's (or the room is heard)."""


@dataclass(frozen=True, slots=True)
class LoginGrant:
    """A successful login: the account's nick and a token for next time."""

    nick: str
    token: str
    expires: float


Request: TypeAlias = (
    "Authenticate[P] | CreateAccount[P] | ReadHistory[P] | ReadConversations[P] | WarmRooms[P]"
    " | ClaimNick[P] | ListenRoom[P]"
)
Effect: TypeAlias = "Deliver[P] | Disconnect[P] | Persist[P] | Publish | Broadcast[P] | Request[P]"
#: What a service answers: a grant, a page, conversations, the rooms' messages, or why it failed.
Outcome: TypeAlias = (
    "LoginGrant | m.HistoryPage | m.ConversationList | dict[str, list[m.Message]] | BusGrant"
    " | m.Error"
)
