"""IRC rendering of operators, identities and tags, and the purity of rendering (no sockets)."""

from __future__ import annotations

import copy

import pytest

from anychat import model as m
from anychat.codecs import LocalReply
from anychat.codecs.irc import IrcCodec
from anychat.codecs.irc.state import IrcState

from .test_irc import lines, one, registered


def test_extended_join_carries_account_and_realname() -> None:
    joined = m.Joined(room="#a", nick="bob", user="bobby", realname="Bob B", account="bob")
    assert lines(registered("ada", "extended-join"), joined) == [
        ":bob!~bobby@irc.test JOIN #a bob :Bob B"
    ]
    guest = m.Joined(room="#a", nick="cy", user="cy", realname="Cy")
    assert lines(registered("ada", "extended-join"), guest) == [":cy!~cy@irc.test JOIN #a * :Cy"]
    assert lines(registered("ada"), joined) == [":bob!~bobby@irc.test JOIN #a"]


def test_message_tags_put_the_message_id_on_every_message() -> None:
    msg = m.Message(id=42, time=1767225600.0, sender="bob", target="#a", text="hi", user="b")
    assert lines(registered("ada", "message-tags"), msg) == [
        "@msgid=42 :bob!~b@irc.test PRIVMSG #a :hi"
    ]
    assert lines(registered("ada", "message-tags", "server-time"), msg) == [
        "@time=2026-01-01T00:00:00.000Z;msgid=42 :bob!~b@irc.test PRIVMSG #a :hi"
    ]
    codec = registered("ada", "message-tags", "echo-message")
    say = one(codec.feed(b"PRIVMSG #a :mine\r\n"))
    assert lines(codec, m.Ack(id=7, time=0.0, target="#a", ref=say.ref)) == [
        "@msgid=7 :ada!~ada@irc.test PRIVMSG #a :mine"
    ]


def test_history_is_not_replayed_to_plain_clients_unless_the_operator_says_so() -> None:
    old = m.Message(id=1, time=5.0, sender="bob", target="#a", text="old", history=True)
    assert lines(registered(), old) == []
    codec = IrcCodec(server_name="irc.test", history_replay=True)
    (hello,) = [c for c in codec.feed(b"NICK ada\r\nUSER a 0 * :A\r\n") if isinstance(c, m.Hello)]
    codec.encode(m.Welcome(nick="ada", server="irc.test", version="1", ref=hello.ref))
    assert lines(codec, old) == [":bob!~bob@irc.test PRIVMSG #a :old"]


def test_operator_events() -> None:
    codec = registered()
    changed = m.ModeChanged(
        room="#a",
        by="bob",
        user="b",
        changes=(
            m.ModeChange(mode="o", arg="ada"),
            m.ModeChange(mode="v", arg="cy"),
            m.ModeChange(mode="t", on=False),
            m.ModeChange(mode="k", arg="key"),
        ),
    )
    assert lines(codec, changed) == [":bob!~b@irc.test MODE #a +ov-t+k ada cy key"]
    assert lines(codec, m.ModeChanged(room="#a", by="bob", changes=())) == []
    kicked = m.Kicked(room="#a", nick="cy", by="bob", reason="spam", user="b")
    assert lines(codec, kicked) == [":bob!~b@irc.test KICK #a cy :spam"]
    invite = one(codec.feed(b"INVITE cy #a\r\n"))
    assert lines(codec, m.Invited(room="#a", nick="cy", by="ada", ref=invite.ref)) == [
        ":irc.test 341 ada cy #a"
    ]
    assert lines(codec, m.Invited(room="#a", nick="ada", by="bob", user="b")) == [
        ":bob!~b@irc.test INVITE ada #a"
    ]
    query = one(codec.feed(b"MODE #a\r\n"))
    modes = m.RoomModes(room="#a", modes="+klnt", args=("k", "5"), created=9.5, ref=query.ref)
    assert lines(codec, modes) == [":irc.test 324 ada #a +klnt k 5", ":irc.test 329 ada #a 9"]


def test_a_kick_teaches_the_kicked_codec_it_left() -> None:
    codec = registered()
    (join,) = codec.feed(b"JOIN #a\r\n")
    assert isinstance(join, m.Join)
    codec.encode(m.Joined(room="#a", nick="ada", ref=join.ref))
    codec.encode(m.Members(room="#a", nicks=("ada",), ref=join.ref))
    codec.encode(m.Kicked(room="#a", nick="ada", by="bob"))
    assert codec.feed(b"JOIN 0\r\n") == []


def test_mode_parsing_pairs_letters_with_arguments() -> None:
    codec = registered()
    mode = one(codec.feed(b"MODE #a +ov-k+lb bob cy old 5 *!*@evil\r\n"))
    assert isinstance(mode, m.Mode)
    assert mode.changes == (
        m.ModeChange(mode="o", arg="bob"),
        m.ModeChange(mode="v", arg="cy"),
        m.ModeChange(mode="k", on=False, arg="old"),
        m.ModeChange(mode="l", arg="5"),
        m.ModeChange(mode="b", arg="*!*@evil"),
    )
    (unknown, mode2) = codec.feed(b"MODE #a +zm-l\r\n")
    assert isinstance(unknown, LocalReply)
    assert isinstance(mode2, m.Mode)
    assert mode2.changes == (m.ModeChange(mode="m"), m.ModeChange(mode="l", on=False))
    (kick_bob, kick_cy) = codec.feed(b"KICK #a bob,cy :out\r\n")
    assert isinstance(kick_bob, m.Kick)
    assert isinstance(kick_cy, m.Kick)
    assert (kick_bob.nick, kick_cy.nick, kick_cy.reason) == ("bob", "cy", "out")
    (join_a, join_b) = codec.feed(b"JOIN #a,#b sesame\r\n")
    assert isinstance(join_a, m.Join)
    assert isinstance(join_b, m.Join)
    assert (join_a.key, join_b.key) == ("sesame", "")


FANNED_OUT: list[m.Event] = [
    m.Message(id=3, time=1.0, sender="cy", target="#a", text="hi", user="c"),
    m.Joined(room="#a", nick="cy", user="c", realname="Cy", account="cy"),
    m.ModeChanged(room="#a", by="cy", changes=(m.ModeChange(mode="o", arg="ada"),)),
    m.Kicked(room="#a", nick="bob", by="cy", reason="r"),
    m.Parted(room="#a", nick="cy", user="c"),
]


@pytest.mark.parametrize(
    "caps",
    [
        (),
        ("extended-join",),
        ("message-tags", "server-time"),
        ("userhost-in-names", "multi-prefix"),
    ],
)
@pytest.mark.parametrize("event", FANNED_OUT)
def test_rendering_fanned_out_events_is_pure(caps: tuple[str, ...], event: m.Event) -> None:
    """Equal keys give equal bytes, and rendering changes nothing in the codec."""
    ada, bob = registered("ada", *caps), registered("bob", *caps)
    bob.feed(b"JOIN #a\r\nAWAY :x\r\n")
    # Not only equal: the same object, so fan-out's identity check renders once for both.
    assert ada.encoding_key is bob.encoding_key
    before = copy.deepcopy(_fields(ada.state))
    assert ada.encode(event) == bob.encode(event)
    assert _fields(ada.state) == before


def _fields(state: IrcState) -> dict[str, object]:
    """Every attribute of a (slotted) connection state, for before/after comparisons."""
    return {name: getattr(state, name) for name in IrcState.__slots__}
