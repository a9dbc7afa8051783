"""The web codec's WebSocket side, without sockets: wsproto's client side talks to it."""

from __future__ import annotations

import json
import struct
from collections.abc import Sequence

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st
from wsproto.connection import Connection, ConnectionState, ConnectionType
from wsproto.events import (
    BytesMessage,
    CloseConnection,
    Ping,
    Pong,
    RejectConnection,
    TextMessage,
)

from anychat import model as m
from anychat.codecs import LocalReply
from anychat.codecs.jsonl import JsonServerCodec, event_from_json
from anychat.codecs.web import WebCodec
from anychat.codecs.web.frames import close_frame, ping_frame, text_frame
from anychat.codecs.web.http import accept_key

from .test_jsonl import EVENTS
from .webparts import HOST, WsClient, chunked, get, request, small_assets


def codec(**kwargs: object) -> WebCodec:
    return WebCodec(assets=small_assets(), **kwargs)  # type: ignore[arg-type]


def opened(**kwargs: object) -> WsClient:
    return WsClient(codec(**kwargs)).open()


def texts(events: Sequence[object]) -> list[str]:
    return [e.data for e in events if isinstance(e, TextMessage)]


def closes(events: Sequence[object]) -> list[CloseConnection]:
    return [e for e in events if isinstance(e, CloseConnection)]


def test_accept_key_is_the_rfc_example() -> None:
    assert accept_key(b"dGhlIHNhbXBsZSBub25jZQ==") == b"s3pPLMBiTxaQ9kYGzzhZRbK+xOo="


def test_wsproto_client_completes_the_handshake() -> None:
    client = opened()
    assert client.ws.state is ConnectionState.OPEN
    assert client.codec.protocol == "websocket" and client.codec.encoding_key == "websocket"
    assert client.codec.hangup is None


def test_a_text_frame_is_one_command() -> None:
    client = opened()
    assert client.send(TextMessage(data='{"type":"hello","nick":"ada","ref":1}')) == b""
    assert client.commands() == [m.Hello(nick="ada", ref=1)]


def test_a_fragmented_message_is_one_command() -> None:
    client = opened()
    client.send(TextMessage(data='{"type":"say","to":"#g",', message_finished=False))
    assert client.commands() == []
    client.send(TextMessage(data='"text":"hé"}', message_finished=True))
    assert client.commands() == [m.Say(target="#g", text="hé")]


def test_pretty_printed_json_in_one_frame_is_fine() -> None:
    client = opened()
    client.send(TextMessage(data=json.dumps({"type": "join", "room": "#a"}, indent=2)))
    assert client.commands() == [m.Join(room="#a")]


@pytest.mark.parametrize(
    "text",
    [
        "not json",
        "[1, 2]",
        '{"type": "fly"}',
        '{"type": "say", "text": 5}',
        '{"type":"say","text":"\\ud800"}',
        "[" * 100_000,
        '{"type":"join","room":"#a"} trailing',
    ],
    ids=lambda t: t[:20],
)
def test_bad_commands_get_the_same_errors_as_json_lines(text: str) -> None:
    client = opened(max_message_bytes=1 << 20)
    client.send(TextMessage(data=text))
    assert client.commands() == JsonServerCodec(max_line_bytes=1 << 20).feed(text.encode() + b"\n")
    assert client.codec.hangup is None


@settings(max_examples=200)
@given(st.text(max_size=200).filter(lambda t: "\n" not in t and "\r" not in t))
def test_any_text_parses_as_the_json_line_would(text: str) -> None:
    client = opened()
    client.send(TextMessage(data=text))
    assert client.commands() == JsonServerCodec().feed(text.encode() + b"\n")


@pytest.mark.parametrize("event", EVENTS, ids=repr)
def test_events_are_json_text_frames_the_client_reads_back(event: m.Event) -> None:
    client = opened()
    data = client.codec.encode(event)
    assert data == text_frame(JsonServerCodec().encode(event).rstrip(b"\n")) or type(event) is m.Bye
    received = client.receive(data)
    assert [event_from_json(json.loads(text)) for text in texts(received)] == [event]


@pytest.mark.parametrize("size", [0, 125, 126, 65535, 65536, 200_000])
def test_frames_of_every_length_class_parse(size: int) -> None:
    client = opened()
    event = m.Message(id=1, time=1.0, sender="ada", target="#g", text="x" * size)
    (text,) = texts(client.receive(client.codec.encode(event)))
    assert json.loads(text)["text"] == "x" * size


def test_fan_out_bytes_are_identical_for_every_websocket() -> None:
    first, second = opened(), opened()
    event = m.Message(id=5, time=2.5, sender="ada", target="#general", text="hi ✓")
    assert first.codec.encoding_key == second.codec.encoding_key
    assert first.codec.encode(event) == second.codec.encode(event)
    # Closing one does not change what the other's encoding gives everyone.
    first.codec.encode(m.Bye(code=None, reason="bye"))
    assert first.codec.encode(event) == second.codec.encode(event)


def test_a_message_past_the_limit_closes_with_1009() -> None:
    client = opened(max_message_bytes=64)
    reply = client.send(TextMessage(data="x" * 65))
    (close,) = closes(client.receive(reply))
    assert close.code == 1009 and "64" in (close.reason or "")
    assert client.codec.hangup is not None
    assert client.codec.hangup.code is m.ErrorCode.LINE_TOO_LONG
    assert client.commands() == []


def test_a_message_just_at_the_limit_is_fine() -> None:
    text = '{"type":"say","text":"' + "y" * 40 + '"}'
    client = opened(max_message_bytes=len(text))
    client.send(TextMessage(data=text))
    assert client.commands() == [m.Say(target=None, text="y" * 40)]


def test_a_fragmented_message_past_the_limit_closes_with_1009() -> None:
    client = opened(max_message_bytes=100)
    for _ in range(3):
        reply = client.send(TextMessage(data="z" * 40, message_finished=False))
    (close,) = closes(client.receive(reply))
    assert close.code == 1009


def test_a_huge_declared_frame_is_cut_without_buffering_it() -> None:
    client = opened(max_message_bytes=1000)
    header = bytes([0x81, 0xFF]) + struct.pack("!Q", 1 << 40) + b"\0\0\0\0"
    reply = client.send_raw(header + b"a" * 1500)
    (close,) = closes(client.receive(reply))
    assert close.code == 1009
    assert client.send_raw(b"a" * 100_000) == b""  # the rest is ignored


def test_invalid_utf8_closes_with_1007() -> None:
    client = opened()
    masked = bytes([0x81, 0x82, 0, 0, 0, 0]) + b"\xc3\x28"
    (close,) = closes(client.receive(client.send_raw(masked)))
    assert close.code == 1007 and client.codec.hangup is not None


def test_binary_frames_close_with_1003() -> None:
    client = opened()
    (close,) = closes(client.receive(client.send(BytesMessage(data=b"\x00\x01"))))
    assert close.code == 1003


def test_unmasked_client_frames_are_a_protocol_error() -> None:
    client = opened()
    (close,) = closes(client.receive(client.send_raw(text_frame(b'{"type":"ping"}'))))
    assert close.code == 1002


def test_ping_gets_a_pong_with_its_payload() -> None:
    client = opened()
    events = client.receive(client.send(Ping(payload=b"are you there")))
    assert [e.payload for e in events if isinstance(e, Pong)] == [b"are you there"]
    assert client.codec.hangup is None


def test_keepalive_is_a_ping_the_client_answers() -> None:
    client = opened()
    ping = client.codec.keepalive("anychat")
    assert ping == ping_frame("anychat")
    (event,) = client.receive(ping)
    assert isinstance(event, Ping) and event.payload == b"anychat"
    assert client.send(event.response()) == b""  # a pong needs no answer


def test_client_close_is_echoed_then_hung_up() -> None:
    client = opened()
    events = client.receive(client.send(CloseConnection(code=1000, reason="done")))
    assert [c.code for c in closes(events)] == [1000]
    assert client.ws.state is ConnectionState.CLOSED
    assert client.codec.hangup is not None
    assert client.codec.encode(m.Bye(code=None, reason="x")) == b""  # nothing after a close


def test_server_goodbye_is_a_bye_event_then_a_close_frame() -> None:
    client = opened()
    bye = m.Bye(code=m.ErrorCode.SHUTDOWN, reason="server shutting down")
    events = client.receive(client.codec.encode(bye))
    assert [json.loads(t)["type"] for t in texts(events)] == ["bye"]
    (close,) = closes(events)
    assert close.code == 1001 and close.reason == "server shutting down"
    # The client completes the handshake; the server has nothing more to say.
    assert client.send(close.response()) == b""
    assert client.codec.hangup is not None


@pytest.mark.parametrize(
    ("code", "close_code"),
    [
        (None, 1000),
        (m.ErrorCode.TOO_MANY_CONNECTIONS, 1013),
        (m.ErrorCode.SEND_QUEUE_EXCEEDED, 1008),
    ],
)
def test_goodbye_close_codes(code: m.ErrorCode | None, close_code: int) -> None:
    client = opened()
    (close,) = closes(client.receive(client.codec.encode(m.Bye(code=code, reason="r" * 300))))
    assert close.code == close_code and len((close.reason or "").encode()) <= 123


def test_long_close_reasons_are_cut_at_a_character_boundary() -> None:
    frame = close_frame(1000, "é" * 100)
    assert frame[1] <= 125
    frame[4:].decode()  # valid UTF-8


def test_frames_after_the_handshake_in_the_same_packet_are_read() -> None:
    c = codec()
    hello = Connection(ConnectionType.CLIENT).send(TextMessage(data='{"type":"hello","nick":"bo"}'))
    # The client's handshake and first frame arrive in one read.
    out = c.feed(WsClient(c).handshake + hello)
    assert [x for x in out if not isinstance(x, LocalReply)] == [m.Hello(nick="bo")]


# ------------------------------------------------------------------ the handshake's checks


def test_a_foreign_origin_is_refused_with_403() -> None:
    refused = WsClient(codec(), origin=b"https://evil.example").refused()
    assert refused.status_code == 403


@pytest.mark.parametrize(
    ("origin", "allowed", "ok"),
    [
        (b"http://chat.test:3000", (), True),
        (b"HTTP://CHAT.TEST:3000", (), True),
        (b"https://chat.test:3000", (), True),
        (b"http://chat.test:3001", (), False),
        (b"http://chat.test", (), False),
        (b"null", (), False),
        (b"null", ("null",), True),
        (b"http://app.example", ("http://app.example",), True),
        (b"http://app.example:80", ("http://app.example",), True),
        (b"http://other.example", ("http://app.example",), False),
        (b"http://other.example", ("*",), True),
        (b"http://user@chat.test:3000", (), False),
        (b"\xff", (), False),
        (None, (), True),  # not a browser: nothing to hijack
    ],
)
def test_origin_policy(origin: bytes | None, allowed: tuple[str, ...], ok: bool) -> None:
    client = WsClient(codec(allowed_origins=allowed), origin=origin)
    if ok:
        client.open()
    else:
        assert client.refused().status_code == 403


def test_default_ports_count_as_the_same_origin() -> None:
    c = codec()
    raw = _handshake(host=b"chat.test", origin=b"http://chat.test:80")
    reply = c.feed(raw)
    assert reply and isinstance(reply[0], LocalReply) and reply[0].data.startswith(b"HTTP/1.1 101")


def _handshake(
    *,
    host: bytes = HOST,
    origin: bytes = b"http://chat.test:3000",
    version: str = "13",
    key: str = "dGhlIHNhbXBsZSBub25jZQ==",
    connection: str = "Upgrade",
    target: str = "/ws",
) -> bytes:
    return request(
        target,
        headers=[
            ("Upgrade", "websocket"),
            ("Connection", connection),
            ("Sec-WebSocket-Key", key),
            ("Sec-WebSocket-Version", version),
            ("Origin", origin.decode()),
        ],
        host=host,
    )


@pytest.mark.parametrize(
    ("kwargs", "status"),
    [
        ({"version": "8"}, 426),
        ({"key": "short"}, 400),
        ({"key": "not base64!!"}, 400),
        ({"connection": "keep-alive"}, 400),
    ],
)
def test_bad_handshakes_are_refused(kwargs: dict[str, str], status: int) -> None:
    c = codec()
    reply = get(c, _handshake(**kwargs))  # type: ignore[arg-type]
    assert reply.status == status and c.hangup is not None and c.protocol == "http"
    if status == 426:
        assert reply.header("sec-websocket-version") == "13"


def test_an_upgrade_elsewhere_is_just_a_request() -> None:
    c = codec()
    reply = get(c, _handshake(target="/"))
    assert reply.status == 200 and c.protocol == "http"


def test_websocket_rejects_are_readable_by_the_client() -> None:
    refused = WsClient(codec(), origin=b"http://evil.example").refused()
    assert isinstance(refused, RejectConnection)


# ------------------------------------------------------------------ slicing and garbage

_SESSION_MESSAGES = [
    TextMessage(data='{"type":"hello","nick":"ada"}'),
    Ping(payload=b"p"),
    TextMessage(data='{"type":"join",', message_finished=False),
    TextMessage(data='"room":"#x"}'),
    TextMessage(data='{"type":"say","text":"' + "é" * 100 + '"}'),
    CloseConnection(code=1000),
]


def _session_bytes() -> bytes:
    """The handshake and every message, as one byte stream (frames masked by wsproto)."""
    frames = Connection(ConnectionType.CLIENT)
    return WsClient(codec()).handshake + b"".join(frames.send(msg) for msg in _SESSION_MESSAGES)


_SESSION = _session_bytes()


def _run(chunks: list[bytes]) -> tuple[bytes, list[object]]:
    c = codec()
    replies = b""
    commands: list[object] = []
    for chunk in chunks:
        for item in c.feed(chunk):
            if isinstance(item, LocalReply):
                replies += item.data
            else:
                commands.append(item)
    assert c.hangup is not None  # the close ended it
    return replies, commands


def test_a_session_split_at_every_byte_gives_the_same_result() -> None:
    whole = _run([_SESSION])
    assert whole[1] == [m.Hello(nick="ada"), m.Join(room="#x"), m.Say(target=None, text="é" * 100)]
    for cut in range(1, len(_SESSION)):
        assert _run([_SESSION[:cut], _SESSION[cut:]]) == whole, cut
    assert _run([bytes([b]) for b in _SESSION]) == whole


@given(st.lists(st.integers(min_value=0, max_value=5000), max_size=20))
def test_a_session_in_any_chunks_gives_the_same_result(cuts: list[int]) -> None:
    assert _run(chunked(_SESSION, cuts)) == _run([_SESSION])


@settings(max_examples=300)
@given(st.lists(st.binary(max_size=64), max_size=10))
def test_garbage_after_the_upgrade_never_raises(chunks: list[bytes]) -> None:
    client = opened()
    for chunk in chunks:
        client.codec.feed(chunk)
    if client.codec.hangup is not None:
        assert client.codec.feed(b"\x81\x80\0\0\0\0") == []
