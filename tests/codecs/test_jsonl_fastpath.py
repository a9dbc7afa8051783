"""The JSON codec's fast routes (say lines in, messages and acks out) match the general ones."""

from __future__ import annotations

import json

import pytest
from hypothesis import given
from hypothesis import strategies as st

from anychat import model as m
from anychat.codecs.jsonl import (
    LONE_SURROGATE,
    JsonServerCodec,
    _dumps,
    command_from_json,
    event_to_json,
)

texts = st.text(min_size=0, max_size=60)  # any code point: quotes, controls, surrogates...
refs = st.none() | st.integers(-(2**70), 2**70) | st.text(max_size=10)
times = st.floats(min_value=0, max_value=4e9, allow_nan=False)


def general(event: m.Event) -> bytes:
    return (_dumps(event_to_json(event)) + "\n").encode()


@given(
    id_=st.integers(0, 2**63),
    time=times,
    sender=texts,
    target=texts,
    text=texts,
    kind=st.sampled_from(m.Kind),
    history=st.booleans(),
)
def test_message_bytes_match_the_general_encoder(
    id_: int, time: float, sender: str, target: str, text: str, kind: m.Kind, history: bool
) -> None:
    event = m.Message(
        id=id_, time=time, sender=sender, target=target, text=text, kind=kind, history=history
    )
    assert JsonServerCodec().encode(event) == general(event)


@given(id_=st.integers(0, 2**63), time=times, target=texts, ref=refs)
def test_ack_bytes_match_the_general_encoder(
    id_: int, time: float, target: str, ref: m.Ref
) -> None:
    event = m.Ack(id=id_, time=time, target=target, ref=ref)
    assert JsonServerCodec().encode(event) == general(event)


@given(
    obj=st.fixed_dictionaries(
        {"type": st.just("say")},
        optional={
            "to": st.none() | texts | st.integers() | st.booleans(),
            "text": texts | st.none() | st.integers() | st.lists(st.integers(), max_size=2),
            "ref": refs | st.booleans() | st.floats(allow_nan=False),
            "kind": st.sampled_from(["plain", "action", "notice", "shout", 3]),
            "extra": texts,
        },
    )
)
def test_say_lines_parse_as_the_general_parser_does(obj: dict[str, object]) -> None:
    line = json.dumps(obj).encode() + b"\n"
    assert JsonServerCodec().feed(line) == [command_from_json(obj)]


def test_fast_routes_cover_the_common_shapes() -> None:
    codec = JsonServerCodec()
    line = b'{"type":"say","to":"#general","text":"hi \\"you\\" \xe2\x9c\x93","ref":7}\n'
    assert codec.feed(line) == [m.Say(target="#general", text='hi "you" ✓', ref=7)]
    (odd,) = codec.feed(b'{"type":"say","text":"x","ref":true}\n')
    assert isinstance(odd, m.Invalid)
    assert odd.code is m.ErrorCode.BAD_COMMAND


def reference(raw: bytes) -> m.Command:
    """The general route alone: json.loads on the raw bytes, then full validation."""
    try:
        obj = json.loads(raw)
    except UnicodeDecodeError:
        return m.Invalid(code=m.ErrorCode.INVALID_UTF8, text="line was not valid UTF-8")
    except ValueError as exc:
        return m.Invalid(code=m.ErrorCode.BAD_COMMAND, text=f"line is not valid JSON: {exc}")
    try:
        json.dumps(obj, ensure_ascii=False).encode()
    except UnicodeEncodeError:
        return m.Invalid(code=m.ErrorCode.INVALID_UTF8, text=LONE_SURROGATE)
    return command_from_json(obj)


ODD_LINES = [
    b'{"type":"say","text":"hi"}  ',
    b'  {"type":"say","text":"hi"}',
    b'\xef\xbb\xbf{"type":"say","text":"bom"}',
    b'{"type":"say","text":"hi"} trailing',
    b'{"type":"say","text":"\xff"}',
    b'{"type":"say","text":"hi"',
    b"NaN",
    b"[1, 2]",
    b'"just a string"',
    b'{"type":"say","text":"a\\u00e9\\ud800"}',
]


@pytest.mark.parametrize("raw", ODD_LINES)
def test_odd_lines_parse_as_the_general_route_does(raw: bytes) -> None:
    assert JsonServerCodec().feed(raw + b"\n") == [reference(raw)]


@given(raw=st.binary(max_size=40).filter(lambda b: b"\n" not in b and b.strip() != b""))
def test_any_bytes_parse_as_the_general_route_does(raw: bytes) -> None:
    assert JsonServerCodec().feed(raw + b"\n") == [reference(raw.removesuffix(b"\r"))]
