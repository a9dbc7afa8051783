"""The IRC codec without sockets: parsing, registration, numerics, rendering, fan-out safety."""

from __future__ import annotations

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from anychat import model as m
from anychat.codecs import LocalReply
from anychat.codecs.irc import IrcCodec
from anychat.codecs.irc.parse import IrcLine, escape_tag, format_line, parse_line, unescape_tag
from anychat.codecs.irc.state import _NO_ENTRIES
from anychat.codecs.sniff import Protocol, sniff

# ------------------------------------------------------------------------------- syntax


@pytest.mark.parametrize(
    ("line", "expected"),
    [
        ("PING x", IrcLine("PING", ("x",))),
        ("privmsg #a :hello  world ", IrcLine("PRIVMSG", ("#a", "hello  world "))),
        ("PRIVMSG #a :", IrcLine("PRIVMSG", ("#a", ""))),
        ("PRIVMSG #a ::-)", IrcLine("PRIVMSG", ("#a", ":-)"))),
        ("USER  u   0 *  :Real Name", IrcLine("USER", ("u", "0", "*", "Real Name"))),
        (":nick!u@h QUIT", IrcLine("QUIT", (), source="nick!u@h")),
        (
            "@time=2026-01-01T00:00:00Z;+draft/x=a\\sb\\:c;flag :srv 001 me :Welcome",
            IrcLine(
                "001",
                ("me", "Welcome"),
                source="srv",
                tags={"time": "2026-01-01T00:00:00Z", "+draft/x": "a b;c", "flag": ""},
            ),
        ),
        ("JOIN #a,#b key", IrcLine("JOIN", ("#a,#b", "key"))),
        ("CMD a b c d e f g h i j k l m n o p q", IrcLine("CMD", tuple("abcdefghijklmnopq"))),
    ],
)
def test_parse_line(line: str, expected: IrcLine) -> None:
    assert parse_line(line) == expected


@pytest.mark.parametrize("line", ["", "   ", "@tag=1", "@tag=1 :source", ":source"])
def test_lines_without_a_command_are_nothing(line: str) -> None:
    assert parse_line(line) is None


def test_format_line_uses_a_trailing_parameter_only_when_needed() -> None:
    assert format_line("srv", "324", "me", "#a", "+nt") == ":srv 324 me #a +nt"
    assert format_line(None, "PRIVMSG", "#a", "two words") == "PRIVMSG #a :two words"
    assert format_line(None, "PRIVMSG", "#a", "") == "PRIVMSG #a :"
    assert format_line(None, "PRIVMSG", "#a", ":x") == "PRIVMSG #a ::x"
    assert format_line("s", "PING", tags="time=1") == "@time=1 :s PING"


@given(st.text())
def test_tag_escaping_round_trips(value: str) -> None:
    escaped = escape_tag(value)
    assert not any(c in escaped for c in "; \r\n")
    assert unescape_tag(escaped) == value


@given(st.text(alphabet=st.characters(blacklist_characters="\r\n\x00 ", min_codepoint=33)))
def test_format_then_parse_round_trips(word: str) -> None:
    line = format_line("src", "PRIVMSG", "#room", f"{word} and more")
    assert parse_line(line) == IrcLine("PRIVMSG", ("#room", f"{word} and more"), source="src")


# ------------------------------------------------------------------------------- sniffing


@pytest.mark.parametrize(
    "first", [b"CAP LS 302\r\n", b"nick ada\r\n", b"USER a 0 * :A\n", b"Pass secret\r\n"]
)
def test_sniff_recognises_irc_registration(first: bytes) -> None:
    assert sniff(first) is Protocol.IRC


def test_sniff_waits_for_a_verb_and_leaves_text_alone() -> None:
    assert sniff(b"NI") is None
    assert sniff(b"nickname is nice\r\n") is Protocol.TEXT
    assert sniff(b'{"type":"hello"}\n') is Protocol.JSONL


# ------------------------------------------------------------------------------- helpers


def replies(inbound: list[m.Command | LocalReply]) -> list[str]:
    out: list[str] = []
    for item in inbound:
        assert isinstance(item, LocalReply), item
        out += item.data.decode().removesuffix("\r\n").split("\r\n")
    return out


def one(inbound: list[m.Command | LocalReply]) -> m.Command:
    (command,) = inbound
    assert not isinstance(command, LocalReply), command
    return command


def registered(nick: str = "ada", *caps: str) -> IrcCodec:
    codec = IrcCodec(server_name="irc.test", version="1")
    if caps:
        codec.feed(f"CAP REQ :{' '.join(caps)}\r\n".encode())
    (hello,) = [
        c
        for c in codec.feed(f"NICK {nick}\r\nUSER {nick} 0 * :U\r\nCAP END\r\n".encode())
        if isinstance(c, m.Hello)
    ]
    codec.encode(m.Welcome(nick=nick, server="irc.test", version="1", ref=hello.ref))
    return codec


def lines(codec: IrcCodec, event: m.Event) -> list[str]:
    data = codec.encode(event).decode()
    assert data == "" or data.endswith("\r\n")
    return data.split("\r\n")[:-1]


# ------------------------------------------------------------------------------- registration


def test_registration_needs_nick_and_user_and_waits_for_cap_end() -> None:
    codec = IrcCodec(server_name="irc.test")
    assert replies(codec.feed(b"CAP LS 302\r\n")) == [
        ":irc.test CAP * LS :account-notify account-tag away-notify batch cap-notify chghost "
        "draft/chathistory echo-message extended-join invite-notify labeled-response message-tags "
        "multi-prefix sasl=PLAIN server-time setname userhost-in-names"
    ]
    assert codec.feed(b"NICK ada\r\nUSER u 0 * :Ada Lovelace\r\n") == []
    assert replies(codec.feed(b"CAP REQ :server-time  draft/frob -cap-notify\r\n")) == [
        ":irc.test CAP * NAK :server-time  draft/frob -cap-notify"
    ]
    assert replies(codec.feed(b"CAP REQ :-cap-notify\r\n")) == [
        ":irc.test CAP * NAK :-cap-notify"  # 302 clients keep cap-notify
    ]
    assert replies(codec.feed(b"CAP REQ :server-time\r\n")) == [":irc.test CAP * ACK :server-time"]
    hello = one(codec.feed(b"CAP END\r\n"))
    assert isinstance(hello, m.Hello)
    assert (hello.nick, hello.autojoin) == ("ada", False)
    welcome = lines(codec, m.Welcome(nick="ada", server="x", version="1", ref=hello.ref))
    assert [line.split()[1] for line in welcome] == [
        "001",
        "002",
        "003",
        "004",
        "005",
        "005",
        "422",
    ]
    assert replies(codec.feed(b"CAP LIST\r\n")) == [
        ":irc.test CAP ada LIST :cap-notify server-time"
    ]
    assert welcome[0] == ":irc.test 001 ada :Welcome to the irc.test IRC Network ada!~u@irc.test"
    isupport = welcome[4].split() + welcome[5].split()
    for token in ("CASEMAPPING=ascii", "CHANTYPES=#", "NICKLEN=30", "PREFIX=(ov)@+", "WHOX"):
        assert token in isupport
    assert all(len(line.split()) <= 3 + 13 + 5 for line in welcome[4:6])


def test_without_cap_nick_and_user_register_in_either_order() -> None:
    codec = IrcCodec()
    assert codec.feed(b"USER u 0 * :U\r\n") == []
    assert [type(c) for c in codec.feed(b"NICK ada\r\n")] == [m.Hello]


def test_commands_before_registration_are_refused() -> None:
    codec = IrcCodec(server_name="s")
    assert replies(codec.feed(b"JOIN #a\r\nPRIVMSG #a :hi\r\n")) == [
        ":s 451 * :You have not registered",
        ":s 451 * :You have not registered",
    ]
    assert replies(codec.feed(b"PING tok\r\n")) == [":s PONG s tok"]


def test_lines_after_registration_in_the_same_batch_reach_the_broker() -> None:
    codec = IrcCodec()
    out = codec.feed(b"NICK ada\r\nUSER u 0 * :U\r\nJOIN #a\r\n")
    assert [type(c) for c in out] == [m.Hello, m.Join]


def test_nick_in_use_during_registration_lets_the_client_try_again() -> None:
    codec = IrcCodec(server_name="s")
    hello = one(codec.feed(b"NICK bob\r\nUSER u 0 * :U\r\n"))
    error = m.Error(code=m.ErrorCode.NICK_IN_USE, text="taken", ref=hello.ref)
    assert lines(codec, error) == [":s 433 * bob :Nickname is already in use"]
    again = one(codec.feed(b"NICK ada\r\n"))
    assert isinstance(again, m.Hello)
    assert again.nick == "ada"


@pytest.mark.parametrize(
    ("line", "reply"),
    [
        (b"NICK\r\n", ":s 431 ada :No nickname given"),
        (b"NICK 9lives\r\n", ":s 432 ada 9lives :Erroneous nickname"),
        (b"NICK :two words\r\n", ":s 432 ada two_words :Erroneous nickname"),
        (b"USER a 0 * :b\r\n", ":s 462 ada :You may not reregister"),
        (b"PASS x\r\n", ":s 462 ada :You may not reregister"),
        (b"JOIN\r\n", ":s 461 ada JOIN :Not enough parameters"),
        (b"PRIVMSG\r\n", ":s 411 ada :No recipient given (PRIVMSG)"),
        (b"PRIVMSG #a\r\n", ":s 412 ada :No text to send"),
        (b"PRIVMSG a,b,c,d,e :x\r\n", ":s 407 ada a,b,c,d,e :Too many recipients (at most 4)"),
        (b"NOTICE a,b,c,d,e :x\r\n", None),
        (b"NOTICE #a\r\n", None),
        (b"FROB x\r\n", ":s 421 ada FROB :Unknown command"),
        (b"PING\r\n", ":s 409 ada :No origin specified"),
        (b"MODE #a +x\r\n", ":s 472 ada x :is unknown mode char to me"),
        (b"MODE #a +o\r\n", ":s 461 ada MODE :Not enough parameters"),
        (b"MODE #a +k\r\n", ":s 461 ada MODE :Not enough parameters"),
        (b"KICK #a\r\n", ":s 461 ada KICK :Not enough parameters"),
        (b"INVITE bob\r\n", ":s 461 ada INVITE :Not enough parameters"),
        (b"USER a 0 * :\r\n", ":s 462 ada :You may not reregister"),
        (b"MODE ada\r\n", ":s 221 ada +"),
        (b"MODE bob\r\n", ":s 502 ada :Can't change mode for other users"),
        (b"MODE ada +i\r\n", ":ada!~u@s MODE ada :+i"),
        (b"MODE ada +iw-x\r\n", ":s 501 ada :Unknown MODE flag"),
        (b"USERHOST\r\n", ":s 461 ada USERHOST :Not enough parameters"),
        (b"NAMES\r\n", ":s 366 ada * :End of /NAMES list"),
        (b"WHO\r\n", ":s 315 ada * :End of /WHO list"),
        (b"AUTHENTICATE\r\n", ":s 461 ada AUTHENTICATE :Not enough parameters"),
        (b"CAP FROB\r\n", ":s 410 ada FROB :Invalid CAP command"),
        (b"MOTD\r\n", ":s 422 ada :MOTD File is missing"),
    ],
)
def test_local_answers(line: bytes, reply: str | None) -> None:
    codec = IrcCodec(server_name="s")
    hello = one(codec.feed(b"NICK ada\r\nUSER u 0 * :U\r\n"))
    codec.encode(m.Welcome(nick="ada", server="s", version="1", ref=hello.ref))
    assert replies(codec.feed(line)) == ([reply] if reply else [])


# ------------------------------------------------------------------------------- commands


def test_commands_map_onto_the_model() -> None:
    codec = registered()
    out = codec.feed(
        b"JOIN #a,#b\r\nPART #a :gone home\r\nPRIVMSG #b,bob :hi\r\n"
        b"PRIVMSG #b :\x01ACTION waves\x01\r\nNOTICE bob :psst\r\nNICK ada2\r\nTOPIC #b\r\n"
        b"TOPIC #b :new topic\r\nNAMES #b\r\nWHO #b\r\nWHOIS bob\r\nLIST\r\nAWAY :lunch\r\n"
        b"AWAY\r\nQUIT :bye\r\n"
    )
    plain = [
        type(c)(**{k: getattr(c, k) for k in c.__dataclass_fields__ if k != "ref"}) for c in out
    ]
    assert plain == [
        m.Join(room="#a"),
        m.Join(room="#b"),
        m.Part(room="#a", reason="gone home"),
        m.Say(target="#b", text="hi"),
        m.Say(target="bob", text="hi"),
        m.Say(target="#b", text="waves", kind=m.Kind.ACTION),
        m.Say(target="bob", text="psst", kind=m.Kind.NOTICE),
        m.Nick(nick="ada2"),
        m.Topic(room="#b"),
        m.Topic(room="#b", text="new topic"),
        m.Who(room="#b"),
        m.Who(room="#b"),
        m.Whois(nick="bob"),
        m.ListRooms(),
        m.Away(text="lunch"),
        m.Away(text=""),
        m.Quit(reason="bye"),
    ]
    refs = [c.ref for c in out if not isinstance(c, LocalReply | m.Quit)]
    assert len(set(refs)) == len(refs)


def test_join_zero_parts_every_room_we_joined() -> None:
    codec = registered()
    joins = codec.feed(b"JOIN #a,#b\r\n")
    for join in joins:
        assert isinstance(join, m.Join)
        codec.encode(m.Joined(room=join.room, nick="ada", ref=join.ref))
        codec.encode(m.Members(room=join.room, nicks=("ada",), ref=join.ref))
    parts = codec.feed(b"JOIN 0\r\n")
    assert [p.room for p in parts if isinstance(p, m.Part)] == ["#a", "#b"]


def test_long_privmsg_is_one_message_cut_to_what_anychat_keeps() -> None:
    codec = registered()
    text = "x" * (m.MAX_TEXT_LENGTH + 50)
    out = codec.feed(f"PRIVMSG #a :{text}\r\n".encode())
    assert [len(s.text) for s in out if isinstance(s, m.Say)] == [m.MAX_TEXT_LENGTH]


@pytest.mark.parametrize("char", ["y", "é", "€", "😀"])
@pytest.mark.parametrize("kind", [b"", b"\x01ACTION "])
def test_relayed_irc_messages_fit_one_line_cut_at_a_character(char: str, kind: bytes) -> None:
    """ngircd and ergo cut, never split: the relayed line must fit 512 bytes with its CRLF."""
    codec = registered("ada_with_a_long_nick")
    head = b"PRIVMSG #room :" + kind
    body = char.encode() * ((510 - len(head)) // len(char.encode()))
    (say,) = codec.feed(head + body + b"\r\n")
    assert isinstance(say, m.Say)
    assert say.text and body.decode().startswith(say.text)
    message = m.Message(
        id=1,
        time=0,
        sender="ada_with_a_long_nick",
        target="#room",
        text=say.text,
        kind=say.kind,
        user="ada_with_a",
    )
    (line,) = lines(registered("bob"), message)
    assert len(line.encode()) + 2 <= 512
    assert len(line.encode()) + 2 > 512 - 4 or len(say.text) == m.MAX_TEXT_LENGTH


# ------------------------------------------------------------------------------- framing


def test_lines_over_512_bytes_are_refused_but_tags_do_not_count() -> None:
    codec = registered()
    body = "PRIVMSG #a :" + "y" * (510 - len("PRIVMSG #a :"))
    accepted = codec.feed(f"@+t={'z' * 3000} {body}\r\n".encode())
    assert [c.text for c in accepted if isinstance(c, m.Say)] == ["y" * m.MAX_TEXT_LENGTH]
    assert replies(codec.feed(f"{body}y\r\n".encode())) == [
        ":irc.test 417 ada :Input line was too long"
    ]


def test_a_huge_line_is_refused_once_and_the_stream_recovers() -> None:
    codec = registered()
    out = codec.feed(b"PRIVMSG #a :" + b"z" * 100_000)
    out += codec.feed(b"more\r\nPING :ok\r\n")
    assert replies(out) == [
        ":irc.test 417 ada :Input line was too long",
        ":irc.test PONG irc.test ok",
    ]


def test_bare_lf_and_crlf_both_end_lines() -> None:
    codec = registered()
    assert replies(codec.feed(b"PING a\nPING b\r\n\r\n\n")) == [
        ":irc.test PONG irc.test a",
        ":irc.test PONG irc.test b",
    ]


def test_invalid_utf8_is_read_as_latin1() -> None:
    codec = registered()
    say = one(codec.feed(b"PRIVMSG #a :caf\xe9\r\n"))
    assert isinstance(say, m.Say)
    assert say.text == "café"


@settings(max_examples=300)
@given(st.binary(max_size=2000))
def test_no_bytes_make_the_codec_raise(data: bytes) -> None:
    codec = IrcCodec()
    codec.feed(data)
    codec.feed(b"NICK ada\r\nUSER u 0 * :U\r\n" + data + b"\r\n")
    registered().feed(data + b"\r\n" + data)


irc_lines = st.lists(
    st.sampled_from(
        [
            b"CAP LS 302",
            b"NICK ada",
            b"USER u 0 * :U",
            b"CAP END",
            b"JOIN #a,#b",
            b"PING :x",
            b"PRIVMSG #a :hi there",
            b"@t=1 :me NOTICE bob :yo",
            b"\xff\xfe",
            b"",
            b"MODE #a",
            b"PRIVMSG #a :" + b"q" * 600,
        ]
    )
).map(lambda ls: b"".join(line + b"\r\n" for line in ls))


@given(irc_lines, st.integers(min_value=1, max_value=64))
def test_feeding_in_pieces_gives_the_same_result(data: bytes, step: int) -> None:
    whole = IrcCodec().feed(data)
    pieces = IrcCodec()
    out = []
    for i in range(0, len(data), step):
        out += pieces.feed(data[i : i + step])
    assert out == whole


# ------------------------------------------------------------------------------- rendering


def test_messages_render_as_privmsg_notice_and_action() -> None:
    codec = registered()
    msg = m.Message(id=1, time=0.0, sender="bob", target="#a", text="hi")
    assert lines(codec, msg) == [":bob!~bob@irc.test PRIVMSG #a :hi"]
    notice = m.Message(id=2, time=0.0, sender="bob", target="ada", text="x", kind=m.Kind.NOTICE)
    assert lines(codec, notice) == [":bob!~bob@irc.test NOTICE ada :x"]
    action = m.Message(id=3, time=0.0, sender="bob", target="#a", text="waves", kind=m.Kind.ACTION)
    assert lines(codec, action) == [":bob!~bob@irc.test PRIVMSG #a :\x01ACTION waves\x01"]


def test_server_time_tags_only_for_clients_that_asked() -> None:
    msg = m.Message(id=1, time=1767225600.25, sender="bob", target="#a", text="hi")
    assert lines(registered("ada", "server-time"), msg) == [
        "@time=2026-01-01T00:00:00.250Z :bob!~bob@irc.test PRIVMSG #a :hi"
    ]
    assert registered("ada", "server-time").encoding_key != registered("ada").encoding_key


def test_long_messages_from_other_codecs_are_split_within_512_bytes() -> None:
    codec = registered()
    text = "é" * 400  # 800 bytes of UTF-8
    out = lines(codec, m.Message(id=1, time=0, sender="bob", target="#a", text=text))
    assert len(out) == 2
    assert all(len(line.encode()) <= 510 for line in out)
    assert "".join(line.partition(" :")[2] for line in out) == text


def test_echo_message_renders_our_ack_as_the_message() -> None:
    codec = registered("ada", "echo-message")
    say = one(codec.feed(b"PRIVMSG bob :hello\r\n"))
    ack = m.Ack(id=7, time=0.0, target="bob", ref=say.ref)
    assert lines(codec, ack) == [":ada!~ada@irc.test PRIVMSG bob :hello"]
    plain = registered()
    say = one(plain.feed(b"PRIVMSG bob :hello\r\n"))
    assert plain.encode(m.Ack(id=7, time=0.0, target="bob", ref=say.ref)) == b""


@pytest.mark.parametrize(
    ("line", "code", "reply"),
    [
        (b"PRIVMSG bob :x", m.ErrorCode.NO_SUCH_NICK, "401 ada bob :No such nick/channel"),
        (b"PRIVMSG #z :x", m.ErrorCode.NOT_MEMBER, "404 ada #z :Cannot send to channel"),
        (b"PRIVMSG #z :x", m.ErrorCode.NO_SUCH_ROOM, "401 ada #z :No such nick/channel"),
        (b"NOTICE bob :x", m.ErrorCode.NO_SUCH_NICK, None),
        (b"JOIN nohash", m.ErrorCode.INVALID_ROOM, "403 ada nohash :No such channel"),
        (b"PART #z", m.ErrorCode.NOT_MEMBER, "442 ada #z :You're not on that channel"),
        (b"NICK bob", m.ErrorCode.NICK_IN_USE, "433 ada bob :Nickname is already in use"),
        (b"TOPIC #z :t", m.ErrorCode.NOT_MEMBER, "442 ada #z :You're not on that channel"),
        (b"NAMES #z", m.ErrorCode.NO_SUCH_ROOM, "366 ada #z :End of /NAMES list"),
        (b"PRIVMSG #a :x", m.ErrorCode.EMPTY_MESSAGE, "412 ada :No text to send"),
        (b"PRIVMSG #a :x", m.ErrorCode.TEXT_TOO_LONG, "NOTICE ada :why"),
    ],
)
def test_errors_become_numerics_naming_what_was_asked(
    line: bytes, code: m.ErrorCode, reply: str | None
) -> None:
    codec = registered()
    command = one(codec.feed(line + b"\r\n"))
    assert not isinstance(command, LocalReply)
    out = lines(codec, m.Error(code=code, text="why", ref=command.ref))
    assert out == ([f":irc.test {reply}"] if reply else [])


def test_whois_reply_and_unknown_nick() -> None:
    codec = registered()
    whois = one(codec.feed(b"WHOIS bob\r\n"))
    info = m.UserInfo(nick="bob", rooms=("#a",), away="out", since=5.0, idle=42.9, ref=whois.ref)
    replies_ = lines(codec, info)
    assert [line for line in replies_ if " 317 " in line] == [
        ":irc.test 317 ada bob 42 5 :seconds idle, signon time"
    ]
    assert [line.split()[1] for line in replies_] == [
        "311",
        "319",
        "312",
        "301",
        "317",
        "318",
    ]
    whois = one(codec.feed(b"WHOIS nobody\r\n"))
    error = m.Error(code=m.ErrorCode.NO_SUCH_NICK, text="", ref=whois.ref)
    assert [line.split()[1] for line in lines(codec, error)] == ["401", "318"]


def test_whowas_knows_no_history() -> None:
    assert replies(registered().feed(b"WHOWAS bob\r\n")) == [
        ":irc.test 406 ada bob :There was no such nickname",
        ":irc.test 369 ada bob :End of WHOWAS",
    ]


def test_user_modes_are_remembered_and_only_changes_echoed() -> None:
    codec = registered()
    assert replies(codec.feed(b"MODE ada +iw\r\nMODE ada +i\r\nMODE ada -w\r\nMODE ada\r\n")) == [
        ":ada!~ada@irc.test MODE ada :+iw",
        ":ada!~ada@irc.test MODE ada :-w",
        ":irc.test 221 ada +i",
    ]


def test_userhost_answers_from_whois() -> None:
    codec = registered()
    bob, nobody = codec.feed(b"USERHOST bob nobody\r\n")
    assert not isinstance(bob, LocalReply)
    assert not isinstance(nobody, LocalReply)
    info = m.UserInfo(nick="bob", away="zzz", ref=bob.ref)
    assert lines(codec, info) == [":irc.test 302 ada :bob=-~bob@irc.test"]
    missing = m.Error(code=m.ErrorCode.NO_SUCH_NICK, text="", ref=nobody.ref)
    assert lines(codec, missing) == [":irc.test 302 ada :"]


def test_ison_answers_once_for_all_its_nicks() -> None:
    codec = registered()
    asked = codec.feed(b"ISON bob cy dee\r\n")
    assert [c.nick for c in asked if isinstance(c, m.Whois)] == ["bob", "cy", "dee"]
    bob, cy, dee = (c.ref for c in asked if not isinstance(c, LocalReply))
    assert lines(codec, m.UserInfo(nick="Bob", ref=bob)) == []
    assert lines(codec, m.Error(code=m.ErrorCode.NO_SUCH_NICK, text="", ref=cy)) == []
    assert lines(codec, m.UserInfo(nick="dee", ref=dee)) == [":irc.test 303 ada :Bob dee"]
    assert replies(codec.feed(b"ISON 9\r\n")) == [":irc.test 303 ada :"]


def _ison(codec: IrcCodec, *online: str) -> list[str]:
    asked = codec.feed(f"ISON {' '.join(online)}\r\n".encode())
    refs = [c.ref for c in asked if isinstance(c, m.Whois)]
    out: list[str] = []
    for nick, ref in zip(online, refs, strict=True):
        out += lines(codec, m.UserInfo(nick=nick, ref=ref))
    return out


def test_an_idle_connection_gives_back_its_request_tables_and_works_on() -> None:
    codec = registered("ada", "labeled-response")
    assert _ison(codec, "bob", "cy") == [":irc.test 303 ada :bob cy"]
    labeled = codec.feed(b"@label=x1 ISON bob\r\n")
    (whois,) = [c for c in labeled if isinstance(c, m.Whois)]
    assert lines(codec, m.UserInfo(nick="bob", ref=whois.ref)) == [
        "@label=x1 :irc.test 303 ada :bob"
    ]
    state = codec.state
    pending = state._pending
    codec.rest()  # the label's fence is still in flight: that table stays as it is
    assert state._pending is pending and pending
    (fence,) = [c for c in labeled if isinstance(c, m.Ping)]
    assert lines(codec, m.Pong(token=fence.token, ref=fence.ref)) == []
    codec.rest()
    tables: list[object] = [state._pending, state._ison, state._pages, state._labels]
    assert all(table is _NO_ENTRIES for table in tables)
    assert _ison(codec, "dee") == [":irc.test 303 ada :dee"]
    assert _NO_ENTRIES == {}  # shared by every connection: never written to


def test_topic_query_and_change() -> None:
    codec = registered()
    query = one(codec.feed(b"TOPIC #a\r\n"))
    topic = m.RoomTopic(room="#a", text="plans", setter="bob", time=9.0, ref=query.ref)
    assert lines(codec, topic) == [
        ":irc.test 332 ada #a :plans",
        ":irc.test 333 ada #a bob 9",
    ]
    query = one(codec.feed(b"TOPIC #a\r\n"))
    empty = m.RoomTopic(room="#a", text="", ref=query.ref)
    assert lines(codec, empty) == [":irc.test 331 ada #a :No topic is set"]
    change = m.RoomTopic(room="#a", text="new plans", setter="bob", time=9.0)
    assert lines(codec, change) == [":bob!~bob@irc.test TOPIC #a :new plans"]


def test_names_are_split_to_fit_lines() -> None:
    codec = registered()
    names = one(codec.feed(b"NAMES #a\r\n"))
    nicks = tuple(f"user{i:025d}" for i in range(60))
    out = lines(codec, m.Members(room="#a", nicks=nicks, ref=names.ref))
    assert out[-1] == ":irc.test 366 ada #a :End of /NAMES list"
    assert len(out) > 2
    assert all(len(line.encode()) <= 510 for line in out)
    assert [n for line in out[:-1] for n in line.split(" :", 1)[1].split()] == list(nicks)


def test_free_text_from_other_codecs_cannot_inject_lines() -> None:
    codec = registered()
    part = m.Parted(room="#a", nick="bob", reason="bye\r\nPRIVMSG #a :forged")
    assert lines(codec, part) == [":bob!~bob@irc.test PART #a :bye  PRIVMSG #a :forged"]
    assert lines(codec, m.Bye(code=None, reason="x\ny")) == ["ERROR :Closing Link: ada (x y)"]


FANNED_OUT: list[m.Event] = [
    m.Message(id=1, time=1.0, sender="cy", target="#a", text="hi"),
    m.Message(id=1, time=1.0, sender="cy", target="#a", text="hi", kind=m.Kind.ACTION),
    m.Joined(room="#a", nick="cy"),
    m.Parted(room="#a", nick="cy", reason="r"),
    m.Quitted(nick="cy", reason="r"),
    m.NickChanged(old="cy", new="cy2"),
    m.RoomTopic(room="#a", text="t", setter="cy", time=1.0),
]


@pytest.mark.parametrize("caps", [(), ("server-time",), ("server-time", "echo-message")])
@pytest.mark.parametrize("event", FANNED_OUT)
def test_fanned_out_events_never_depend_on_the_recipient(
    caps: tuple[str, ...], event: m.Event
) -> None:
    """Codecs with equal keys must render identical bytes: fan-out encodes once per key."""
    ada, bob = registered("ada", *caps), registered("bob", *caps)
    bob.feed(b"JOIN #a\r\nAWAY :x\r\n")  # different state must not matter either
    assert ada.encoding_key == bob.encoding_key
    assert ada.encode(event) == bob.encode(event)
    assert b"ada" not in ada.encode(event)


# ------------------------------------------------------------------------------- properties

nicks = st.from_regex(r"[a-z][a-z0-9_]{0,15}", fullmatch=True)
rooms = st.from_regex(r"#[a-z0-9_.\-]{1,20}", fullmatch=True)
texts = st.text(max_size=500)
times = st.floats(min_value=0, max_value=4e9)
events = st.one_of(
    st.builds(
        m.Message,
        id=st.integers(1),
        time=times,
        sender=nicks,
        target=rooms | nicks,
        text=texts,
        kind=st.sampled_from(m.Kind),
    ),
    st.builds(m.Joined, room=rooms, nick=nicks),
    st.builds(m.Parted, room=rooms, nick=nicks, reason=texts),
    st.builds(m.Quitted, nick=nicks, reason=texts),
    st.builds(m.NickChanged, old=nicks, new=nicks),
    st.builds(m.RoomTopic, room=rooms, text=texts, setter=nicks, time=times),
    st.builds(m.Members, room=rooms, nicks=st.lists(nicks, max_size=80).map(tuple)),
    st.builds(
        m.RoomList,
        rooms=st.lists(
            st.builds(m.RoomInfo, name=rooms, members=st.integers(0), topic=texts), max_size=5
        ).map(tuple),
    ),
    st.builds(m.Error, code=st.sampled_from(m.ErrorCode), text=texts),
    st.builds(m.Bye, code=st.none(), reason=texts),
    st.builds(m.Pong, token=texts),
    st.builds(m.UserInfo, nick=nicks, rooms=st.lists(rooms, max_size=5).map(tuple), away=texts),
)


@settings(max_examples=400)
@given(events, st.booleans())
def test_any_event_renders_as_well_formed_lines(event: m.Event, server_time: bool) -> None:
    codec = registered("ada", "server-time") if server_time else registered()
    data = codec.encode(event)
    assert data == b"" or data.endswith(b"\r\n")
    for line in data.split(b"\r\n")[:-1]:
        assert b"\r" not in line
        assert b"\n" not in line
        assert b"\x00" not in line
        body = line.partition(b" ")[2] if line.startswith(b"@") else line
        if isinstance(event, m.Message | m.Members):
            assert len(body) <= 510
        parsed = parse_line(line.decode())
        assert parsed is not None
