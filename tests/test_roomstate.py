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
    for bad in (
        "{",
        "[]",
        '{"modes": "nt"}',
        roomstate.dump(room, str).replace('"limit":0', '"limit":"x"'),
    ):
        with pytest.raises(ValueError, match="room snapshot"):
            roomstate.load(room, bad, ())
