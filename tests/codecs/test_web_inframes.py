"""The direct reader of common client frames, checked against wsproto reading the same bytes.

Every test here compares a session that reads the common frames itself with one that leaves
every frame to wsproto (``fast_path=False``): the outputs (commands, replies, the goodbye) must
be the same for any bytes, in any chunks, and the shortcut must really have been taken.
"""

from __future__ import annotations

import struct
from collections.abc import Sequence

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st
from wsproto.connection import Connection, ConnectionType
from wsproto.events import CloseConnection, TextMessage

from anychat import model as m
from anychat.codecs import Inbound, LocalReply
from anychat.codecs.web.inframes import read_text_frames, unmask
from anychat.codecs.web.websocket import WebSocketSession

from .webparts import chunked

KEY = b"\x37\xfa\x21\x3d"


def frame(
    payload: bytes,
    *,
    opcode: int = 1,
    fin: bool = True,
    key: bytes | None = KEY,
    rsv: int = 0,
    length_form: int | None = None,
) -> bytes:
    """One client frame, built by hand so tests can break any rule (``length_form``: 7, 16 or
    64 forces that length encoding, shortest or not)."""
    size = len(payload)
    form = length_form or (7 if size < 126 else 16 if size < 1 << 16 else 64)
    first = (0x80 if fin else 0) | (rsv << 4) | opcode
    mask_bit = 0x80 if key is not None else 0
    if form == 7:
        head = bytes([first, mask_bit | size])
    elif form == 16:
        head = bytes([first, mask_bit | 126]) + struct.pack("!H", size)
    else:
        head = bytes([first, mask_bit | 127]) + struct.pack("!Q", size)
    if key is None:
        return head + payload
    return head + key + unmask(payload, key)


def text(data: str, **kwargs: object) -> bytes:
    return frame(data.encode(), **kwargs)  # type: ignore[arg-type]


def say(n: int) -> bytes:
    return text(f'{{"type":"say","text":"message {n} ✓"}}')


Outcome = tuple[list[Inbound], m.Bye | None]


def run(chunks: Sequence[bytes], *, fast: bool, limit: int = 1000) -> tuple[Outcome, int]:
    session = WebSocketSession(max_message_bytes=limit, fast_path=fast)
    out: list[Inbound] = []
    for chunk in chunks:
        out += session.feed(chunk)
    return (out, session.hangup), session.fast_frames


def same_as_wsproto(chunks: Sequence[bytes], *, limit: int = 1000) -> tuple[Outcome, int]:
    """The outcome with the shortcut, after checking it equals wsproto's alone."""
    fast, count = run(chunks, fast=True, limit=limit)
    slow, none = run(chunks, fast=False, limit=limit)
    assert none == 0
    assert fast == slow
    return fast, count


def commands(outcome: Outcome) -> list[Inbound]:
    return [item for item in outcome[0] if not isinstance(item, LocalReply)]


def close_code(outcome: Outcome) -> int | None:
    """The code of the close frame the server sent, read back by wsproto's client side."""
    client = Connection(ConnectionType.CLIENT)
    client.receive_data(b"".join(i.data for i in outcome[0] if isinstance(i, LocalReply)))
    codes = [e.code for e in client.events() if isinstance(e, CloseConnection)]
    return codes[0] if codes else None


# ------------------------------------------------------------------ unmasking


@given(st.binary(max_size=300), st.binary(min_size=4, max_size=4))
def test_unmask_matches_wsproto_masking(payload: bytes, key: bytes) -> None:
    client = Connection(ConnectionType.CLIENT)
    masked = client.send(TextMessage(data=payload.hex()))
    data = payload.hex().encode()
    start = len(masked) - len(data)
    assert unmask(masked[start:], masked[start - 4 : start]) == data
    assert unmask(unmask(payload, key), key) == payload


def test_wsproto_frames_take_the_shortcut() -> None:
    client = Connection(ConnectionType.CLIENT)
    data = b"".join(
        client.send(TextMessage(data=f'{{"type":"say","text":"{n}"}}')) for n in range(3)
    )
    outcome, count = same_as_wsproto([data])
    assert count == 3
    assert commands(outcome) == [m.Say(target=None, text=str(n)) for n in range(3)]


@pytest.mark.parametrize("size", [0, 1, 125, 126, 65535, 65536, 70_000])
def test_every_length_form_is_read_directly(size: int) -> None:
    payload = b'{"type":"say","text":"' + b"x" * size + b'"}'
    outcome, count = same_as_wsproto([frame(payload)], limit=1 << 20)
    assert count == 1
    assert commands(outcome) == [m.Say(target=None, text="x" * size)]


# ------------------------------------------------------------------ chunks


_STREAM = b"".join(say(n) for n in range(4)) + text('{"type":"say","text":"' + "é" * 80 + '"}')


def test_frames_split_at_every_byte_give_the_same_commands() -> None:
    whole, count = same_as_wsproto([_STREAM])
    assert count == 5 and len(commands(whole)) == 5
    for cut in range(1, len(_STREAM)):
        assert same_as_wsproto([_STREAM[:cut], _STREAM[cut:]])[0] == whole, cut
    assert same_as_wsproto([bytes([b]) for b in _STREAM])[0] == whole


@given(st.lists(st.integers(min_value=0, max_value=len(_STREAM)), max_size=12))
def test_frames_in_any_chunks_give_the_same_commands(cuts: list[int]) -> None:
    assert same_as_wsproto(chunked(_STREAM, cuts))[0] == same_as_wsproto([_STREAM])[0]


# ------------------------------------------------------------------ mixed with other frames


def test_fast_frames_mixed_with_control_and_fragments_in_one_buffer() -> None:
    data = (
        say(1)
        + frame(b"hi", opcode=9)  # ping
        + say(2)
        + text('{"type":"say",', fin=False)
        + frame(b"\x00\x01", opcode=10)  # a pong in the middle of a message
        + text('"text":"split"}', opcode=0)
        + say(3)
        + frame(struct.pack("!H", 1000), opcode=8)
        + say(4)  # after the close: not read
    )
    outcome, count = same_as_wsproto([data])
    assert count == 1  # the rest followed a frame wsproto had to read
    assert commands(outcome) == [
        m.Say(target=None, text=f"message {n} ✓") if n else m.Say(target=None, text="split")
        for n in (1, 2, 0, 3)
    ]
    pongs = [i.data for i in outcome[0] if isinstance(i, LocalReply)]
    assert pongs[0] == b"\x8a\x02hi" and close_code(outcome) == 1000


def test_a_text_frame_while_a_message_is_open_is_a_protocol_error() -> None:
    # wsproto holds the start of a fragmented message: a new text frame may not interrupt it.
    chunks = [say(1) + text('{"type":', fin=False), say(2)]
    outcome, count = same_as_wsproto(chunks)
    assert count == 1 and close_code(outcome) == 1002
    assert commands(outcome) == [m.Say(target=None, text="message 1 ✓")]


def test_a_partial_frame_held_by_wsproto_is_finished_by_it() -> None:
    whole = say(2)
    chunks = [say(1) + whole[:5], whole[5:] + say(3), say(4)]
    outcome, count = same_as_wsproto(chunks)
    assert count >= 2  # the first frame, and the one after wsproto emptied its buffer
    assert len(commands(outcome)) == 4 and outcome[1] is None


@settings(max_examples=50)
@given(st.lists(st.sampled_from(["ping", "close", "fragment", "say"]), max_size=8))
def test_control_frames_anywhere_in_a_run(kinds: list[str]) -> None:
    parts = {
        "ping": frame(b"p", opcode=9),
        "close": frame(struct.pack("!H", 1001) + b"bye", opcode=8),
        "fragment": text('{"type":"say",', fin=False) + text('"text":"f"}', opcode=0),
        "say": say(7),
    }
    same_as_wsproto([say(0) + b"".join(parts[k] for k in kinds) + say(9)])


# ------------------------------------------------------------------ bad frames


def test_bad_utf8_closes_with_1007_after_the_good_frames() -> None:
    outcome, count = same_as_wsproto([say(1) + frame(b'{"a":"\xc3\x28"}') + say(2)])
    assert count == 1 and close_code(outcome) == 1007
    assert commands(outcome) == [m.Say(target=None, text="message 1 ✓")]


def test_utf8_split_across_fragments_is_wsprotos() -> None:
    payload = '{"type":"say","text":"é"}'.encode()
    cut = payload.index(b"\xc3") + 1
    outcome, _ = same_as_wsproto([frame(payload[:cut], fin=False) + frame(payload[cut:], opcode=0)])
    assert commands(outcome) == [m.Say(target=None, text="é")]


@pytest.mark.parametrize("extra", [0, 1])
def test_the_size_limit_is_the_same(extra: int) -> None:
    payload = b'{"type":"say","text":"' + b"y" * (100 - 24 + extra) + b'"}'
    outcome, count = same_as_wsproto([say(1) + frame(payload)], limit=100)
    if extra:
        assert count == 1 and close_code(outcome) == 1009
        assert outcome[1] is not None and outcome[1].code is m.ErrorCode.LINE_TOO_LONG
    else:
        assert count == 2 and outcome[1] is None


@pytest.mark.parametrize(
    "unmasked",
    [
        text('{"type":"ping"}', key=None),
        # Read as if masked, its first four bytes would be the key and the rest valid UTF-8.
        frame(b"    " + b"x" * 20, key=None) + b"    ",
    ],
    ids=["short", "looks-masked"],
)
def test_unmasked_client_frames_still_close_with_1002(unmasked: bytes) -> None:
    outcome, count = same_as_wsproto([say(1) + unmasked])
    assert count == 1 and close_code(outcome) == 1002
    assert commands(outcome) == [m.Say(target=None, text="message 1 ✓")]


@pytest.mark.parametrize(
    "bad",
    [
        text('{"type":"ping"}', length_form=16),  # a 16-bit length for a short payload
        text('{"type":"ping"}', length_form=64),
        text('{"type":"ping"}', rsv=4),  # RSV1 without an extension
        frame(b"\x00", opcode=2),  # binary: 1003
        frame(b"", opcode=3),  # a reserved opcode
    ],
    ids=["long16", "long64", "rsv1", "binary", "opcode3"],
)
def test_frames_outside_the_shortcut_are_refused_as_before(bad: bytes) -> None:
    outcome, count = same_as_wsproto([say(1) + bad + say(2)])
    assert count == 1 and close_code(outcome) in (1002, 1003)


def test_reserved_top_bit_of_a_64_bit_length_is_refused() -> None:
    bad = bytes([0x81, 0xFF]) + struct.pack("!Q", 1 << 63 | 70_000) + KEY
    outcome, count = same_as_wsproto([say(1) + bad + b"x" * 100])
    assert count == 1 and close_code(outcome) == 1002


def test_read_text_frames_stops_where_it_must() -> None:
    data = say(1) + say(2)
    payloads, used = read_text_frames(data + data[:7], 1000)
    assert len(payloads) == 2 and used == len(data)
    assert read_text_frames(b"", 10) == ([], 0)


# ------------------------------------------------------------------ random frame sequences

_OPCODES = st.sampled_from([0, 1, 1, 1, 2, 3, 8, 9, 10, 11])
_PAYLOADS = st.one_of(
    st.text(max_size=40).map(str.encode),
    st.builds(lambda s: f'{{"type":"say","text":{s!r}}}'.replace("'", '"').encode(), st.text()),
    st.binary(max_size=40),
    st.integers(min_value=1000, max_value=4999).map(lambda c: struct.pack("!H", c) + b"r"),
    st.integers(min_value=100, max_value=300).map(lambda n: b" " * n),
)


@st.composite
def frames(draw: st.DrawFn) -> bytes:
    opcode = draw(_OPCODES)
    payload = draw(_PAYLOADS)
    rare = draw(st.integers(min_value=0, max_value=19)) == 0  # now and then, break a rule
    fragment = opcode < 8 and draw(st.integers(min_value=0, max_value=3)) == 0
    return frame(
        payload,
        opcode=opcode,
        fin=not fragment and not (rare and draw(st.booleans())),
        key=None if rare and draw(st.booleans()) else draw(st.binary(min_size=4, max_size=4)),
        rsv=draw(st.integers(min_value=0, max_value=7)) if rare else 0,
        length_form=draw(st.sampled_from([None, 16, 64])) if rare else None,
    )


@settings(max_examples=400)
@given(
    st.lists(frames(), max_size=12),
    st.lists(st.integers(min_value=0, max_value=2000), max_size=6),
    st.sampled_from([16, 64, 1000]),
)
def test_random_frame_sequences_decode_as_wsproto_decodes_them(
    parts: list[bytes], cuts: list[int], limit: int
) -> None:
    data = b"".join(parts)
    same_as_wsproto(chunked(data, cuts), limit=limit)
