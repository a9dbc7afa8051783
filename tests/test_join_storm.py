"""A join storm costs each member a bounded number of lines: guests joining a large room come
and go unannounced (``quiet_room_size``), and everything else about them works as before."""

from __future__ import annotations

import json

import anyio
import pytest

import anychat
from anychat import model as m
from anychat.broker import Broker

from .helpers import LineClient
from .test_broker import Peer, inbox, register

pytestmark = pytest.mark.timeout(60)


@pytest.fixture
def broker() -> Broker[Peer]:
    return Broker(clock=lambda: 1000.0, quiet_room_size=3)


def _presence(events: list[m.Event]) -> list[m.Event]:
    return [e for e in events if isinstance(e, m.Joined | m.Parted | m.Quitted | m.NickChanged)]


def test_guests_joining_a_large_room_are_not_announced(broker: Broker[Peer]) -> None:
    first = [register(broker, f"g{n}") for n in range(3)]  # announced: the room was small
    late = Peer("late")
    broker.connect(late)
    effects = broker.handle(late, m.Hello(nick="late"))
    got = inbox(effects)
    assert all(peer.name not in got for peer in first)
    # The newcomer itself is told it joined and who is there, as always.
    assert m.Joined(room="#general", nick="late") in got["late"]
    members = next(e for e in got["late"] if isinstance(e, m.Members))
    assert members.nicks == ("g0", "g1", "g2", "late")
    # What it says is heard; who lists it.
    said = inbox(broker.handle(late, m.Say(target="#general", text="hi", ref=1)))
    assert all(isinstance(said[p.name][0], m.Message) for p in first)
    who = inbox(broker.handle(first[0], m.Who(room="#general")))["g0"][0]
    assert isinstance(who, m.Members) and "late" in who.nicks
    # Its nick change, part and quit are as quiet as its join.
    assert _presence(inbox(broker.handle(late, m.Nick(nick="later"))).get("g0", [])) == []
    assert "g0" not in inbox(broker.handle(late, m.Part(room="#general")))
    broker.handle(late, m.Join(room="#general"))
    assert "g0" not in inbox(broker.disconnect(late, "bye"))


def test_members_who_were_announced_stay_announced(broker: Broker[Peer]) -> None:
    first = [register(broker, f"g{n}") for n in range(3)]
    register(broker, "late")  # the room is large now
    # g0 joined while the room was small: everyone saw it come, so everyone sees it go.
    got = inbox(broker.disconnect(first[0], "bye"))
    assert _presence(got["late"]) == [m.Quitted(nick="g0", reason="bye")]
    assert _presence(got["g1"]) == [m.Quitted(nick="g0", reason="bye")]


def test_accounts_are_always_announced(broker: Broker[Peer]) -> None:
    first = [register(broker, f"g{n}") for n in range(3)]
    ada = register(broker, "ada", autojoin=False)
    broker.session(ada).account = "ada"  # as a login leaves it
    got = inbox(broker.handle(ada, m.Join(room="#general")))
    for peer in first:
        assert _presence(got[peer.name]) == [m.Joined(room="#general", nick="ada", account="ada")]


def test_zero_announces_everyone() -> None:
    broker: Broker[Peer] = Broker(clock=lambda: 1000.0, quiet_room_size=0)
    first = [register(broker, f"g{n}") for n in range(5)]
    late = Peer("late")
    broker.connect(late)
    got = inbox(broker.handle(late, m.Hello(nick="late")))
    assert all(_presence(got[p.name]) for p in first)


async def test_a_storm_of_nc_guests_costs_a_member_a_bounded_number_of_lines() -> None:
    storm = 30
    async with (
        anychat.serve(port=0, quiet_room_size=5, sniff_seconds=5) as server,
        anychat.connect(*server.address, nick="ada") as ada,
    ):
        guests = []
        for _ in range(storm):
            guest = await LineClient.open(server.port)
            await guest.send(b"/ping\r\n")
            await guest.line_containing(b"pong")
            guests.append(guest)
        await guests[-1].send(b"the last guest speaks\r\n")
        joined = 0
        with anyio.fail_after(10):
            while True:
                event = await anext(ada)
                if isinstance(event, m.Joined) and event.nick != "ada":
                    joined += 1
                elif isinstance(event, m.Message):
                    assert event.text == "the last guest speaks"
                    break
        assert joined == 4  # until the room (ada and four guests) reached five
        assert len(await ada.who("#general")) == storm + 1
        for guest in guests:
            await guest.aclose()
        # A JSON guest joining now is quiet too, and still gets the member list.
        async with await LineClient.open(server.port) as late:
            await late.send_json(type="hello", nick="late")
            lines = [json.loads(await late.line()) for _ in range(3)]
            assert [line["type"] for line in lines] == ["welcome", "joined", "members"]
