from __future__ import annotations

import pytest
from hypothesis import given
from hypothesis import strategies as st

from anychat import model as m
from anychat.codecs import LocalReply
from anychat.codecs.text import HELP, TextCodec
from anychat.safetext import safe_text


def feed(data: bytes, max_line_bytes: int = 100) -> list[object]:
    return list(TextCodec(max_line_bytes=max_line_bytes).feed(data))


def test_plain_lines_are_said_to_the_current_room() -> None:
    assert feed(b"hello there\r\n") == [m.Say(target=None, text="hello there")]


@pytest.mark.parametrize(
    ("line", "command"),
    [
        (b"/nick ada", m.Nick(nick="ada")),
        (b"/join #rust", m.Join(room="#rust")),
        (b"/join rust", m.Join(room="#rust")),
        (b"/part", m.Part(room=None, reason="")),
        (b"/part #rust bye all", m.Part(room="#rust", reason="bye all")),
        (b"/part see you", m.Part(room=None, reason="see you")),
        (b"/msg bob hi there", m.Say(target="bob", text="hi there")),
        (b"/me waves", m.Say(target=None, text="waves", kind=m.Kind.ACTION)),
        (b"/who", m.Who(room=None)),
        (b"/who #rust", m.Who(room="#rust")),
        (b"/rooms", m.ListRooms()),
        (b"/quit gone fishing", m.Quit(reason="gone fishing")),
        (b"/ping x", m.Ping(token="x")),
        (b"//not a command", m.Say(target=None, text="/not a command")),
        (b"/NICK ada", m.Nick(nick="ada")),
    ],
)
def test_slash_commands(line: bytes, command: m.Command) -> None:
    assert feed(line + b"\n") == [command]


def test_help_is_answered_by_the_codec_itself() -> None:
    (reply,) = feed(b"/help\n")
    assert isinstance(reply, LocalReply)
    assert reply.data.decode() == HELP + "\r\n"
    for verb in ("/nick", "/join", "/part", "/msg", "/me", "/who", "/rooms", "/quit", "/help"):
        assert verb in HELP


@pytest.mark.parametrize("line", [b"/frobnicate", b"/nick", b"/msg bob", b"/join", b"/me"])
def test_bad_commands_become_invalid_not_exceptions(line: bytes) -> None:
    (invalid,) = feed(line + b"\n")
    assert isinstance(invalid, m.Invalid)
    assert invalid.code in (m.ErrorCode.UNKNOWN_COMMAND, m.ErrorCode.BAD_COMMAND)


def test_invalid_utf8_is_an_error_for_that_line_only() -> None:
    (bad, good) = feed(b"caf\xe9\nok\n")
    assert isinstance(bad, m.Invalid) and bad.code is m.ErrorCode.INVALID_UTF8
    assert good == m.Say(target=None, text="ok")


@pytest.mark.parametrize(
    "line", [b"bad utf8 \xff\xfe\xc3( end", b"\xff\xff\xff", b"\xff", b"ok \xffx", b"\xc3("]
)
def test_invalid_utf8_is_never_silently_stripped(line: bytes) -> None:
    """0xff is never UTF-8: unless it starts a real telnet command, the line is an error."""
    (bad, good) = feed(line + b"\r\nnext\r\n")
    assert bad == m.Invalid(code=m.ErrorCode.INVALID_UTF8, text="line was not valid UTF-8")
    assert good == m.Say(target=None, text="next")


def test_over_long_line_is_an_error_and_the_next_line_works() -> None:
    (bad, good) = feed(b"x" * 200 + b"\nshort\n", max_line_bytes=100)
    assert isinstance(bad, m.Invalid) and bad.code is m.ErrorCode.LINE_TOO_LONG
    assert good == m.Say(target=None, text="short")


def test_telnet_negotiation_is_ignored() -> None:
    # IAC DO ECHO, IAC WILL SGA, IAC SB NAWS ... IAC SE, then the text.
    data = b"\xff\xfd\x01\xff\xfb\x03\xff\xfa\x1f\x00\x50\x00\x18\xff\xf0hi\r\n"
    assert feed(data) == [m.Say(target=None, text="hi")]
    # IAC NOP and IAC GA, as some clients send between lines.
    assert feed(b"\xff\xf1he\xff\xf9llo\r\n") == [m.Say(target=None, text="hello")]


def test_empty_lines_are_ignored() -> None:
    assert feed(b"\r\n\n   \n") == []


@given(st.binary(max_size=500))
def test_arbitrary_bytes_never_raise(data: bytes) -> None:
    codec = TextCodec(max_line_bytes=64)
    for item in codec.feed(data):
        assert isinstance(item, m.Invalid | m.Say | LocalReply) or item.__class__.__module__ == (
            "anychat.model"
        )


def message(**kw: object) -> m.Message:
    fields: dict[str, object] = {
        "id": 1,
        "time": 0.0,
        "sender": "ada",
        "target": "#general",
        "text": "hi",
    }
    fields.update(kw)
    return m.Message(**fields)  # type: ignore[arg-type]


def render(event: m.Event) -> str:
    return TextCodec().encode(event).decode()


def test_room_message_rendering() -> None:
    line = render(message())
    assert line.endswith(" #general <ada> hi\r\n")
    assert line.startswith("[") and line[3] == ":" and line[6] == "]"


def test_action_private_and_history_rendering() -> None:
    assert render(message(kind=m.Kind.ACTION, text="waves")).endswith("#general * ada waves\r\n")
    assert render(message(target="bob")).endswith("*ada* hi\r\n")
    assert "(history)" in render(message(history=True))


def test_conversations_rendering() -> None:
    found = (
        m.Conversation(target="#general", time=0.0, id=1),
        m.Conversation(target="bob", time=60.0, id=2),
    )
    lines = render(m.ConversationList(conversations=found)).split("\r\n")
    assert lines[0] == "* conversations:"
    assert lines[1].startswith("*   #general [") and lines[2].startswith("*   bob [")
    assert render(m.ConversationList()) == "* no conversations\r\n"


def test_control_characters_from_peers_are_neutralised() -> None:
    evil = "hi \x1b[2J\x1b]0;pwned\x07 \x9b31m end"
    line = render(message(text=evil))
    assert "\x1b" not in line and "\x07" not in line and "\x9b" not in line
    assert safe_text(evil).count("\N{REPLACEMENT CHARACTER}") == 4


def test_ack_is_silent_and_errors_are_marked() -> None:
    assert TextCodec().encode(m.Ack(id=1, time=0.0, target="#x")) == b""
    assert render(m.Error(code=m.ErrorCode.NO_SUCH_NICK, text="no such nick bob")) == (
        "! no such nick bob\r\n"
    )
