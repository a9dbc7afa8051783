"""Broker rules behind IRC's TOPIC, AWAY, WHOIS and QUIT (pure: plain calls, no I/O)."""

from __future__ import annotations

import dataclasses

from anychat import model as m
from anychat.broker import Broker, Deliver, Disconnect, Effect


def make() -> Broker[str]:
    broker: Broker[str] = Broker(default_rooms=(), clock=lambda: 100.0)
    for peer in ("ada", "bob", "cy"):
        broker.connect(peer)
        broker.handle(peer, m.Hello(nick=peer))
    broker.handle("ada", m.Join(room="#a"))
    broker.handle("bob", m.Join(room="#a"))
    return broker


def deliveries(effects: list[Effect[str]]) -> list[tuple[m.Event, set[str]]]:
    out = []
    for effect in effects:
        assert isinstance(effect, Deliver)
        out.append((effect.event, {p for p in effect.to if p != effect.skip}))
    return out


def test_members_set_the_topic_and_everyone_in_the_room_hears() -> None:
    broker = make()
    effects = deliveries(broker.handle("ada", m.Topic(room="#a", text="plans", ref=1)))
    topic = m.RoomTopic(room="#a", text="plans", setter="ada", time=100.0)
    assert effects == [(topic, {"bob"}), (dataclasses.replace(topic, ref=1), {"ada"})]
    assert deliveries(broker.handle("cy", m.Topic(room="#A", ref=2))) == [
        (m.RoomTopic(room="#a", text="plans", setter="ada", time=100.0, ref=2), {"cy"})
    ]
    (listed,) = deliveries(broker.handle("cy", m.ListRooms()))
    assert isinstance(listed[0], m.RoomList)
    assert listed[0].rooms == (m.RoomInfo(name="#a", members=2, topic="plans"),)


def test_joining_a_room_with_a_topic_tells_it_before_the_members() -> None:
    broker = make()
    broker.handle("ada", m.Topic(room="#a", text="plans"))
    events = [
        event
        for event, to in deliveries(broker.handle("cy", m.Join(room="#a", ref=3)))
        if to == {"cy"}
    ]
    assert [type(e) for e in events] == [m.Joined, m.RoomTopic, m.Members]
    assert all(getattr(e, "ref", None) == 3 for e in events)


def test_topic_refusals() -> None:
    broker = make()
    cases = [
        (m.Topic(room="#nope"), m.ErrorCode.NO_SUCH_ROOM),
        (m.Topic(room="#a", text="x"), m.ErrorCode.NOT_MEMBER),
    ]
    for command, code in cases:
        ((event, _),) = deliveries(broker.handle("cy", command))
        assert isinstance(event, m.Error)
        assert event.code is code
    for text in ("x" * (m.MAX_TOPIC_LENGTH + 1), "two\r\nlines"):
        ((event, _),) = deliveries(broker.handle("ada", m.Topic(room="#a", text=text)))
        assert isinstance(event, m.Error)
        assert event.code is m.ErrorCode.BAD_COMMAND


def test_away_shows_in_whois() -> None:
    broker = make()
    assert deliveries(broker.handle("bob", m.Away(text="lunch", ref=4))) == [
        (m.AwayStatus(text="lunch", ref=4), {"bob"}),
        (m.AwayChanged(nick="bob", text="lunch"), {"ada"}),  # who shares a room hears it
    ]
    assert deliveries(broker.handle("cy", m.Whois(nick="BOB", ref=5))) == [
        (m.UserInfo(nick="bob", rooms=("#a",), away="lunch", since=100.0, ref=5), {"cy"})
    ]
    broker.handle("bob", m.Away())
    ((info, _),) = deliveries(broker.handle("cy", m.Whois(nick="bob")))
    assert isinstance(info, m.UserInfo)
    assert info.away == ""
    ((error, _),) = deliveries(broker.handle("cy", m.Whois(nick="nobody")))
    assert isinstance(error, m.Error)
    assert error.code is m.ErrorCode.NO_SUCH_NICK


def test_quit_reason_is_the_goodbye_everyone_hears() -> None:
    broker = make()
    (effect,) = broker.handle("ada", m.Quit(reason="off to lunch"))
    assert isinstance(effect, Disconnect)
    assert effect.bye.reason == "off to lunch"
    (plain,) = broker.handle("cy", m.Quit())
    assert isinstance(plain, Disconnect)
    assert plain.bye.reason == "goodbye"


def test_whois_idle_time_counts_from_the_last_message() -> None:
    now = [100.0]
    broker: Broker[str] = Broker(default_rooms=(), clock=lambda: now[0])
    for peer in ("ada", "bob"):
        broker.connect(peer)
        broker.handle(peer, m.Hello(nick=peer))
    broker.handle("bob", m.Join(room="#a"))

    def idle() -> float:
        ((info, _),) = deliveries(broker.handle("ada", m.Whois(nick="bob")))
        assert isinstance(info, m.UserInfo)
        return info.idle

    now[0] = 160.0
    assert idle() == 60.0  # silent since registering
    broker.handle("bob", m.Say(target="#a", text="hi"))
    now[0] = 400.0
    assert idle() == 240.0
    broker.handle("bob", m.Say(target="ada", text="psst"))
    assert idle() == 0.0


def test_whois_idle_reaches_irc_and_json_clients() -> None:
    from anychat.codecs.jsonl import JsonClientCodec, JsonServerCodec

    info = m.UserInfo(nick="bob", since=100.0, idle=75.5)
    (decoded,) = JsonClientCodec().feed(JsonServerCodec().encode(info))
    assert decoded == info
