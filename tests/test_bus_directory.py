"""The pure parts of the cluster bus: its wire format, the subscriber's reply parser, and the
directory of other nodes' users."""

from __future__ import annotations

import dataclasses
import json

import pytest

from anychat import model as m
from anychat.bus import wire
from anychat.bus.directory import Directory, Present, TakeOver
from anychat.bus.resp import Incomplete, RedisReplyError, encode_command, parse


def test_events_cross_the_wire_intact_without_refs_or_keys() -> None:
    msg = m.Message(id=7, time=1.5, sender="ada", target="#a", text="hé", kind=m.Kind.ACTION,
                    key="k1", user="ada")  # fmt: skip
    node, back = wire.decode(wire.encode("n1", msg))
    assert node == "n1" and back == msg and isinstance(back, m.Message)
    assert back.kind is m.Kind.ACTION and back.key is None and back.user == "ada"
    joined = m.Joined(room="#a", nick="bob", ref=3, user="b", realname="Bob", account="bob")
    _, back_joined = wire.decode(wire.encode("n1", joined))
    assert isinstance(back_joined, m.Joined)
    assert (back_joined.ref, back_joined.realname, back_joined.account) == (None, "Bob", "bob")
    present = Present(nick="cy", rooms=("#a", "#b"))
    assert wire.decode(wire.encode("n2", present)) == ("n2", present)
    take_over = TakeOver(nick="zoe", account="zoe")
    assert wire.decode(wire.encode("n2", take_over)) == ("n2", take_over)


def test_mode_changes_and_invites_cross_the_wire_intact() -> None:
    changes = (m.ModeChange(mode="m"), m.ModeChange(mode="k", on=False, arg="*"),
               m.ModeChange(mode="o", arg="bob"))  # fmt: skip
    changed = m.ModeChanged(room="#a", by="ada", changes=changes, ref=4, user="ada")
    node, back = wire.decode(wire.encode("n1", changed))
    assert node == "n1" and isinstance(back, m.ModeChanged)
    assert (back.room, back.by, back.changes, back.ref, back.user) == (
        "#a", "ada", changes, None, "ada")  # fmt: skip
    invited = m.Invited(room="#a", nick="bob", by="ada", user="ada", notice=True)
    _, back_invited = wire.decode(wire.encode("n1", invited))
    assert back_invited == invited and isinstance(back_invited, m.Invited)
    assert back_invited.notice


@pytest.mark.parametrize(
    "payload",
    [
        b"",
        b"not json",
        b"[]",
        b'{"n": "x"}',
        b'{"n": "x", "t": "Welcome", "f": {}}',  # not a bus event
        b'{"n": 1, "t": "Quitted", "f": {"nick": "a"}}',
        b'{"n": "x", "t": "TakeOver", "f": {"nick": "a"}}',  # no account
        b'{"n": "x", "t": "TakeOver", "f": {"nick": "a", "account": 3}}',
        b'{"n": "x", "t": "Quitted", "f": {"nick": "a", "bogus": 1}}',
        b'{"n": "x", "t": "Message", "f": {"id": 1, "kind": "shouting"}}',
        b'{"n": "x", "t": "Message", "f": {"id": "1", "time": 0, "sender": "a", "target": "#a",'
        b' "text": "t"}}',
        b'{"n": "x", "t": "Quitted", "f": {"nick": ["a"]}}',
        b'{"n": "x", "t": "Present", "f": {"nick": "a", "since": true}}',
        b'{"n": "x", "t": "ModeChanged", "f": {"room": "#a", "by": "a", "changes": "m"}}',
        b'{"n": "x", "t": "ModeChanged", "f": {"room": "#a", "by": "a", "changes": [["m"]]}}',
        b'{"n": "x", "t": "ModeChanged", "f": {"room": "#a", "by": "a",'
        b' "changes": [["m", 1, ""]]}}',
        b'{"n": "x", "t": "ModeChanged", "f": {"room": "#a", "by": "a", "changes": [7]}}',
        b'{"n": "x", "t": "ModeChanged", "f": {"room": "#a", "by": "a",'
        b' "changes": [["kl", true, ""]]}}',
        b'{"n": "x", "t": "ModeChanged", "f": {"room": "#a", "by": "a",'
        b' "changes": [["z", true, ""]]}}',
        b'{"n": "x", "t": "RoomTopic", "f": {"room": "#a", "text": "t", "time": Infinity}}',
        b'{"n": "x", "t": "Present", "f": {"nick": "a", "since": NaN}}',
        b'{"n": "x", "t": "Invited", "f": {"room": "#a", "nick": "b", "by": "a", "notice": 1}}',
    ],
)
def test_malformed_payloads_are_refused(payload: bytes) -> None:
    with pytest.raises(ValueError, match="bus"):
        wire.decode(payload)


def test_a_numbered_message_is_its_id_between_two_halves_and_its_sender_knows_it() -> None:
    msg = m.Message(id=0, time=2.5, sender="ada", target="#a", text='say "x", "f":{"id":9}',
                    key="k", user="ada")  # fmt: skip
    head, tail = wire.encode_numbered("n1", 41, msg)
    payload = head + "1234" + tail  # what the publishing script sends
    node, back = wire.decode(payload)
    assert node == "n1" and back == dataclasses.replace(msg, id=1234, key=None)
    assert wire.numbered_echo(payload, wire.own_prefix("n1")) == (41, 1234)
    # A private message to another node comes back to its sender as the head and id alone.
    assert wire.numbered_echo(head + "1234", wire.own_prefix("n1")) == (41, 1234)
    assert not payload.startswith(wire.own_prefix("n2"))  # another node decodes it in full
    lookalike = wire.own_prefix("n1") + '3,"t":"RoomTopic","f":{}}'
    with pytest.raises(ValueError, match="not a numbered message"):
        wire.numbered_echo(lookalike, wire.own_prefix("n1"))


def test_a_batch_note_names_its_messages_and_is_no_numbered_message() -> None:
    head, tail = wire.encode_batch_note("n1", 41, 3)
    note = head + "1234" + tail  # what the publishing script sends
    assert json.loads(note) == {"n": "n1", "s": 41, "c": 3, "b": 1234}
    assert wire.batch_note(note, wire.own_prefix("n1")) == (41, 3, 1234)
    with pytest.raises(ValueError, match="not a numbered message"):
        wire.numbered_echo(note, wire.own_prefix("n1"))
    msg = m.Message(id=0, time=2.5, sender="ada", target="#a", text="x")
    message_head, message_tail = wire.encode_numbered("n1", 41, msg)
    with pytest.raises(ValueError, match="not a batch note"):
        wire.batch_note(message_head + "7" + message_tail, wire.own_prefix("n1"))


def test_redis_replies_parse_whole_or_not_at_all() -> None:
    message = b"*3\r\n$7\r\nmessage\r\n$4\r\nroom\r\n$5\r\nhe\r\nl\r\n"
    confirm = b"*3\r\n$9\r\nsubscribe\r\n$4\r\nroom\r\n:1\r\n"
    stream = confirm + message + b"+OK\r\n-ERR nope\r\n$-1\r\n"
    values, pos = [], 0
    while pos < len(stream):
        value, pos = parse(stream, pos)
        values.append(value)
    assert values[:3] == [[b"subscribe", b"room", 1], [b"message", b"room", b"he\r\nl"], "OK"]
    assert isinstance(values[3], RedisReplyError) and values[4] is None
    for cut in range(len(message)):  # a reply cut anywhere waits for the rest
        with pytest.raises(Incomplete):
            parse(message[:cut], 0)
    assert parse(encode_command("SUBSCRIBE", "é"), 0) == ([b"SUBSCRIBE", "é".encode()], 27)


def test_the_directory_follows_users_rooms_renames_and_quits() -> None:
    d = Directory()
    d.apply("n1", Present(nick="Ada", user="ada"))
    d.apply("n1", m.Joined(room="#Rust", nick="Ada"))
    d.apply("n1", m.Joined(room="#go", nick="Ada"))
    d.apply("n2", m.Joined(room="#rust", nick="bob"))  # joined before its Present arrived
    assert {u.nick for u in d.members("#rust")} == {"Ada", "bob"}
    d.apply("n1", m.NickChanged(old="Ada", new="ada2"))
    assert "ada" not in d.users and d.users["ada2"].rooms == {"#rust": "#Rust", "#go": "#go"}
    assert {u.nick for u in d.members("#go")} == {"ada2"}
    d.apply("n1", m.Parted(room="#go", nick="ada2"))
    assert "#go" not in d.rooms
    d.apply("n2", m.Quitted(nick="BOB"))
    assert {u.nick for u in d.members("#rust")} == {"ada2"}
    # A node restating a user replaces what was known of it.
    d.apply("n1", Present(nick="ada2", rooms=("#c",)))
    assert set(d.rooms) == {"#c"}
    assert [u.nick for u in d.drop_node("n1")] == ["ada2"] and not d.users and not d.rooms


def test_a_nick_moving_to_another_node_is_that_nodes_now() -> None:
    d = Directory()
    d.apply("n1", m.Joined(room="#a", nick="ada"))
    d.apply("n2", Present(nick="ADA"))
    assert d.users["ada"].node == "n2" and not d.users["ada"].rooms and "#a" not in d.rooms
