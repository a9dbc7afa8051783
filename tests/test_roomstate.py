"""A room's settings as the nodes of a cluster share them: written whole, read back whole, and
never handing a status to someone who is not in the room now."""

from __future__ import annotations

import pytest

from anychat import model as m
from anychat import roomstate
from anychat.sessions import Room


def test_settings_come_back_as_they_were_with_statuses_only_for_members() -> None:
    room: Room[str] = Room(name="#Lab", topic="hi", topic_setter="ada", topic_time=5.0)
    chan = room.channel
    chan.created, chan.key, chan.limit = 1.5, "sesame", 10
    chan.modes = {"i", "m", "t"}
    chan.bans = [m.Ban(mask="eve!*@*", setter="ada", time=2.0)]
    chan.invited = {"bob"}
    chan.ops, chan.voiced = {"peer-ada"}, {"peer-cy"}
    chan.remote_ops, chan.remote_voiced = {"dan"}, {"eve"}
    nicks = {"peer-ada": "Ada", "peer-cy": "cy"}
    state = roomstate.dump(room, nicks.__getitem__)

    opened: Room[str] = Room(name="#Lab")
    # ada and dan are members (on other nodes now); eve left since the snapshot was written.
    assert roomstate.load(opened, state, {"ada", "dan", "cy"})
    got = opened.channel
    assert (got.created, got.key, got.limit, got.modes) == (1.5, "sesame", 10, {"i", "m", "t"})
    assert got.bans == chan.bans and got.invited == {"bob"}
    assert (got.remote_ops, got.remote_voiced) == ({"ada", "dan"}, {"cy"})
    assert not got.ops and not got.voiced  # nobody of this node has a status from it
    assert (opened.topic, opened.topic_setter, opened.topic_time) == ("hi", "ada", 5.0)


def test_a_room_with_every_flag_unset_stays_so() -> None:
    room: Room[str] = Room(name="#a")
    room.channel.modes = set()
    opened: Room[str] = Room(name="#a")
    assert roomstate.load(opened, roomstate.dump(room, str), ())
    assert opened.channel.modes == set()


def test_no_snapshot_keeps_the_defaults_and_a_broken_one_is_refused() -> None:
    room: Room[str] = Room(name="#a")
    assert not roomstate.load(room, None, ()) and not roomstate.load(room, "", ())
    assert room.channel.modes == {"n", "t"}
    huge = roomstate.dump(room, str).replace('"limit":0', '"limit":1e999')
    endless = roomstate.dump(room, str).replace('"created":0.0', '"created":1e999')
    for bad in (huge, endless):
        with pytest.raises(ValueError, match="room snapshot"):
            roomstate.load(room, bad, ())
    for bad in (
        "{",
        "[]",
        '{"modes": "nt"}',
        roomstate.dump(room, str).replace('"limit":0', '"limit":"x"'),
    ):
        with pytest.raises(ValueError, match="room snapshot"):
            roomstate.load(room, bad, ())


def test_a_rooms_identity_begins_its_copy_and_no_copy_of_a_room_made_later() -> None:
    room: Room[str] = Room(name="#a")
    room.channel.created = 1.5
    later: Room[str] = Room(name="#a")
    later.channel.created = 1.55
    assert roomstate.dump(room, str).startswith(roomstate.identity(room))
    assert not roomstate.dump(later, str).startswith(roomstate.identity(room))


def test_adopting_the_clusters_copy_says_what_changed_here() -> None:
    cluster: Room[str] = Room(name="#x")
    cluster.channel.modes = {"i", "n", "t"}
    cluster.channel.key = "k"
    cluster.channel.remote_ops = {"ada", "cy"}
    state = roomstate.dump(cluster, str)
    cluster.channel.remote_voiced = {"dee"}
    state = roomstate.dump(cluster, str)
    here: Room[str] = Room(name="#x")  # opened here while cut off: bob and cy made operators
    here.members = dict.fromkeys(("p-bob", "p-cy", "p-dee"))  # type: ignore[assignment]
    here.channel.ops = {"p-bob", "p-cy"}
    here.channel.voiced = {"p-bob"}
    here.channel.limit = 5
    nicks = {"p-bob": "Bob", "p-cy": "cy", "p-dee": "Dee"}
    changes = roomstate.adopt(here, state, {"ada"}, nicks.__getitem__)
    assert changes == [
        m.ModeChange(mode="i"),
        m.ModeChange(mode="k", arg="k"),
        m.ModeChange(mode="l", on=False),
        m.ModeChange(mode="o", on=False, arg="Bob"),
        m.ModeChange(mode="v", on=False, arg="Bob"),
        m.ModeChange(mode="v", arg="Dee"),  # given while this node was cut off
    ]
    assert here.channel.ops == {"p-cy"} and here.channel.voiced == {"p-dee"}
    assert here.channel.remote_ops == {"ada"}
    assert roomstate.adopt(here, "", {"ada"}, nicks.__getitem__) == []
