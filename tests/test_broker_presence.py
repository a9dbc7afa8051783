"""Presence in the broker: away news, real names, account news, watch lists (pure calls)."""

from __future__ import annotations

from anychat import model as m
from anychat.broker import Broker, Deliver, Effect
from anychat.sessions import NO_WATCHES


def make(*nicks: str) -> Broker[str]:
    broker: Broker[str] = Broker(default_rooms=(), clock=lambda: 100.0)
    for peer in nicks or ("ada", "bob", "cy"):
        broker.connect(peer)
        broker.handle(peer, m.Hello(nick=peer, user=f"u{peer}", realname=f"{peer.title()} R."))
    return broker


def events(effects: list[Effect[str]], peer: str) -> list[m.Event]:
    return [e.event for e in effects if isinstance(e, Deliver) and peer in e.to and peer != e.skip]


def test_away_news_reaches_room_peers_once_and_only_on_change() -> None:
    broker = make()
    broker.handle("ada", m.Join(room="#a"))
    broker.handle("bob", m.Join(room="#a"))
    broker.handle("ada", m.Join(room="#b"))
    broker.handle("bob", m.Join(room="#b"))  # two shared rooms: still one notice
    effects = broker.handle("bob", m.Away(text="lunch", ref=1))
    assert events(effects, "bob") == [m.AwayStatus(text="lunch", ref=1)]
    assert events(effects, "ada") == [m.AwayChanged(nick="bob", text="lunch", user="ubob")]
    assert events(effects, "cy") == []  # shares no room
    again = broker.handle("bob", m.Away(text="lunch"))
    assert events(again, "ada") == []  # nothing changed
    back = broker.handle("bob", m.Away())
    assert events(back, "ada") == [m.AwayChanged(nick="bob", text="")]


def test_a_member_who_joins_while_away_says_so_in_the_join() -> None:
    broker = make()
    broker.handle("ada", m.Join(room="#a"))
    broker.handle("bob", m.Away(text="gone fishing"))
    (joined,) = events(broker.handle("bob", m.Join(room="#a")), "ada")
    assert isinstance(joined, m.Joined)
    assert joined.away == "gone fishing"


def test_setname_changes_the_real_name_everyone_sees() -> None:
    broker = make()
    broker.handle("ada", m.Join(room="#a"))
    broker.handle("bob", m.Join(room="#a"))
    effects = broker.handle("bob", m.SetRealname(realname="Robert \x1b[31mR.", ref=3))
    news = m.RealnameChanged(nick="bob", realname="Robert [31mR.", user="ubob")
    assert events(effects, "bob") == [m.RealnameChanged(nick="bob", realname=news.realname, ref=3)]
    assert events(effects, "ada") == [news]
    assert events(effects, "cy") == []
    ((info),) = events(broker.handle("cy", m.Whois(nick="bob")), "cy")
    assert isinstance(info, m.UserInfo)
    assert info.realname == "Robert [31mR."
    for bad in ("", "   ", "x" * 101):
        (refusal,) = events(broker.handle("bob", m.SetRealname(realname=bad)), "bob")
        assert isinstance(refusal, m.Error)
        assert refusal.code is m.ErrorCode.BAD_COMMAND


def test_logging_in_after_registration_is_news_to_room_peers() -> None:
    broker = make("ada", "bob")
    broker.handle("ada", m.Join(room="#a"))
    broker.handle("bob", m.Join(room="#a"))
    effects = broker.log_in("bob", "bob")
    assert events(effects, "ada") == [m.AccountChanged(nick="bob", account="bob", user="ubob")]
    assert events(effects, "bob") == []
    assert broker.log_in("bob", "bob") == []  # the same account again: no news
    gone = broker.account_deleted("bob")
    assert m.AccountChanged(nick="bob", account="") in events(gone, "ada")


def test_a_message_carries_its_senders_account() -> None:
    broker = make("ada", "bob")
    broker.handle("ada", m.Join(room="#a"))
    broker.handle("bob", m.Join(room="#a"))
    broker.log_in("bob", "bob")
    (msg,) = events(broker.handle("bob", m.Say(target="#a", text="hi")), "ada")
    assert isinstance(msg, m.Message)
    assert msg.account == "bob"


def test_watch_lists_answer_and_follow_nicks_coming_and_going() -> None:
    broker = make("ada", "bob")
    added = broker.handle("ada", m.Watch(op="+", nicks=("BOB", "cy", "bad nick"), ref=1))
    assert events(added, "ada") == [
        m.Presence(online=("bob",), users=("ubob",), offline=("cy",), ref=1)
    ]
    listed = broker.handle("ada", m.Watch(op="L", ref=2))
    assert events(listed, "ada") == [m.WatchList(nicks=("BOB", "cy"), ref=2)]
    broker.connect("cy")
    came = broker.handle("cy", m.Hello(nick="cy", user="ucy"))
    assert m.Presence(online=("cy",), users=("ucy",)) in events(came, "ada")
    renamed = broker.handle("cy", m.Nick(nick="cyd"))
    assert m.Presence(offline=("cy",)) in events(renamed, "ada")
    back = broker.handle("cy", m.Nick(nick="cy"))
    assert m.Presence(online=("cy",), users=("ucy",)) in events(back, "ada")
    went = broker.disconnect("bob")
    assert events(went, "ada") == [m.Presence(offline=("bob",))]
    status = broker.handle("ada", m.Watch(op="S", ref=3))
    assert events(status, "ada") == [
        m.Presence(online=("cy",), users=("ucy",), offline=("BOB",), ref=3)
    ]
    assert broker.handle("ada", m.Watch(op="-", nicks=("cy",))) == []
    assert broker.disconnect("cy") == []  # nobody watches cy any more
    assert broker.handle("ada", m.Watch(op="C")) == []
    assert events(broker.handle("ada", m.Watch(op="L", ref=4)), "ada") == [m.WatchList(ref=4)]


def test_a_full_watch_list_refuses_the_rest_and_a_gone_watcher_is_forgotten() -> None:
    broker = make("ada")
    nicks = tuple(f"n{i}" for i in range(m.MAX_WATCHED + 2))
    (answer,) = events(broker.handle("ada", m.Watch(op="+", nicks=nicks, ref=1)), "ada")
    assert isinstance(answer, m.Presence)
    assert answer.offline == nicks[: m.MAX_WATCHED]
    assert answer.refused == nicks[m.MAX_WATCHED :]
    broker.disconnect("ada")
    broker.connect("n1")
    came = broker.handle("n1", m.Hello(nick="n1"))
    assert not [e for e in came if isinstance(e, Deliver) and isinstance(e.event, m.Presence)]


def test_each_watcher_gets_its_own_delivery() -> None:
    """IRC numerics name the recipient: one rendering must not be shared by two watchers."""
    broker = make("ada", "bob")
    broker.handle("ada", m.Watch(op="+", nicks=("cy",)))
    broker.handle("bob", m.Watch(op="+", nicks=("cy",)))
    broker.connect("cy")
    came = [
        e
        for e in broker.handle("cy", m.Hello(nick="cy"))
        if isinstance(e, Deliver) and isinstance(e.event, m.Presence)
    ]
    assert sorted(tuple(e.to) for e in came) == [("ada",), ("bob",)]


def test_watch_lists_start_shared_and_empty_and_each_watcher_gets_its_own() -> None:
    broker = make()
    broker.handle("ada", m.Watch(op="+", nicks=("cy",)))
    broker.handle("bob", m.Watch(op="+", nicks=("ada",)))
    assert NO_WATCHES == {}  # the shared empty list was never written to
    assert events(broker.handle("cy", m.Watch(op="L", ref=1)), "cy") == [m.WatchList(ref=1)]
    assert events(broker.handle("ada", m.Watch(op="L", ref=2)), "ada") == [
        m.WatchList(nicks=("cy",), ref=2)
    ]
    assert events(broker.handle("bob", m.Watch(op="L", ref=3)), "bob") == [
        m.WatchList(nicks=("ada",), ref=3)
    ]


def test_invites_are_news_to_the_other_members() -> None:
    broker = make()
    broker.handle("ada", m.Join(room="#a"))
    broker.handle("bob", m.Join(room="#a"))
    effects = broker.handle("ada", m.Invite(nick="cy", room="#a", ref=9))
    (notice,) = events(effects, "bob")
    assert isinstance(notice, m.Invited)
    assert notice.notice and notice.nick == "cy"
    assert events(effects, "cy") == [m.Invited(room="#a", nick="cy", by="ada")]
    assert [e.notice for e in events(effects, "cy") if isinstance(e, m.Invited)] == [False]
    assert events(effects, "ada") == [m.Invited(room="#a", nick="cy", by="ada", ref=9)]


def test_tagmsg_follows_the_rules_of_a_message_and_is_not_stored() -> None:
    broker = make()
    broker.handle("ada", m.Join(room="#a"))
    broker.handle("bob", m.Join(room="#a"))
    effects = broker.handle("ada", m.TagMsg(target="#A", tags="+typing=active", ref=1))
    assert all(isinstance(e, Deliver) for e in effects)  # nothing persisted
    news = m.Tagged(sender="ada", target="#a", tags="+typing=active", time=100.0, user="uada")
    assert events(effects, "bob") == [news]
    assert events(effects, "ada") == [
        m.Tagged(sender="ada", target="#a", tags="+typing=active", time=100.0, ref=1)
    ]
    (outside,) = events(broker.handle("cy", m.TagMsg(target="#a", tags="+t")), "cy")  # +n
    assert isinstance(outside, m.Error) and outside.code is m.ErrorCode.NOT_MEMBER
    for bad in ("", "+a b", "+a\r\n", "+" + "x" * m.MAX_CLIENT_TAGS):
        (refusal,) = events(broker.handle("ada", m.TagMsg(target="#a", tags=bad)), "ada")
        assert isinstance(refusal, m.Error) and refusal.code is m.ErrorCode.BAD_COMMAND
    (said,) = events(broker.handle("ada", m.Say(target="#a", text="x", tags="+a b")), "ada")
    assert isinstance(said, m.Error) and said.code is m.ErrorCode.BAD_COMMAND
