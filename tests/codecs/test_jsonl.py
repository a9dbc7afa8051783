from __future__ import annotations

import json

import pytest
from hypothesis import given
from hypothesis import strategies as st

from anychat import model as m
from anychat.codecs.jsonl import JsonClientCodec, JsonServerCodec

COMMANDS: list[m.Command] = [
    m.Hello(nick="ada", ref=1),
    m.Hello(nick=None, autojoin=False),
    m.Join(room="#general", ref="j"),
    m.Part(room="#general", reason="bye", ref=2),
    m.Part(room=None),
    m.Say(target="#general", text='héllo "world" ✓', ref=3),
    m.Say(target="bob", text="psst", kind=m.Kind.ACTION),
    m.Say(target=None, text="here"),
    m.Nick(nick="bob"),
    m.Who(room="#general", ref=4),
    m.ListRooms(ref=5),
    m.Ping(token="t", ref=6),
    m.Quit(reason="later"),
    m.Conversations(start=1700000000.5, end=0.0, limit=20, ref=7),
]

EVENTS: list[m.Event] = [
    m.Welcome(nick="ada", server="anychat", version="1.0", ref=1),
    m.Message(id=7, time=1700000000.25, sender="ada", target="#general", text="hi ✓"),
    m.Message(
        id=8, time=1.5, sender="ada", target="bob", text="x", kind=m.Kind.NOTICE, history=True
    ),
    m.Ack(id=7, time=1700000000.25, target="#general", ref=3),
    m.Joined(room="#general", nick="ada"),
    m.Parted(room="#general", nick="ada", reason="bye", ref=2),
    m.Quitted(nick="ada", reason="gone"),
    m.NickChanged(old="ada", new="bob"),
    m.Members(room="#general", nicks=("ada", "bob"), ref=4),
    m.RoomList(rooms=(m.RoomInfo(name="#general", members=2),), ref=5),
    m.Pong(token="t", ref=6),
    m.Error(code=m.ErrorCode.NICK_IN_USE, text="taken", ref=1),
    m.Bye(code=m.ErrorCode.SHUTDOWN, reason="server shutting down"),
    m.Bye(code=None, reason="goodbye"),
    m.ConversationList(
        conversations=(
            m.Conversation(target="#general", time=1700000000.25, id=7),
            m.Conversation(target="bob", time=1700000001.5, id=9),
        ),
        ref=7,
    ),
]


@pytest.mark.parametrize("command", COMMANDS, ids=repr)
def test_commands_round_trip(command: m.Command) -> None:
    assert JsonServerCodec().feed(JsonClientCodec().encode(command)) == [command]


@pytest.mark.parametrize("event", EVENTS, ids=repr)
def test_events_round_trip(event: m.Event) -> None:
    assert JsonClientCodec().feed(JsonServerCodec().encode(event)) == [event]


def test_wire_format_of_a_message_is_documented_shape() -> None:
    line = JsonServerCodec().encode(EVENTS[1])
    assert line.endswith(b"\n") and line.count(b"\n") == 1
    assert json.loads(line) == {
        "type": "message",
        "id": 7,
        "time": 1700000000.25,
        "from": "ada",
        "to": "#general",
        "text": "hi ✓",
        "kind": "plain",
        "history": False,
    }


@pytest.mark.parametrize(
    ("line", "code"),
    [
        (b"not json\n", m.ErrorCode.BAD_COMMAND),
        (b"[1,2]\n", m.ErrorCode.BAD_COMMAND),
        (b'{"type":"dance"}\n', m.ErrorCode.UNKNOWN_COMMAND),
        (b'{"text":"no type"}\n', m.ErrorCode.UNKNOWN_COMMAND),
        (b'{"type":"say","to":"#a","text":5}\n', m.ErrorCode.BAD_COMMAND),
        (b'{"type":"say","to":"#a","text":"x","kind":"shout"}\n', m.ErrorCode.BAD_COMMAND),
        (b'{"type":"join"}\n', m.ErrorCode.BAD_COMMAND),
        (b'{"type":"ping","ref":[1]}\n', m.ErrorCode.BAD_COMMAND),
        (b'{"type":"say","to":"#a","text":"caf\xe9"}\n', m.ErrorCode.INVALID_UTF8),
    ],
)
def test_bad_lines_become_invalid_with_a_code(line: bytes, code: m.ErrorCode) -> None:
    (invalid,) = JsonServerCodec().feed(line)
    assert isinstance(invalid, m.Invalid)
    assert invalid.code is code


def test_ref_survives_into_the_error_when_readable() -> None:
    (invalid,) = JsonServerCodec().feed(b'{"type":"join","ref":9}\n')
    assert isinstance(invalid, m.Invalid) and invalid.ref == 9


def test_over_long_line_is_reported_and_parsing_goes_on() -> None:
    codec = JsonServerCodec(max_line_bytes=64)
    data = b'{"type":"say","to":"#a","text":"' + b"x" * 100 + b'"}\n{"type":"rooms"}\n'
    bad, good = codec.feed(data)
    assert isinstance(bad, m.Invalid) and bad.code is m.ErrorCode.LINE_TOO_LONG
    assert good == m.ListRooms()


@given(st.binary(max_size=500))
def test_arbitrary_bytes_never_raise(data: bytes) -> None:
    JsonServerCodec(max_line_bytes=128).feed(data)


@given(st.lists(st.sampled_from(COMMANDS), max_size=10), st.integers(min_value=1, max_value=40))
def test_slicing_the_stream_does_not_change_the_commands(
    commands: list[m.Command], step: int
) -> None:
    client = JsonClientCodec()
    data = b"".join(client.encode(c) for c in commands)
    server = JsonServerCodec()
    got = []
    for i in range(0, len(data), step):
        got += server.feed(data[i : i + step])
    assert got == commands


def test_client_rejects_garbage_from_the_server() -> None:
    with pytest.raises(ValueError, match="unknown event type"):
        JsonClientCodec().feed(b'{"type":"bogus"}\n')
