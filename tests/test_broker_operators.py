"""Room operators, modes, kicks and invites in the broker (pure: plain calls, no I/O)."""

from __future__ import annotations

import pytest

from anychat import model as m
from anychat.broker import Broker, Deliver, Effect, Persist
from anychat.rooms import normalize_mask


def make(*nicks: str) -> Broker[str]:
    broker: Broker[str] = Broker(default_rooms=(), clock=lambda: 100.0)
    for peer in nicks or ("ada", "bob", "cy"):
        broker.connect(peer)
        broker.handle(peer, m.Hello(nick=peer, user=f"u{peer}", realname=f"{peer.title()} R."))
    return broker


def events(effects: list[Effect[str]], peer: str) -> list[m.Event]:
    """What ``peer`` receives from ``effects``, in order."""
    out: list[m.Event] = []
    for effect in effects:
        if isinstance(effect, Deliver) and peer in effect.to and peer != effect.skip:
            out.append(effect.event)
        elif isinstance(effect, Persist) and effect.peer == peer:
            out.append(effect.ack)
    return out


def codes(effects: list[Effect[str]], peer: str) -> list[m.ErrorCode]:
    return [e.code for e in events(effects, peer) if isinstance(e, m.Error)]


def mode(broker: Broker[str], peer: str, room: str, *changes: str) -> list[Effect[str]]:
    """``mode(b, "ada", "#a", "+o bob", "-t")``: one ModeChange per word group."""
    parsed = []
    for change in changes:
        letter_part, _, arg = change.partition(" ")
        parsed.append(m.ModeChange(mode=letter_part[1], on=letter_part[0] == "+", arg=arg))
    return broker.handle(peer, m.Mode(room=room, changes=tuple(parsed), ref=9))


def with_room(*members: str) -> Broker[str]:
    broker = make()
    for nick in members:
        broker.handle(nick, m.Join(room="#a"))
    return broker


def test_the_creator_is_operator_and_members_see_status_and_identity() -> None:
    broker = with_room("ada", "bob")
    (members,) = events(broker.handle("cy", m.Who(room="#a")), "cy")
    assert isinstance(members, m.Members)
    assert [(d.nick, d.status, d.user, d.realname) for d in members.details] == [
        ("ada", "o", "uada", "Ada R."),
        ("bob", "", "ubob", "Bob R."),
    ]
    (info,) = events(broker.handle("cy", m.Whois(nick="ada")), "cy")
    assert isinstance(info, m.UserInfo)
    assert (info.rooms, info.statuses, info.user) == (("#a",), ("o",), "uada")


def test_operator_status_is_lost_on_leaving_and_nobody_inherits_it() -> None:
    broker = with_room("ada", "bob")
    broker.handle("ada", m.Part(room="#a"))
    assert codes(broker.handle("bob", m.Topic(room="#a", text="x")), "bob") == [
        m.ErrorCode.NOT_OPERATOR
    ]
    broker.handle("ada", m.Join(room="#a"))
    assert codes(mode(broker, "ada", "#a", "+o ada"), "ada") == [m.ErrorCode.NOT_OPERATOR]


def test_mode_query_shows_the_key_to_members_only() -> None:
    broker = with_room("ada")
    mode(broker, "ada", "#a", "+k sesame", "+l 5")
    (mine,) = events(broker.handle("ada", m.Mode(room="#a")), "ada")
    (theirs,) = events(broker.handle("bob", m.Mode(room="#a")), "bob")
    assert isinstance(mine, m.RoomModes)
    assert isinstance(theirs, m.RoomModes)
    assert (mine.modes, mine.args, mine.created) == ("+klnt", ("sesame", "5"), 100.0)
    assert theirs.args == ("*", "5")


def test_mode_changes_reach_every_member_once_with_what_was_applied() -> None:
    broker = with_room("ada", "bob", "cy")
    effects = mode(broker, "ada", "#a", "+o bob", "+v cy", "+m", "+t", "-n")
    (for_bob,) = events(effects, "bob")
    (for_ada,) = events(effects, "ada")
    assert isinstance(for_bob, m.ModeChanged)
    assert for_bob.changes == (
        m.ModeChange(mode="o", arg="bob"),
        m.ModeChange(mode="v", arg="cy"),
        m.ModeChange(mode="m"),
        m.ModeChange(mode="n", on=False),
    )  # +t was already set: nothing to announce for it
    assert isinstance(for_ada, m.ModeChanged)
    assert for_ada.ref == 9


def test_refusals_come_once_and_nothing_else_is_sent() -> None:
    broker = with_room("ada", "bob")
    cases = [
        (mode(broker, "bob", "#a", "+o bob", "+m"), "bob", [m.ErrorCode.NOT_OPERATOR]),
        (mode(broker, "cy", "#a", "+m"), "cy", [m.ErrorCode.NOT_MEMBER]),
        (mode(broker, "ada", "#nope", "+m"), "ada", [m.ErrorCode.NO_SUCH_ROOM]),
        (mode(broker, "ada", "#a", "+o zed"), "ada", [m.ErrorCode.NO_SUCH_NICK]),
        (mode(broker, "ada", "#a", "+o cy"), "ada", [m.ErrorCode.TARGET_NOT_MEMBER]),
        (mode(broker, "ada", "#a", "+x"), "ada", [m.ErrorCode.UNKNOWN_MODE]),
        (mode(broker, "ada", "#a", "+l many"), "ada", [m.ErrorCode.BAD_COMMAND]),
        (mode(broker, "ada", "#a", "+k two words"), "ada", [m.ErrorCode.BAD_COMMAND]),
    ]
    for effects, peer, expected in cases:
        assert codes(effects, peer) == expected
        assert len(events(effects, peer)) == 1
        assert not any(isinstance(e, m.ModeChanged) for e in events(effects, "bob"))
    error = events(mode(broker, "ada", "#a", "+v cy"), "ada")[0]
    assert isinstance(error, m.Error)
    assert error.subject == "cy"


def test_topic_lock_and_outside_messages() -> None:
    broker = with_room("ada", "bob")
    assert codes(broker.handle("bob", m.Topic(room="#a", text="x")), "bob") == [
        m.ErrorCode.NOT_OPERATOR
    ]
    assert codes(broker.handle("cy", m.Say(target="#a", text="hi")), "cy") == [
        m.ErrorCode.NOT_MEMBER
    ]
    mode(broker, "ada", "#a", "-t", "-n")
    assert codes(broker.handle("bob", m.Topic(room="#a", text="x")), "bob") == []
    effects = broker.handle("cy", m.Say(target="#a", text="from outside"))
    assert [type(e) for e in events(effects, "bob")] == [m.Message]
    assert [type(e) for e in events(effects, "cy")] == [m.Ack]


def test_moderated_rooms_let_operators_and_voiced_members_speak() -> None:
    broker = with_room("ada", "bob", "cy")
    mode(broker, "ada", "#a", "+m", "+v bob")
    assert codes(broker.handle("cy", m.Say(target="#a", text="hi")), "cy") == [
        m.ErrorCode.CANNOT_SEND
    ]
    for speaker in ("ada", "bob"):
        assert codes(broker.handle(speaker, m.Say(target="#a", text="hi")), speaker) == []


def test_invite_only_key_and_limit_guard_joins() -> None:
    broker = with_room("ada")
    mode(broker, "ada", "#a", "+i")
    assert codes(broker.handle("bob", m.Join(room="#a")), "bob") == [m.ErrorCode.INVITE_ONLY]
    invited = broker.handle("ada", m.Invite(nick="bob", room="#a", ref=4))
    assert events(invited, "bob") == [m.Invited(room="#a", nick="bob", by="ada")]
    assert events(invited, "ada") == [m.Invited(room="#a", nick="bob", by="ada", ref=4)]
    assert codes(broker.handle("bob", m.Join(room="#a")), "bob") == []
    broker.handle("bob", m.Part(room="#a"))
    assert codes(broker.handle("bob", m.Join(room="#a")), "bob") == [m.ErrorCode.INVITE_ONLY]
    mode(broker, "ada", "#a", "-i", "+k sesame", "+l 2")
    assert codes(broker.handle("bob", m.Join(room="#a")), "bob") == [m.ErrorCode.BAD_KEY]
    assert codes(broker.handle("bob", m.Join(room="#a", key="sesame")), "bob") == []
    assert codes(broker.handle("cy", m.Join(room="#a", key="sesame")), "cy") == [
        m.ErrorCode.ROOM_FULL
    ]


def test_bans_keep_matching_nicks_out_and_quiet() -> None:
    broker = with_room("ada", "bob")
    mode(broker, "ada", "#a", "+b cy", "+b *!*ubob@*")
    assert codes(broker.handle("cy", m.Join(room="#a")), "cy") == [m.ErrorCode.BANNED]
    assert codes(broker.handle("bob", m.Say(target="#a", text="hi")), "bob") == [
        m.ErrorCode.CANNOT_SEND
    ]
    (bans,) = events(mode(broker, "bob", "#a", "+b"), "bob")  # anyone may list them
    assert isinstance(bans, m.BanList)
    assert [(b.mask, b.setter) for b in bans.bans] == [("cy!*@*", "ada"), ("*!*ubob@*", "ada")]
    broker.handle("ada", m.Invite(nick="cy", room="#a"))
    assert codes(broker.handle("cy", m.Join(room="#a")), "cy") == []  # an invite beats a ban
    mode(broker, "ada", "#a", "-b CY")
    (bans,) = events(mode(broker, "ada", "#a", "+b"), "ada")
    assert isinstance(bans, m.BanList)
    assert [b.mask for b in bans.bans] == ["*!*ubob@*"]


@pytest.mark.parametrize(
    ("mask", "normal"),
    [("bob", "bob!*@*"), ("*@host", "*!*@host"), ("u@h", "*!u@h"), ("n!u", "n!u@*")],
)
def test_ban_masks_are_completed_as_servers_do(mask: str, normal: str) -> None:
    assert normalize_mask(mask) == normal


def test_secret_rooms_are_hidden_from_non_members() -> None:
    broker = with_room("ada")
    mode(broker, "ada", "#a", "+s")
    (listed,) = events(broker.handle("bob", m.ListRooms()), "bob")
    assert isinstance(listed, m.RoomList)
    assert listed.rooms == ()
    assert codes(broker.handle("bob", m.Who(room="#a")), "bob") == [m.ErrorCode.NO_SUCH_ROOM]
    (info,) = events(broker.handle("bob", m.Whois(nick="ada")), "bob")
    assert isinstance(info, m.UserInfo)
    assert info.rooms == ()
    (listed,) = events(broker.handle("ada", m.ListRooms()), "ada")
    assert isinstance(listed, m.RoomList)
    assert [r.name for r in listed.rooms] == ["#a"]


def test_kick_tells_everyone_and_removes_the_member() -> None:
    broker = with_room("ada", "bob", "cy")
    effects = broker.handle("ada", m.Kick(room="#a", nick="bob", ref=3))
    kicked = m.Kicked(room="#a", nick="bob", by="ada", reason="ada")
    assert events(effects, "bob") == [kicked]
    assert events(effects, "cy") == [kicked]
    assert events(effects, "ada") == [
        m.Kicked(room="#a", nick="bob", by="ada", reason="ada", ref=3)
    ]
    room = broker.find_room("#a")
    assert room is not None
    assert [s.nick for s in room.members.values()] == ["ada", "cy"]
    assert codes(broker.handle("cy", m.Kick(room="#a", nick="ada")), "cy") == [
        m.ErrorCode.NOT_OPERATOR
    ]
    assert codes(broker.handle("ada", m.Kick(room="#a", nick="bob")), "ada") == [
        m.ErrorCode.TARGET_NOT_MEMBER
    ]
    assert codes(broker.handle("ada", m.Kick(room="#a", nick="zed")), "ada") == [
        m.ErrorCode.NO_SUCH_NICK
    ]
    assert codes(broker.handle("bob", m.Kick(room="#a", nick="cy")), "bob") == [
        m.ErrorCode.NOT_MEMBER
    ]


def test_invite_refusals() -> None:
    broker = with_room("ada", "bob")
    assert codes(broker.handle("ada", m.Invite(nick="bob", room="#a")), "ada") == [
        m.ErrorCode.ALREADY_MEMBER
    ]
    assert codes(broker.handle("cy", m.Invite(nick="ada", room="#a")), "cy") == [
        m.ErrorCode.NOT_MEMBER
    ]
    assert codes(broker.handle("ada", m.Invite(nick="zed", room="#a")), "ada") == [
        m.ErrorCode.NO_SUCH_NICK
    ]
    mode(broker, "ada", "#a", "+i")
    assert codes(broker.handle("bob", m.Invite(nick="cy", room="#a")), "bob") == [
        m.ErrorCode.NOT_OPERATOR
    ]


def test_stats_count_users_rooms_and_connections_still_registering() -> None:
    broker = with_room("ada")
    broker.connect("newcomer")
    (stats,) = events(broker.handle("ada", m.Stats(ref=1)), "ada")
    assert stats == m.ServerStats(users=3, unregistered=1, rooms=1, max_users=3, ref=1)
    broker.disconnect("bob")
    (stats,) = events(broker.handle("ada", m.Stats()), "ada")
    assert isinstance(stats, m.ServerStats)
    assert (stats.users, stats.max_users) == (2, 3)


def test_usernames_are_one_safe_word_and_realnames_lose_controls() -> None:
    broker: Broker[str] = Broker(default_rooms=())
    broker.connect("p")
    broker.handle("p", m.Hello(nick="ada", user="a!b@c d\u202e" * 3, realname="A\x1b[2J\u202eda"))
    session = broker.session("p")
    assert (session.user, session.realname) == ("abcdabcdab", "A[2Jda")
    broker.connect("q")
    broker.handle("q", m.Hello(nick="bob", user="@@@"))
    assert broker.session("q").user == "bob"


def test_hostile_mode_arguments_are_refused_without_echoing_them() -> None:
    broker = with_room("ada")
    effects = broker.handle(
        "ada",
        m.Mode(
            room="#a",
            changes=(
                m.ModeChange(mode="o", arg="x\r\nQUIT"),
                m.ModeChange(mode="b", arg="a b"),
                m.ModeChange(mode="k", arg="x" * 100),
                m.ModeChange(mode="l", arg="99999999999999"),
            ),
        ),
    )
    answers = events(effects, "ada")
    assert [e.code for e in answers if isinstance(e, m.Error)] == [
        m.ErrorCode.NO_SUCH_NICK,
        m.ErrorCode.BAD_COMMAND,
        m.ErrorCode.BAD_COMMAND,
        m.ErrorCode.BAD_COMMAND,
    ]
    assert all("\r" not in e.text and "\n" not in e.text for e in answers if isinstance(e, m.Error))
    many = tuple(m.ModeChange(mode="b", arg=f"n{i}") for i in range(m.MAX_BANS + 5))
    broker.handle("ada", m.Mode(room="#a", changes=many))
    room = broker.find_room("#a")
    assert room is not None
    assert len(room.channel.bans) == m.MAX_BANS
