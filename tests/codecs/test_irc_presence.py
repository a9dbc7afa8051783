"""Presence events in the codecs (no sockets): each IRC notification only for clients that
asked, the capability part of the encoding key, and what JSON, WebSocket and text users see."""

from __future__ import annotations

import pytest

from anychat import model as m
from anychat.codecs.irc import IrcCodec
from anychat.codecs.jsonl import JsonServerCodec, event_from_json, event_to_json
from anychat.codecs.text import TextCodec
from anychat.codecs.web.websocket import encode_event

from .test_irc import lines, registered

NEWS: list[tuple[str, m.Event, str]] = [
    (
        "away-notify",
        m.AwayChanged(nick="bob", text="lunch", user="b"),
        ":bob!~b@irc.test AWAY :lunch",
    ),
    ("away-notify", m.AwayChanged(nick="bob", user="b"), ":bob!~b@irc.test AWAY"),
    (
        "account-notify",
        m.AccountChanged(nick="bob", account="bob"),
        ":bob!~bob@irc.test ACCOUNT bob",
    ),
    ("account-notify", m.AccountChanged(nick="bob"), ":bob!~bob@irc.test ACCOUNT *"),
    ("setname", m.RealnameChanged(nick="bob", realname="B B"), ":bob!~bob@irc.test SETNAME :B B"),
    (
        "invite-notify",
        m.Invited(room="#a", nick="cy", by="bob", notice=True),
        ":bob!~bob@irc.test INVITE cy #a",
    ),
]


@pytest.mark.parametrize(("cap", "event", "line"), NEWS)
def test_each_notification_only_for_clients_that_asked(cap: str, event: m.Event, line: str) -> None:
    asked = registered("ada", cap)
    assert lines(asked, event) == [line]
    assert lines(registered("ada"), event) == []
    assert asked.encoding_key != registered("ada").encoding_key  # never one shared rendering


def test_a_join_while_away_and_the_account_tag() -> None:
    joined = m.Joined(room="#a", nick="bob", user="b", away="zzz")
    assert lines(registered("ada", "away-notify"), joined) == [
        ":bob!~b@irc.test JOIN #a",
        ":bob!~b@irc.test AWAY :zzz",
    ]
    assert lines(registered("ada"), joined) == [":bob!~b@irc.test JOIN #a"]
    msg = m.Message(id=3, time=0.0, sender="bob", target="#a", text="hi", user="b", account="bob")
    assert lines(registered("ada", "account-tag"), msg) == [
        "@account=bob :bob!~b@irc.test PRIVMSG #a :hi"
    ]
    assert lines(registered("ada", "account-tag", "message-tags"), msg) == [
        "@msgid=3;account=bob :bob!~b@irc.test PRIVMSG #a :hi"
    ]
    assert lines(registered("ada"), msg) == [":bob!~b@irc.test PRIVMSG #a :hi"]


def test_monitor_numerics_fit_one_line_each() -> None:
    codec: IrcCodec = registered("ada")
    (watch,) = codec.feed(b"MONITOR + a,b\r\n")
    assert isinstance(watch, m.Watch) and watch.op == "+"
    many = tuple(f"somebody{i:03d}" for i in range(100))
    out = lines(codec, m.Presence(offline=many, ref=watch.ref))
    assert len(out) > 1
    assert all(len(line.encode()) <= 510 and line.startswith(":irc.test 731 ada :") for line in out)
    assert [n for line in out for n in line.split(" :", 1)[1].split(",")] == list(many)


def test_json_and_text_users_see_away_news_and_nothing_of_the_rest() -> None:
    away = m.AwayChanged(nick="bob", text="lunch")
    assert event_to_json(away) == {"type": "user_away", "nick": "bob", "text": "lunch"}
    assert event_from_json(event_to_json(away)) == away
    assert TextCodec().encode(away) == b"* bob is away: lunch\r\n"
    assert TextCodec().encode(m.AwayChanged(nick="bob")) == b"* bob is back\r\n"
    for event in (
        m.AccountChanged(nick="bob", account="bob"),
        m.RealnameChanged(nick="bob", realname="B"),
        m.Presence(online=("bob",), users=("b",)),
        m.WatchList(nicks=("bob",)),
        m.Invited(room="#a", nick="cy", by="bob", notice=True),
    ):
        assert JsonServerCodec().encode(event) == b""
        assert TextCodec().encode(event) == b""
        assert encode_event(event) == b""  # not even an empty WebSocket frame


def test_client_tags_are_kept_only_when_well_formed_and_negotiated() -> None:
    codec = registered("ada", "message-tags")
    (say,) = codec.feed(b"@+a=1;b=2;+v/k=x\\sy;+bad_key=3;+e;+a=last PRIVMSG #r :hi\r\n")
    assert isinstance(say, m.Say)
    assert say.tags == "+a=last;+v/k=x\\sy;+e"  # the last value wins, as the spec says
    (plain,) = registered("ada").feed(b"@+a=1 PRIVMSG #r :hi\r\n")
    assert isinstance(plain, m.Say) and plain.tags == ""
    assert registered("ada").feed(b"@+typing=active TAGMSG #r\r\n") == []
    assert codec.feed(b"TAGMSG #r\r\n") == []  # no tags: nothing to send
    (tag,) = codec.feed(b"@+typing=active TAGMSG #r\r\n")
    assert isinstance(tag, m.TagMsg) and (tag.target, tag.tags) == ("#r", "+typing=active")


def test_a_tagmsg_is_shown_only_with_message_tags() -> None:
    tagged = m.Tagged(sender="bob", target="#r", tags="+typing=paused", user="b", account="bob")
    assert lines(registered("ada", "message-tags"), tagged) == [
        "@+typing=paused :bob!~b@irc.test TAGMSG #r"
    ]
    assert lines(registered("ada", "message-tags", "account-tag"), tagged) == [
        "@account=bob;+typing=paused :bob!~b@irc.test TAGMSG #r"
    ]
    assert lines(registered("ada"), tagged) == []


def test_labels_wrap_none_one_or_several_lines() -> None:
    from anychat.codecs.irc.labels import wrap

    assert wrap("s", "a;b", "L1", [], batch=True) == ["@label=a\\:b :s ACK"]
    assert wrap("s", "x", "L1", ["@time=t :s PONG s t"], batch=True) == [
        "@label=x;time=t :s PONG s t"
    ]
    assert wrap("s", "x", "L1", [":s 1", "@batch=h2 :s 2"], batch=True) == [
        "@label=x :s BATCH +L1 labeled-response",
        "@batch=L1 :s 1",
        "@batch=h2 :s 2",
        ":s BATCH -L1",
    ]
    assert wrap("s", "x", "L1", [":s 1", ":s 2"], batch=False) == ["@label=x :s 1", "@label=x :s 2"]
