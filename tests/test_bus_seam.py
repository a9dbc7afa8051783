"""The bus seam: what the broker shares goes through it, and the local bus keeps one node whole."""

from __future__ import annotations

from collections.abc import Iterable

from anychat import model as m
from anychat.broker import Broker, Deliver, Persist
from anychat.bus.directory import BusEvent, Present, TakeOver
from anychat.bus.local import LocalBus
from anychat.effects import Broadcast, ClaimNick, Disconnect, Publish


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


def test_room_messages_are_numbered_by_the_bus_then_delivered_here() -> None:
    bus = TwoNodeView(())
    broker: Broker[str] = Broker(bus=bus)
    _hello(broker, "p1", "bob")
    _hello(broker, "p2", "cy")
    (sent,) = broker.handle("p1", m.Say(target="#general", text="hi", key="k1", ref=3))
    # Nothing is delivered, stored or numbered yet: the bus numbers and publishes in one step.
    assert isinstance(sent, Broadcast) and sent.room == "#general" and sent.peer == "p1"
    assert (sent.message.id, sent.message.text, sent.message.sender) == (0, "hi", "bob")
    deliver, persist = broker.numbered(sent, 100)
    assert isinstance(deliver, Deliver) and isinstance(persist, Persist)
    assert deliver.event == persist.message and persist.message.id == 100
    assert set(deliver.to) - {deliver.skip} == {"p2"}
    assert persist.ack == m.Ack(id=100, time=sent.message.time, target="#general", ref=3)
    assert persist.message.key == "k1"  # stored with its key
    # A resend of that key is answered with the original ack: nothing new is broadcast.
    (resend,) = broker.handle("p1", m.Say(target="#general", text="hi", key="k1", ref=4))
    assert isinstance(resend, Persist) and resend.resent and resend.ack.id == 100
    # What the bus cannot number is refused to its sender alone.
    (again,) = broker.handle("p1", m.Say(target="#general", text="again", ref=5))
    assert isinstance(again, Broadcast)
    why = m.Error(code=m.ErrorCode.CLUSTER_UNAVAILABLE, text="degraded")
    (refusal,) = broker.not_numbered(again, why)
    assert isinstance(refusal, Deliver) and refusal.to == ("p1",)
    assert refusal.event == m.Error(code=m.ErrorCode.CLUSTER_UNAVAILABLE, text="degraded", ref=5)
    broker.disconnect("p1")
    assert bus.released == ["bob"]


def test_private_messages_are_numbered_by_the_bus_as_room_messages_are() -> None:
    bus = TwoNodeView(())
    bus.set_registered(["carol"])
    broker: Broker[str] = Broker(bus=bus)
    _hello(broker, "p1", "bob")
    _hello(broker, "p2", "cy")
    bus.directory.apply(
        "n2", Present(nick="Zed", user="zed", realname="", account="", since=0.0, rooms=())
    )
    # To another node: published to that node, done here (stored, acked) once numbered.
    (sent,) = broker.handle("p1", m.Say(target="ZED", text="psst", ref=1))
    assert isinstance(sent, Broadcast) and (sent.room, sent.node) == ("", "n2")
    assert (sent.message.id, sent.message.target) == (0, "Zed")
    (persist,) = broker.numbered(sent, 200)
    assert isinstance(persist, Persist) and persist.message.id == 200
    assert persist.ack == m.Ack(id=200, time=sent.message.time, target="Zed", ref=1)
    # To a session here: through this node's own channel, delivered when it comes back.
    (sent,) = broker.handle("p1", m.Say(target="cy", text="hi cy"))
    assert isinstance(sent, Broadcast) and (sent.room, sent.node) == ("", "")
    deliver, persist = broker.numbered(sent, 201)
    assert isinstance(deliver, Deliver) and isinstance(persist, Persist)
    assert deliver.to == ("p2",) and deliver.event == persist.message and persist.message.id == 201
    # To an account that is offline: stored for it, nobody to deliver to.
    (sent,) = broker.handle("p1", m.Say(target="carol", text="later"))
    assert isinstance(sent, Broadcast) and sent.node == ""
    (persist,) = broker.numbered(sent, 202)
    assert isinstance(persist, Persist) and persist.message.target == "carol"
    # Nobody by that name anywhere: refused at once, nothing numbered.
    (refusal,) = broker.handle("p1", m.Say(target="nobody", text="?"))
    assert isinstance(refusal, Deliver) and isinstance(refusal.event, m.Error)
    assert refusal.event.code is m.ErrorCode.NO_SUCH_NICK
    assert bus.published == [] and bus.next_id == 100  # the bus numbered all of them
    broker.disconnect("p1")
    assert bus.released == ["bob"]


def test_the_local_bus_publishes_nothing_and_shares_registered_nicks() -> None:
    broker: Broker[str] = Broker(registered=["Carol"])
    _hello(broker, "p1", "bob")
    effects = broker.handle("p1", m.Say(target="#general", text="hi"))
    assert not any(isinstance(e, Publish) for e in effects)
    assert broker.bus.is_registered("carol") and broker.is_registered("CAROL")
    broker.remove_registered("carol")
    assert not broker.is_registered("carol")


def test_a_login_takes_over_its_accounts_nick_from_another_node_and_only_that() -> None:
    bus = TwoNodeView(())
    bus.set_registered(["zoe"])
    bus.directory.apply(
        "n2", Present(nick="Zoe", user="zoe", realname="", account="zoe", since=0.0, rooms=())
    )
    broker: Broker[str] = Broker(bus=bus)
    (refusal,) = _hello(broker, "guest", "zoe")  # not logged in: refused, nothing asked
    assert isinstance(refusal, Deliver) and isinstance(refusal.event, m.Error)
    assert refusal.event.code is m.ErrorCode.NICK_REGISTERED
    broker.connect("p1")
    broker.log_in("p1", "zoe")
    (ask,) = broker.handle("p1", m.Hello(nick="zoe"))
    assert isinstance(ask, ClaimNick) and (ask.nick, ask.take_from) == ("zoe", "n2")
    # The node holding a nick closes its session only for a take-over by the same account.
    _hello(broker, "p2", "ada")
    assert broker.remote("n2", TakeOver(nick="ADA", account="ada")) == []  # a guest's: no
    broker.log_in("p2", "ada")
    effects = broker.remote("n2", TakeOver(nick="ADA", account="ada"))
    (gone,) = [e for e in effects if isinstance(e, Disconnect)]
    assert gone.peer == "p2" and gone.bye.code is m.ErrorCode.LOGGED_IN_ELSEWHERE
