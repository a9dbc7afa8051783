"""Member lists are kept between asks (``Room.listing``): they must always say what a list
built afresh from the room would say, and a join storm must build each entry once.

The broker tests drive random mixes of everything that changes a listed member (joins, parts,
kicks, quits, nick, away, real name and account changes, operator and voice changes) and
compare every room's list, as ``who`` and a join give it, with one built from the room's
members; the server tests check the same over real sockets, in JSON lines and IRC.
"""

from __future__ import annotations

import random

import anyio
import pytest

import anychat
from anychat import model as m
from anychat.broker import Broker, Room

from .helpers import LineClient
from .test_broker import Peer, inbox, register

pytestmark = pytest.mark.timeout(60)

ROOMS = ("#general", "#a", "#b")


def _fresh(broker: Broker[Peer], room: Room[Peer]) -> tuple[m.Member, ...]:
    """The list as the room's members are now: the oracle the kept list is held to."""
    return tuple(
        m.Member(
            nick=s.nick,
            status=room.channel.status(peer),
            user=s.user,
            realname=s.realname,
            account=s.account,
            away=s.away,
        )
        for peer, s in room.members.items()
    )


def _check(broker: Broker[Peer]) -> None:
    for room in broker.rooms():
        someone = next(iter(room.members))
        got = inbox(broker.handle(someone, m.Who(room=room.name, ref=7)))[someone.name]
        assert len(got) == 1 and isinstance(got[0], m.Members)
        members = got[0]
        expected = _fresh(broker, room)
        assert members.ref == 7
        assert members.room == room.name
        assert members.details == expected
        assert members.nicks == tuple(d.nick for d in expected)


def _step(broker: Broker[Peer], rng: random.Random, peers: list[Peer], serial: list[int]) -> None:
    """One random change to the chat (some are refused: that must change nothing listed)."""
    serial[0] += 1
    n = serial[0]
    if not peers or rng.random() < 0.12:
        peer = Peer(f"p{n}")
        broker.connect(peer)
        nick = None if rng.random() < 0.5 else f"n{n}"
        broker.handle(peer, m.Hello(nick=nick, autojoin=rng.random() < 0.8))
        peers.append(peer)
        return
    peer = rng.choice(peers)
    session = broker.session(peer)
    other = broker.session(rng.choice(peers))
    room = rng.choice(ROOMS)
    match rng.randrange(12):
        case 0 | 1:
            broker.handle(peer, m.Join(room=room))
        case 2:
            broker.handle(peer, m.Part(room=room))
        case 3:
            broker.handle(peer, m.Nick(nick=f"r{n}"))
        case 4:
            broker.handle(peer, m.Away(text=rng.choice(["", f"away {n}"])))
        case 5:
            broker.handle(peer, m.SetRealname(realname=f"Real {n}"))
        case 6 | 7:
            change = m.ModeChange(mode=rng.choice("ov"), on=rng.random() < 0.6, arg=other.nick)
            broker.handle(peer, m.Mode(room=room, changes=(change,)))
        case 8:
            broker.handle(peer, m.Kick(room=room, nick=other.nick))
        case 9:
            broker.disconnect(peer, "bye")
            peers.remove(peer)
        case 10:
            broker.log_in(peer, session.nick)  # as a password check leaves it
        case _:
            if session.account:
                broker.account_deleted(session.account)


@pytest.mark.parametrize("seed", range(8))
def test_kept_lists_match_lists_built_afresh(seed: int) -> None:
    rng = random.Random(seed)
    broker: Broker[Peer] = Broker(clock=lambda: 1000.0, quiet_room_size=rng.choice([0, 4]))
    peers: list[Peer] = []
    serial = [0]
    for _ in range(400):
        _step(broker, rng, peers, serial)
        _check(broker)


def test_the_join_reply_is_the_whole_list_with_its_ref() -> None:
    broker: Broker[Peer] = Broker(clock=lambda: 1000.0)
    ada = register(broker, "ada")
    bob = register(broker, "bob", autojoin=False)
    got = inbox(broker.handle(bob, m.Join(room="#general", ref=3)))["bob"]
    members = next(e for e in got if isinstance(e, m.Members))
    assert members == m.Members(room="#general", nicks=("ada", "bob"), ref=3)
    assert [d.status for d in members.details] == ["", ""]
    broker.handle(ada, m.Nick(nick="ada2"))
    broker.handle(bob, m.Join(room="#other"))  # bob creates #other: its operator
    got = inbox(broker.handle(ada, m.Join(room="#other", ref=4)))["ada"]
    members = next(e for e in got if isinstance(e, m.Members))
    assert members.nicks == ("bob", "ada2") and members.ref == 4
    assert [d.status for d in members.details] == ["o", ""]


def test_a_storm_of_joins_builds_each_entry_once() -> None:
    """Every newcomer gets the whole list; the entries of it are built once, not per join
    (``listing_entries`` counts every member entry the broker makes)."""
    storm = 300
    broker: Broker[Peer] = Broker(clock=lambda: 1000.0, quiet_room_size=50)
    peers = []
    for n in range(storm):
        peer = Peer(f"g{n}")
        broker.connect(peer)
        got = inbox(broker.handle(peer, m.Hello(nick=None)))[peer.name]
        members = next(e for e in got if isinstance(e, m.Members))
        assert len(members.nicks) == n + 1  # the whole list, every time
        peers.append(peer)
    assert broker.listing_entries == storm  # built afresh: storm * (storm + 1) / 2
    # Asking again builds nothing; a change makes the next ask build the list once more.
    broker.handle(peers[0], m.Who(room="#general"))
    assert broker.listing_entries == storm
    broker.handle(peers[1], m.Nick(nick="renamed"))
    broker.handle(peers[0], m.Who(room="#general"))
    broker.handle(peers[2], m.Who(room="#general"))
    assert broker.listing_entries == 2 * storm
    # Leaving drops the list; the next newcomer's join builds it and adds nothing else.
    broker.disconnect(peers[3], "bye")
    late = Peer("late")
    broker.connect(late)
    broker.handle(late, m.Hello(nick="late"))
    assert broker.listing_entries == 3 * storm


async def test_lists_over_sockets_follow_nicks_parts_quits_and_status() -> None:
    async with (
        anychat.serve(port=0, quiet_room_size=3) as server,
        anychat.connect(*server.address, nick="ada", autojoin=False) as ada,
        anychat.connect(*server.address, nick="bob", autojoin=False) as bob,
        anychat.connect(*server.address, nick="cy", autojoin=False) as cy,
    ):
        assert await ada.join("#room") == ("ada",)  # ada creates it: its operator
        assert await bob.join("#room") == ("ada", "bob")
        assert await cy.join("#room") == ("ada", "bob", "cy")
        await bob.set_nick("bobby")
        await ada.set_modes("#room", m.ModeChange(mode="v", arg="cy"))
        async with await LineClient.open(server.port) as dee:
            await dee.send_json(type="hello", nick="dee", autojoin=False)
            await dee.json_event("welcome")
            await dee.send_json(type="join", room="#room", ref=5)
            members = await dee.json_event("members")
            assert members["nicks"] == ["ada", "bobby", "cy", "dee"]
            assert members["status"] == {"ada": "o", "cy": "v"}
            assert members["ref"] == 5
        await cy.part("#room")
        assert await bob.who("#room") == ("ada", "bobby")  # dee quit, cy left
        async with await LineClient.open(server.port) as eve:
            await eve.send(b"NICK eve\r\nUSER eve 0 * :Eve\r\n")
            await eve.line_containing(b" 001 ")
            await eve.send(b"JOIN #room\r\n")
            names = await eve.line_containing(b" 353 ")
            assert names.split(b" :", 1)[1].split() == [b"@ada", b"bobby", b"eve"]
            await eve.line_containing(b" 366 ")
        with anyio.fail_after(5):
            assert await ada.who("#room") == ("ada", "bobby")
