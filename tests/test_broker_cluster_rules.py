"""What a node accepts of other nodes' room changes: only what an operator of the room, as
this node knows the room, could have made (pure: the broker with a bus that fakes a second
node; the cluster tests run the real thing)."""

from __future__ import annotations

from anychat import model as m
from anychat import roomstate
from anychat.broker import Broker, Deliver
from anychat.bus.directory import Present
from anychat.effects import BusGrant, ListenRoom, WarmRooms
from anychat.sessions import Room

from .test_bus_seam import TwoNodeView, _hello

OTHER = "node-2"


def _room_with_remote_members() -> Broker[str]:
    """ada (here) made #club, +i; bob and mallory (on the other node) are in it, bob an op."""
    broker: Broker[str] = Broker(bus=TwoNodeView(()))
    _hello(broker, "p-ada", "ada")
    broker.handle("p-ada", m.Join(room="#club"))
    broker.handle("p-ada", m.Mode(room="#club", changes=(m.ModeChange(mode="i"),)))
    for nick in ("bob", "mallory"):
        broker.remote(OTHER, Present(nick=nick))
        broker.remote(OTHER, m.Joined(room="#club", nick=nick))
    broker.handle("p-ada", m.Mode(room="#club", changes=(m.ModeChange(mode="o", arg="bob"),)))
    return broker


def _modes(broker: Broker[str]) -> str:
    (answer,) = broker.handle("p-ada", m.Mode(room="#club"))
    assert isinstance(answer, Deliver) and isinstance(answer.event, m.RoomModes)
    return answer.event.modes


def test_mode_changes_count_only_from_an_operator_of_the_room() -> None:
    broker = _room_with_remote_members()
    moderated = (m.ModeChange(mode="m"),)
    assert broker.remote(OTHER, m.ModeChanged(room="#club", by="mallory", changes=moderated)) == []
    assert _modes(broker) == "+int"
    (told,) = broker.remote(OTHER, m.ModeChanged(room="#club", by="bob", changes=moderated))
    assert isinstance(told, Deliver) and set(told.to) == {"p-ada"}
    assert _modes(broker) == "+imnt"


def test_an_invite_or_a_kick_counts_only_from_whom_the_room_allows() -> None:
    broker = _room_with_remote_members()
    _hello(broker, "p-eve", "eve")
    broker.remote(OTHER, m.Invited(room="#club", nick="eve", by="mallory"))  # no operator
    broker.remote(OTHER, m.Invited(room="#club", nick="eve", by="zed"))  # not even a member
    (refusal,) = broker.handle("p-eve", m.Join(room="#club"))
    assert isinstance(refusal, Deliver) and isinstance(refusal.event, m.Error)
    assert refusal.event.code is m.ErrorCode.INVITE_ONLY
    broker.remote(OTHER, m.Invited(room="#club", nick="eve", by="bob"))
    joined = broker.handle("p-eve", m.Join(room="#club"))
    assert any(isinstance(e, Deliver) and isinstance(e.event, m.Members) for e in joined)
    # mallory cannot kick eve; bob can.
    assert broker.remote(OTHER, m.Kicked(room="#club", nick="eve", by="mallory")) == []
    kicked = broker.remote(OTHER, m.Kicked(room="#club", nick="eve", by="bob"))
    assert {p for e in kicked if isinstance(e, Deliver) for p in e.to} == {"p-ada", "p-eve"}
    (refusal,) = broker.handle("p-eve", m.Say(target="#club", text="back?"))
    assert isinstance(refusal, Deliver) and isinstance(refusal.event, m.Error)


class ReadingView(TwoNodeView):
    """As TwoNodeView, with the settings reads of a node that listens to a room (``reads``:
    what each read of Redis finds, in turn; the broker asks for a read with ``ListenRoom``)."""

    def __init__(self, reads: list[str]) -> None:
        super().__init__(())
        self.reads = reads
        self.read: dict[str, str] = {}

    def must_listen(self, room: str) -> bool:
        return room not in self.read

    def take_room_state(self, room: str) -> str | None:
        return self.read.pop(room, None) or None


def _join_reading(broker: Broker[str], bus: ReadingView, peer: str, room: str) -> list[object]:
    """Run a join through its slow steps (each listen reads the next of ``bus.reads``, the
    store has no history); what the last step gave."""
    effects: list[object] = list(broker.handle(peer, m.Join(room=room)))
    while len(effects) == 1:
        (request,) = effects
        if isinstance(request, ListenRoom):
            bus.read[request.room] = bus.reads.pop(0)
            effects = list(broker.resume(request, BusGrant()))
        elif isinstance(request, WarmRooms):
            effects = list(broker.resume(request, {}))
        else:
            break
    return effects


def _settings(modes: str) -> str:
    room: Room[str] = Room(name="#club")
    room.channel.created = 1.0
    room.channel.modes = set(modes)
    return roomstate.dump(room, str)


def test_settings_read_before_their_creator_wrote_them_are_read_again() -> None:
    """The read found nothing, and the other node's member became known only after it: the
    settings were not written yet when read. Read once more, then join by them."""
    bus = ReadingView(["", _settings("int")])
    broker: Broker[str] = Broker(bus=bus)
    _hello(broker, "p-ada", "ada")
    broker.remote(OTHER, Present(nick="bob"))
    broker.remote(OTHER, m.Joined(room="#club", nick="bob"))
    (refusal,) = _join_reading(broker, bus, "p-ada", "#club")
    assert bus.reads == []  # both reads taken
    assert isinstance(refusal, Deliver) and isinstance(refusal.event, m.Error)
    assert refusal.event.code is m.ErrorCode.INVITE_ONLY  # the second read's rules


def test_settings_missing_on_a_second_read_refuse_the_join() -> None:
    bus = ReadingView(["", "", _settings("nt")])
    broker: Broker[str] = Broker(bus=bus)
    _hello(broker, "p-ada", "ada")
    broker.remote(OTHER, Present(nick="bob"))
    broker.remote(OTHER, m.Joined(room="#club", nick="bob"))
    (refusal,) = _join_reading(broker, bus, "p-ada", "#club")
    assert isinstance(refusal, Deliver) and isinstance(refusal.event, m.Error)
    assert refusal.event.code is m.ErrorCode.CLUSTER_UNAVAILABLE
    # The next join reads afresh (twice again if need be): this time the settings are there.
    joined = _join_reading(broker, bus, "p-ada", "#club")
    assert any(isinstance(e, Deliver) and isinstance(e.event, m.Members) for e in joined)
