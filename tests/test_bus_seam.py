"""The bus seam: what the broker shares goes through it, and the local bus keeps one node whole."""

from __future__ import annotations

from collections.abc import Iterable

from anychat import model as m
from anychat.broker import Broker, Deliver, Persist
from anychat.bus.directory import BusEvent
from anychat.bus.local import LocalBus
from anychat.effects import Publish


class TwoNodeView(LocalBus):
    """A bus that knows of a second node holding some nicks and listening to every room."""

    shared = True

    def __init__(self, held_elsewhere: Iterable[str]) -> None:
        super().__init__(first_message_id=100)
        self.held = set(held_elsewhere)
        self.published: list[tuple[str, BusEvent]] = []
        self.released: list[str] = []

    def claim_nick(self, nick: str) -> bool:
        return nick not in self.held

    def release_nick(self, nick: str) -> None:
        self.released.append(nick)

    def publish(self, room: str, event: BusEvent) -> None:
        self.published.append((room, event))


def _hello(broker: Broker[str], peer: str, nick: str) -> list[object]:
    broker.connect(peer)
    return list(broker.handle(peer, m.Hello(nick=nick)))


def test_a_nick_held_on_another_node_is_in_use() -> None:
    broker: Broker[str] = Broker(bus=TwoNodeView({"ada"}))
    (refusal,) = _hello(broker, "p1", "Ada")
    assert isinstance(refusal, Deliver) and isinstance(refusal.event, m.Error)
    assert refusal.event.code is m.ErrorCode.NICK_IN_USE


def test_ids_come_from_the_bus_and_room_messages_are_published() -> None:
    bus = TwoNodeView(())
    broker: Broker[str] = Broker(bus=bus)
    _hello(broker, "p1", "bob")
    effects = broker.handle("p1", m.Say(target="#general", text="hi"))
    persist = next(e for e in effects if isinstance(e, Persist))
    assert persist.message.id == 100 and bus.next_id == 101
    publish = next(e for e in effects if isinstance(e, Publish))
    assert publish.room == "#general" and publish.event == persist.message
    broker.disconnect("p1")
    assert bus.released == ["bob"] and "#general" not in bus.rooms


def test_the_local_bus_publishes_nothing_and_shares_registered_nicks() -> None:
    broker: Broker[str] = Broker(registered=["Carol"])
    _hello(broker, "p1", "bob")
    effects = broker.handle("p1", m.Say(target="#general", text="hi"))
    assert not any(isinstance(e, Publish) for e in effects)
    assert broker.bus.is_registered("carol") and broker.is_registered("CAROL")
    broker.remove_registered("carol")
    assert not broker.is_registered("carol")
