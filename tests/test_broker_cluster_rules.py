"""What a node accepts of other nodes' room changes: only what an operator of the room, as
this node knows the room, could have made (pure: the broker with a bus that fakes a second
node; the cluster tests run the real thing)."""

from __future__ import annotations

from anychat import model as m
from anychat.broker import Broker, Deliver
from anychat.bus.directory import Present

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
