"""The bus: what one node shares with the others, behind one interface.

One node needs no bus at all, so the default, :class:`~anychat.bus.local.LocalBus`, is a few
counters and sets in memory that the broker consults synchronously, and the local path pays a
method call for it, nothing more. A second node needs the same facts shared: who owns which
nick, which nicks belong to accounts, which nodes have members in a room, the next message id,
and the events to fan out to other nodes' members. A networked bus (Redis, a later module)
implements the same interface over a local cache it keeps current, and asks for the round trips
it cannot answer from that cache (a nick claim racing another node) through request effects,
the way logins already wait for a password check.

The broker calls the bus; the hub carries out :class:`~anychat.effects.Publish` effects, which
only a shared bus (``shared`` true) ever makes the broker emit.
"""

from __future__ import annotations

from collections.abc import Iterable
from typing import TYPE_CHECKING, Protocol

from .. import model as m

if TYPE_CHECKING:
    from .directory import BusEvent, Directory

__all__ = ["Bus", "unavailable"]


def unavailable(what: str) -> m.Error:
    """The refusal of what needs the other nodes while they are out of reach."""
    return m.Error(
        code=m.ErrorCode.CLUSTER_UNAVAILABLE,
        text=f"the chat is degraded (its other nodes are out of reach): cannot {what} "
        "right now; try again shortly",
    )


class Bus(Protocol):
    """Nick claims, registered nicks, room membership, message ids, cross-node fan-out."""

    @property
    def shared(self) -> bool:
        """True when other nodes exist: the broker then publishes room events to them."""
        ...

    @property
    def reachable(self) -> bool:
        """Whether what is published now reaches the other nodes (a shared bus can be cut
        off from them for a while; one node's always is)."""
        ...

    # ---------------------------------------------------------------- message ids

    @property
    def next_id(self) -> int:
        """The id the next message will get: every lower one is taken."""
        ...

    def allocate_id(self) -> int:
        """A fresh message id, larger than every id allocated before it in this chat (a single
        node's; a cluster's messages are numbered by the bus as it publishes them)."""
        ...

    # ---------------------------------------------------------------- nicks

    def claim_nick(self, nick: str) -> bool:
        """Take ``nick`` (folded) for a session of this node; False if another node holds it."""
        ...

    def must_ask(self, nick: str) -> bool:
        """Whether claiming ``nick`` (folded) needs a round trip (a ``ClaimNick`` request)."""
        ...

    def release_nick(self, nick: str) -> None: ...

    def is_registered(self, nick: str) -> bool:
        """Whether ``nick`` (folded) belongs to an account: only its owner may use it."""
        ...

    def set_registered(self, nicks: Iterable[str], registered: bool = True) -> None: ...

    # ---------------------------------------------------------------- rooms

    def room_opened(self, room: str) -> None:
        """This node has members in ``room`` (folded) now: send us its events."""
        ...

    def must_listen(self, room: str) -> bool:
        """Whether the first member of ``room`` (folded) here must wait for a ``ListenRoom``
        request (the subscription to the other nodes' events of it, and the room's settings
        read from the cluster) before joining."""
        ...

    def room_closed(self, room: str) -> None:
        """This node's last member of ``room`` left."""
        ...

    def save_room(self, room: str, state: str, *, only_if_missing: bool = False) -> None:
        """Keep ``state`` (:func:`anychat.roomstate.dump`) as the settings of ``room``
        (folded) for the nodes that open it later (``only_if_missing``: unless some are)."""
        ...

    def drop_room(self, room: str, identity: str) -> None:
        """``room`` (folded) is empty everywhere: forget its settings, if they are still
        those of the room ``identity`` (:func:`anychat.roomstate.identity`) names."""
        ...

    def take_connect_states(self) -> dict[str, str]:
        """The settings Redis had (``""``: none) for each room open here when this node
        (re)connected, read then; once."""
        ...

    def take_room_state(self, room: str) -> str | None:
        """The settings of ``room`` (folded) read when this node began to listen to it, once
        (``None``: none were read)."""
        ...

    def publish(self, room: str, event: BusEvent) -> None:
        """Hand ``event`` to the other nodes with members in ``room`` (encoded there)."""
        ...

    # ---------------------------------------------------------------- other nodes

    @property
    def directory(self) -> Directory:
        """The users of the other nodes (empty for a single node)."""
        ...
