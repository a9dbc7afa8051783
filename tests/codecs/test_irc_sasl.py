"""SASL PLAIN and PASS in the IRC codec without sockets: the exchange, its limits, the answers."""

from __future__ import annotations

import base64

import pytest
from hypothesis import given
from hypothesis import strategies as st

from anychat import model as m
from anychat.codecs import LocalReply
from anychat.codecs.irc import IrcCodec
from anychat.codecs.irc.sasl import CHUNK_BYTES, PlainExchange, SaslRefused, decode_plain

Inbound = list[m.Command | LocalReply]


def replies(inbound: Inbound) -> list[str]:
    out: list[str] = []
    for item in inbound:
        assert isinstance(item, LocalReply), item
        out += item.data.decode().removesuffix("\r\n").split("\r\n")
    return out


def lines(codec: IrcCodec, event: m.Event) -> list[str]:
    return codec.encode(event).decode().split("\r\n")[:-1]


def plain(authcid: str, password: str, authzid: str = "") -> str:
    return base64.b64encode(f"{authzid}\0{authcid}\0{password}".encode()).decode()


def negotiating() -> IrcCodec:
    """A client mid-registration that asked for SASL, as clients do."""
    codec = IrcCodec(server_name="s")
    assert replies(codec.feed(b"CAP LS 302\r\n")) == [
        ":s CAP * LS :account-notify account-tag away-notify batch cap-notify chghost "
        "draft/chathistory echo-message extended-join invite-notify labeled-response message-tags "
        "multi-prefix "
        "sasl=PLAIN server-time setname userhost-in-names"
    ]
    assert codec.feed(b"NICK ada\r\nUSER u 0 * :Ada\r\n") == []
    assert replies(codec.feed(b"CAP REQ sasl\r\n")) == [":s CAP * ACK :sasl"]
    return codec


def start(codec: IrcCodec) -> None:
    assert replies(codec.feed(b"AUTHENTICATE PLAIN\r\n")) == ["AUTHENTICATE +"]


def login(inbound: Inbound) -> m.Login:
    (command,) = inbound
    assert isinstance(command, m.Login)
    return command


def hello_of(inbound: Inbound) -> m.Hello:
    (command,) = inbound
    assert isinstance(command, m.Hello)
    return command


def test_sasl_is_offered_without_a_value_to_clients_before_302() -> None:
    codec = IrcCodec(server_name="s")
    assert replies(codec.feed(b"CAP LS\r\n")) == [
        ":s CAP * LS :account-notify account-tag away-notify batch cap-notify chghost "
        "draft/chathistory echo-message extended-join invite-notify labeled-response message-tags "
        "multi-prefix "
        "sasl server-time setname userhost-in-names"
    ]


def test_plain_login_then_registration_with_the_account_nick() -> None:
    codec = negotiating()
    start(codec)
    cmd = login(codec.feed(f"AUTHENTICATE {plain('Ada', 'secret pw')}\r\n".encode()))
    assert (cmd.nick, cmd.password, cmd.hello) == ("Ada", "secret pw", False)
    assert "secret" not in repr(cmd)
    answer = lines(codec, m.LoggedIn(nick="Ada", token="t", ref=cmd.ref))
    assert answer == [
        ":s 900 * ada!~ada@s Ada :You are now logged in as Ada",
        ":s 903 * :SASL authentication successful",
    ]
    hello = hello_of(codec.feed(b"CAP END\r\n"))
    # Registration uses the account's nick, and no password: the login is already done.
    assert (hello.nick, hello.password) == ("Ada", None)
    codec.encode(m.Welcome(nick="Ada", server="s", version="1", ref=hello.ref))
    assert replies(codec.feed(b"AUTHENTICATE PLAIN\r\n")) == [
        ":s 907 Ada :You have already authenticated using SASL"
    ]


def test_a_failed_login_is_904_whatever_the_cause_and_registration_goes_on_as_a_guest() -> None:
    codec = negotiating()
    for code in (m.ErrorCode.LOGIN_FAILED, m.ErrorCode.STORE_UNAVAILABLE):
        start(codec)
        cmd = login(codec.feed(f"AUTHENTICATE {plain('ada', 'wrong')}\r\n".encode()))
        error = m.Error(code=code, text="login failed: wrong nick or password", ref=cmd.ref)
        assert lines(codec, error) == [":s 904 * :SASL authentication failed"]
    hello = hello_of(codec.feed(b"CAP END\r\n"))
    assert (hello.nick, hello.password) == ("ada", None)
    assert codec.hangup is None


def test_payload_of_a_multiple_of_400_bytes_ends_with_a_plus() -> None:
    password = "p" * 597  # 2 + 3 + 597 = 602 bytes -> 804 bytes of base64: 400 + 400 + 4
    payload = plain("ada", password)
    assert len(payload) == 804
    codec = negotiating()
    start(codec)
    assert codec.feed(f"AUTHENTICATE {payload[:400]}\r\n".encode()) == []
    assert codec.feed(f"AUTHENTICATE {payload[400:800]}\r\n".encode()) == []
    assert login(codec.feed(f"AUTHENTICATE {payload[800:]}\r\n".encode())).password == password

    exact = plain("ada", "p" * 295)  # 300 bytes -> exactly 400 bytes of base64
    assert len(exact) == CHUNK_BYTES
    start(codec)
    assert codec.feed(f"AUTHENTICATE {exact}\r\n".encode()) == []
    assert login(codec.feed(b"AUTHENTICATE +\r\n")).password == "p" * 295


@pytest.mark.parametrize(
    "payload",
    [
        "+",  # empty
        "not base64!",
        "YWRh",  # "ada": no NULs
        base64.b64encode(b"\0ada\0pw\0more").decode(),
        base64.b64encode(b"\0\0pw").decode(),  # no authcid
        base64.b64encode(b"\0ada\0").decode(),  # no password
        base64.b64encode(b"bob\0ada\0pw").decode(),  # acting for someone else
        base64.b64encode(b"\0ada\0\xff\xfe").decode(),  # not UTF-8
        "YWRhAGFkYQBwdw",  # missing padding
        "é",
    ],
)
def test_malformed_credentials_fail_with_904(payload: str) -> None:
    codec = negotiating()
    start(codec)
    assert replies(codec.feed(f"AUTHENTICATE {payload}\r\n".encode())) == [
        ":s 904 * :SASL authentication failed"
    ]
    start(codec)  # the client may try again


def test_authzid_naming_the_same_account_is_accepted() -> None:
    assert decode_plain(plain("ada", "pw", authzid="ADA")).authcid == "ada"


def test_abort_and_over_long_chunks() -> None:
    codec = negotiating()
    start(codec)
    assert replies(codec.feed(b"AUTHENTICATE *\r\n")) == [":s 906 * :SASL authentication aborted"]
    # After an abort, data is a mechanism name again.
    assert replies(codec.feed(b"AUTHENTICATE YWRh\r\n"))[0].split()[1] == "908"
    start(codec)
    too_long = "A" * (CHUNK_BYTES + 1)
    assert replies(codec.feed(f"AUTHENTICATE {too_long}\r\n".encode())) == [
        ":s 905 * :SASL message too long"
    ]
    # Full chunks without end: the payload is bounded too.
    start(codec)
    chunk = f"AUTHENTICATE {'A' * CHUNK_BYTES}\r\n".encode()
    answers: list[str] = []
    for _ in range(100):
        answers = replies(codec.feed(chunk))
        if answers:
            break
    assert answers == [":s 905 * :SASL message too long"]


def test_unknown_mechanism_lists_plain() -> None:
    codec = negotiating()
    assert replies(codec.feed(b"AUTHENTICATE EXTERNAL\r\n")) == [
        ":s 908 * PLAIN :are available SASL mechanisms",
        ":s 904 * :SASL authentication failed",
    ]


@given(st.lists(st.text(max_size=500), max_size=5))
def test_no_input_crashes_the_exchange(chunks: list[str]) -> None:
    exchange = PlainExchange()
    numeric = ""
    for chunk in chunks:
        try:
            result = exchange.feed(chunk)
        except SaslRefused as exc:
            numeric = exc.numeric
            break
        if result is not None:
            assert result.authcid and result.password
            break
    assert numeric in ("", "904", "905")


# ------------------------------------------------------------------------------- PASS


def test_pass_is_the_account_password_of_the_registering_nick() -> None:
    codec = IrcCodec(server_name="s")
    hello = hello_of(codec.feed(b"PASS :my secret\r\nNICK ada\r\nUSER u 0 * :Ada\r\n"))
    assert (hello.nick, hello.password) == ("ada", "my secret")
    assert lines(codec, m.LoggedIn(nick="ada", token="t", ref=hello.ref)) == [
        ":s 900 * ada!~ada@s ada :You are now logged in as ada"
    ]
    welcome = lines(codec, m.Welcome(nick="ada", server="s", version="1", ref=hello.ref))
    assert welcome[0].startswith(":s 001 ada ")
    assert codec.state.password is None


def test_wrong_pass_is_464_then_goodbye() -> None:
    codec = IrcCodec(server_name="s")
    hello = hello_of(codec.feed(b"PASS wrong\r\nNICK ada\r\nUSER u 0 * :Ada\r\n"))
    error = m.Error(code=m.ErrorCode.LOGIN_FAILED, text="login failed", ref=hello.ref)
    assert lines(codec, error) == [":s 464 * :Password incorrect"]
    assert codec.hangup is not None
    assert lines(codec, codec.hangup) == ["ERROR :Closing Link: * (Access denied: bad password)"]


def test_pass_in_plaintext_refused_says_why_then_goodbye() -> None:
    """Production refuses credentials sent unencrypted from afar: a notice says so (no numeric
    can), then 464 and the goodbye, as for a wrong password."""
    codec = IrcCodec(server_name="s")
    hello = hello_of(codec.feed(b"PASS secret\r\nNICK ada\r\nUSER u 0 * :Ada\r\n"))
    text = "passwords are accepted only over TLS here: reconnect with TLS"
    error = m.Error(code=m.ErrorCode.TLS_REQUIRED, text=text, ref=hello.ref)
    assert lines(codec, error) == [f":s NOTICE * :{text}", ":s 464 * :Password incorrect"]
    assert codec.hangup is not None and codec.hangup.code is m.ErrorCode.TLS_REQUIRED
    assert lines(codec, codec.hangup) == [
        "ERROR :Closing Link: * (Access denied: passwords only over TLS)"
    ]


def test_sasl_in_plaintext_refused_says_why_and_registration_goes_on() -> None:
    codec = negotiating()
    start(codec)
    cmd = login(codec.feed(f"AUTHENTICATE {plain('ada', 'pw')}\r\n".encode()))
    text = "passwords are accepted only over TLS here: reconnect with TLS"
    error = m.Error(code=m.ErrorCode.TLS_REQUIRED, text=text, ref=cmd.ref)
    assert lines(codec, error) == [f":s NOTICE * :{text}", ":s 904 * :SASL authentication failed"]
    assert codec.hangup is None
    hello = hello_of(codec.feed(b"CAP END\r\n"))
    assert (hello.nick, hello.password) == ("ada", None)


def test_login_required_is_explained_then_goodbye() -> None:
    codec = IrcCodec(server_name="s")
    hello = hello_of(codec.feed(b"NICK ada\r\nUSER u 0 * :Ada\r\n"))
    error = m.Error(code=m.ErrorCode.LOGIN_REQUIRED, text="log in", ref=hello.ref)
    notice, numeric = lines(codec, error)
    assert notice.startswith(":s NOTICE * :This server admits only registered users")
    assert "SASL" in notice and "PASS" in notice
    assert numeric == ":s 464 * :Password required"
    assert codec.hangup is not None and codec.hangup.code is m.ErrorCode.LOGIN_REQUIRED


def test_a_registered_nick_is_433_with_a_notice_saying_how_to_log_in() -> None:
    codec = IrcCodec(server_name="s")
    hello = hello_of(codec.feed(b"NICK ada\r\nUSER u 0 * :Ada\r\n"))
    error = m.Error(code=m.ErrorCode.NICK_REGISTERED, text="registered", ref=hello.ref)
    numeric, notice = lines(codec, error)
    assert numeric == ":s 433 * ada :Nickname is already in use"
    assert notice.startswith(":s NOTICE * :ada is a registered nick: log in")
    assert codec.hangup is None
    (again,) = codec.feed(b"NICK ada_\r\n")  # the client picks another nick and goes on
    assert isinstance(again, m.Hello) and again.nick == "ada_"


def test_pass_with_spaces_and_no_colon_is_one_password() -> None:
    codec = IrcCodec(server_name="s")
    hello = hello_of(codec.feed(b"PASS correct horse battery\r\nNICK ada\r\nUSER u 0 * :Ada\r\n"))
    assert hello.password == "correct horse battery"
