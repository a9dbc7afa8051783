"""The broker's side of accounts, without sockets: nick ownership, log-in, acks after storage."""

from __future__ import annotations

from anychat import model as m
from anychat.broker import Broker, Deliver, Disconnect, Effect, Persist


def _events(effects: list[Effect[str]], peer: str) -> list[m.Event]:
    return [e.event for e in effects if isinstance(e, Deliver) and peer in e.to]


def test_registered_nick_needs_its_account() -> None:
    broker: Broker[str] = Broker(registered=["Alice"], clock=lambda: 1.0)
    broker.connect("guest")
    (error,) = _events(broker.handle("guest", m.Hello(nick="ALICE", ref=1)), "guest")
    assert isinstance(error, m.Error)
    assert error.code is m.ErrorCode.NICK_REGISTERED
    assert "log in" in error.text
    broker.connect("owner")
    assert broker.log_in("owner", "alice") == []  # not registered yet: hello comes next
    welcome = _events(broker.handle("owner", m.Hello(nick="alice")), "owner")[0]
    assert isinstance(welcome, m.Welcome)
    (refused,) = _events(broker.handle("owner", m.Nick(nick="bob")), "owner")
    assert isinstance(refused, m.Error)


def test_second_login_disconnects_the_ghost() -> None:
    broker: Broker[str] = Broker(registered=["alice"])
    for peer in ("old", "new"):
        broker.connect(peer)
        broker.log_in(peer, "alice")
    broker.handle("old", m.Hello(nick="alice"))
    effects = broker.handle("new", m.Hello(nick="alice"))
    (gone,) = [e for e in effects if isinstance(e, Disconnect)]
    assert gone.peer == "old"
    assert gone.bye.code is m.ErrorCode.LOGGED_IN_ELSEWHERE
    assert broker.find_nick("alice") is broker.session("new")
    assert broker.disconnect("old") == []  # the glue's later cleanup is a no-op


def test_guest_logging_in_takes_the_account_nick() -> None:
    broker: Broker[str] = Broker(registered=["alice"])
    broker.connect("p")
    broker.handle("p", m.Hello(nick="bob"))
    effects = broker.log_in("p", "alice", ref=7)
    changed = _events(effects, "p")[0]
    assert changed == m.NickChanged(old="bob", new="alice", ref=7)
    assert broker.session("p").account == "alice"


def test_acks_wait_for_storage_and_ids_continue() -> None:
    broker: Broker[str] = Broker(first_message_id=42, clock=lambda: 5.0, registered=["carol"])
    for peer in ("a", "b"):
        broker.connect(peer)
        broker.handle(peer, m.Hello(nick=peer))
    effects = broker.handle("a", m.Say(target="#general", text="hi", ref=3))
    (persist,) = [e for e in effects if isinstance(e, Persist)]
    assert persist.message.id == 42
    assert persist.peer == "a"
    assert persist.ack == m.Ack(id=42, time=5.0, target="#general", ref=3)
    assert not [e for e in _events(effects, "a") if isinstance(e, m.Ack)]  # not before storage
    assert broker.next_message_id == 43
    # A private message to an offline account is stored for it, not refused.
    offline = broker.handle("a", m.Say(target="carol", text="later"))
    assert [type(e) for e in offline] == [Persist]
    (nobody,) = _events(broker.handle("a", m.Say(target="dave", text="x")), "a")
    assert isinstance(nobody, m.Error)
    assert nobody.code is m.ErrorCode.NO_SUCH_NICK


def test_require_login_refuses_guests_but_not_accounts() -> None:
    broker: Broker[str] = Broker(require_login=True)
    broker.connect("g")
    (error,) = _events(broker.handle("g", m.Hello()), "g")
    assert isinstance(error, m.Error)
    assert error.code is m.ErrorCode.LOGIN_REQUIRED
    broker.log_in("g", "alice")
    assert isinstance(_events(broker.handle("g", m.Hello(nick="alice")), "g")[0], m.Welcome)
