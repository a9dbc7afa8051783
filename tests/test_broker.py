"""The chat rules, tested as plain function calls: no sockets, no event loop."""

from __future__ import annotations

import pytest

from anychat import model as m
from anychat.broker import Broker, Deliver, Disconnect, Effect, Persist


class Peer:
    """Stands in for a connection: collects what the broker delivers to it."""

    def __init__(self, name: str) -> None:
        self.name = name

    def __repr__(self) -> str:
        return f"Peer({self.name})"


def inbox(effects: list[Effect[Peer]]) -> dict[str, list[m.Event]]:
    """Who receives which events, as the glue would deliver them."""
    got: dict[str, list[m.Event]] = {}
    for effect in effects:
        if isinstance(effect, Deliver):
            for peer in effect.to:
                if peer is not effect.skip:
                    got.setdefault(peer.name, []).append(effect.event)
        elif isinstance(effect, Persist):  # the glue acks once the message is stored
            got.setdefault(effect.peer.name, []).append(effect.ack)
    return got


@pytest.fixture
def broker() -> Broker[Peer]:
    return Broker(clock=lambda: 1000.0)


def register(broker: Broker[Peer], nick: str | None, *, autojoin: bool = True) -> Peer:
    peer = Peer(nick or "guest")
    broker.connect(peer)
    effects = broker.handle(peer, m.Hello(nick=nick, autojoin=autojoin))
    assert isinstance(inbox(effects)[peer.name][0], m.Welcome), effects
    return peer


def test_hello_welcomes_and_joins_the_default_room(broker: Broker[Peer]) -> None:
    peer = Peer("ada")
    broker.connect(peer)
    events = inbox(broker.handle(peer, m.Hello(nick="ada", ref=1)))["ada"]
    assert events == [
        m.Welcome(nick="ada", server="anychat", version="0", ref=1),
        m.Joined(room="#general", nick="ada"),
        m.Members(room="#general", nicks=("ada",)),
    ]


def test_guests_get_a_generated_unique_nick(broker: Broker[Peer]) -> None:
    nicks = set()
    for _ in range(50):
        peer = register(broker, None)
        nicks.add(broker.session(peer).nick)
    assert len(nicks) == 50
    assert all(m.valid_nick(n) and n.startswith("guest") for n in nicks)


def test_commands_before_hello_are_refused(broker: Broker[Peer]) -> None:
    peer = Peer("x")
    broker.connect(peer)
    (error,) = inbox(broker.handle(peer, m.Join(room="#a", ref=3)))["x"]
    assert isinstance(error, m.Error)
    assert error == m.Error(code=m.ErrorCode.HELLO_REQUIRED, text=error.text, ref=3)


def test_second_hello_is_refused(broker: Broker[Peer]) -> None:
    ada = register(broker, "ada")
    (error,) = inbox(broker.handle(ada, m.Hello(nick="ada")))["ada"]
    assert isinstance(error, m.Error) and error.code is m.ErrorCode.ALREADY_REGISTERED


@pytest.mark.parametrize("nick", ["", "9lives", "-dash", "has space", "x" * 31, "é"])
def test_invalid_nicks_are_refused(broker: Broker[Peer], nick: str) -> None:
    peer = Peer("p")
    broker.connect(peer)
    (error,) = inbox(broker.handle(peer, m.Hello(nick=nick)))["p"]
    assert isinstance(error, m.Error) and error.code is m.ErrorCode.INVALID_NICK


def test_nicks_are_unique_case_insensitively(broker: Broker[Peer]) -> None:
    register(broker, "Ada")
    peer = Peer("p")
    broker.connect(peer)
    (error,) = inbox(broker.handle(peer, m.Hello(nick="aDA")))["p"]
    assert isinstance(error, m.Error) and error.code is m.ErrorCode.NICK_IN_USE


def test_room_message_goes_to_others_and_an_ack_to_the_sender(broker: Broker[Peer]) -> None:
    ada, bob, cy = register(broker, "ada"), register(broker, "bob"), register(broker, "cy")
    got = inbox(broker.handle(ada, m.Say(target="#general", text="hi", ref=7)))
    msg = m.Message(id=1, time=1000.0, sender="ada", target="#general", text="hi")
    assert got == {
        "bob": [msg],
        "cy": [msg],
        "ada": [m.Ack(id=1, time=1000.0, target="#general", ref=7)],
    }
    assert bob and cy


def test_message_ids_increase(broker: Broker[Peer]) -> None:
    ada = register(broker, "ada")
    register(broker, "bob")
    acks = [inbox(broker.handle(ada, m.Say(target=None, text=str(i))))["ada"][0] for i in range(3)]
    assert [ack.id for ack in acks if isinstance(ack, m.Ack)] == [1, 2, 3]


def test_private_message_reaches_only_its_recipient(broker: Broker[Peer]) -> None:
    ada, _, _ = register(broker, "ada"), register(broker, "bob"), register(broker, "cy")
    got = inbox(broker.handle(ada, m.Say(target="BOB", text="psst")))
    assert set(got) == {"ada", "bob"}
    (msg,) = got["bob"]
    assert isinstance(msg, m.Message) and msg.target == "bob" and msg.sender == "ada"


@pytest.mark.parametrize(
    ("say", "code"),
    [
        (m.Say(target="nobody", text="x"), m.ErrorCode.NO_SUCH_NICK),
        (m.Say(target="#nowhere", text="x"), m.ErrorCode.NO_SUCH_ROOM),
        (m.Say(target="#general", text=""), m.ErrorCode.EMPTY_MESSAGE),
        (m.Say(target="#general", text="   "), m.ErrorCode.EMPTY_MESSAGE),
        (m.Say(target="#general", text="a\nb"), m.ErrorCode.BAD_COMMAND),
        (m.Say(target="#general", text="x" * (m.MAX_TEXT_LENGTH + 1)), m.ErrorCode.TEXT_TOO_LONG),
    ],
)
def test_say_refusals(broker: Broker[Peer], say: m.Say, code: m.ErrorCode) -> None:
    ada = register(broker, "ada")
    got = inbox(broker.handle(ada, say))
    assert list(got) == ["ada"]
    (error,) = got["ada"]
    assert isinstance(error, m.Error) and error.code is code


def test_speaking_in_a_room_you_left_is_refused(broker: Broker[Peer]) -> None:
    ada, bob = register(broker, "ada"), register(broker, "bob")
    broker.handle(bob, m.Join(room="#rust"))
    (error,) = inbox(broker.handle(ada, m.Say(target="#rust", text="x")))["ada"]
    assert isinstance(error, m.Error) and error.code is m.ErrorCode.NOT_MEMBER


def test_join_part_are_announced_and_rooms_vanish_when_empty(broker: Broker[Peer]) -> None:
    ada, bob = register(broker, "ada"), register(broker, "bob")
    got = inbox(broker.handle(ada, m.Join(room="#Rust", ref=1)))
    assert got == {
        "ada": [
            m.Joined(room="#Rust", nick="ada", ref=1),
            m.Members(room="#Rust", nicks=("ada",), ref=1),
        ],
    }
    got = inbox(broker.handle(bob, m.Join(room="#rust")))
    assert got["ada"] == [m.Joined(room="#Rust", nick="bob")]
    assert got["bob"][-1] == m.Members(room="#Rust", nicks=("ada", "bob"))
    got = inbox(broker.handle(bob, m.Part(room="#RUST", reason="bye")))
    assert got["ada"] == [m.Parted(room="#Rust", nick="bob", reason="bye")]
    broker.handle(ada, m.Part(room="#rust"))
    assert broker.find_room("#rust") is None


def test_bare_text_goes_to_the_room_joined_last(broker: Broker[Peer]) -> None:
    ada, bob = register(broker, "ada"), register(broker, "bob", autojoin=False)
    broker.handle(bob, m.Join(room="#rust"))
    broker.handle(ada, m.Join(room="#rust"))
    assert set(inbox(broker.handle(ada, m.Say(target=None, text="x")))) == {"ada", "bob"}
    broker.handle(ada, m.Part(room=None))  # leaves #rust, back to #general
    assert set(inbox(broker.handle(ada, m.Say(target=None, text="x")))) == {"ada"}


def test_no_current_room_is_a_clear_error(broker: Broker[Peer]) -> None:
    ada = register(broker, "ada", autojoin=False)
    (error,) = inbox(broker.handle(ada, m.Say(target=None, text="x")))["ada"]
    assert isinstance(error, m.Error) and error.code is m.ErrorCode.NO_ROOM


def test_invalid_room_names(broker: Broker[Peer]) -> None:
    ada = register(broker, "ada")
    for bad in ("general", "#", "#a b", "#a,b", "#" + "x" * 60):
        (error,) = inbox(broker.handle(ada, m.Join(room=bad)))["ada"]
        assert isinstance(error, m.Error) and error.code is m.ErrorCode.INVALID_ROOM


def test_nick_change_is_announced_once_to_everyone_sharing_a_room(broker: Broker[Peer]) -> None:
    ada, bob, cy = register(broker, "ada"), register(broker, "bob"), register(broker, "cy")
    broker.handle(ada, m.Join(room="#x"))
    broker.handle(bob, m.Join(room="#x"))
    broker.handle(cy, m.Part(room="#general"))
    got = inbox(broker.handle(ada, m.Nick(nick="ada2", ref=5)))
    assert got == {
        "ada": [m.NickChanged(old="ada", new="ada2", ref=5)],
        "bob": [m.NickChanged(old="ada", new="ada2")],
    }
    assert broker.find_nick("ada") is None and broker.find_nick("ADA2") is not None


def test_disconnect_announces_quit_once_and_frees_the_nick(broker: Broker[Peer]) -> None:
    ada, bob = register(broker, "ada"), register(broker, "bob")
    broker.handle(ada, m.Join(room="#x"))
    broker.handle(bob, m.Join(room="#x"))
    got = inbox(broker.disconnect(ada, "connection lost"))
    assert got == {"bob": [m.Quitted(nick="ada", reason="connection lost")]}
    assert broker.disconnect(ada) == []
    assert broker.find_nick("ada") is None
    register(broker, "ada")


def test_quit_command_asks_the_glue_to_close(broker: Broker[Peer]) -> None:
    ada = register(broker, "ada")
    (effect,) = broker.handle(ada, m.Quit(reason="bye"))
    assert isinstance(effect, Disconnect) and effect.peer is ada


def test_who_and_room_list(broker: Broker[Peer]) -> None:
    ada, bob = register(broker, "ada"), register(broker, "bob")
    broker.handle(bob, m.Join(room="#b"))
    assert inbox(broker.handle(ada, m.Who(room="#b")))["ada"] == [
        m.Members(room="#b", nicks=("bob",))
    ]
    assert inbox(broker.handle(ada, m.ListRooms()))["ada"] == [
        m.RoomList(rooms=(m.RoomInfo(name="#b", members=1), m.RoomInfo(name="#general", members=2)))
    ]
    (error,) = inbox(broker.handle(ada, m.Who(room="#nope")))["ada"]
    assert isinstance(error, m.Error) and error.code is m.ErrorCode.NO_SUCH_ROOM


def test_room_limit_per_session() -> None:
    broker: Broker[Peer] = Broker(max_rooms_per_session=2)
    ada = register(broker, "ada")
    broker.handle(ada, m.Join(room="#b"))
    (error,) = inbox(broker.handle(ada, m.Join(room="#c")))["ada"]
    assert isinstance(error, m.Error) and error.code is m.ErrorCode.TOO_MANY_ROOMS


def test_invalid_command_is_answered_not_raised(broker: Broker[Peer]) -> None:
    ada = register(broker, "ada")
    invalid = m.Invalid(code=m.ErrorCode.LINE_TOO_LONG, text="too long", ref=2)
    assert inbox(broker.handle(ada, invalid))["ada"] == [invalid.reply()]
