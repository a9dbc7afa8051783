"""Properties every decoder must have, whatever arrives: arbitrary bytes, cut anywhere.

- Feeding bytes whole or in arbitrary pieces gives the same commands (TCP may cut anywhere).
- ``feed()`` never raises (the JSON client codec raises only ``ValueError``, its documented
  answer to a broken server), and whatever it decodes renders in every codec.

Inputs are both raw bytes and mutations of real protocol lines, so the interesting paths
(a command with one odd field) are reached as well as the framing ones. The coverage-guided
runs of the same targets are in ``tests/fuzz/``.
"""

from __future__ import annotations

from collections.abc import Callable

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from anychat import model as m
from anychat.codecs import LocalReply
from anychat.codecs.irc import IrcCodec
from anychat.codecs.jsonl import JsonClientCodec, JsonServerCodec
from anychat.codecs.text import TextCodec
from tests.fuzz import targets

_LINES = {
    "text": [
        b"hello",
        b"/join #ops",
        b"/history #general 12",
        b"/history \xc2\xb2",
        b"/msg bob hi",
        b"/me waves",
        b"/part #ops bye",
        b"/login ada pw",
        b"\xff\xfb\x01/ping x",
    ],
    "jsonl": [
        b'{"type":"hello","nick":"ada"}',
        b'{"type":"join","room":"#general","ref":1}',
        b'{"type":"say","to":"#general","text":"hi","ref":"a","key":"k"}',
        b'{"type":"history","to":"#general","before":99999999999999999999999}',
        b'{"type":"topic","room":"#x","text":"\\ud800"}',
        b'{"type":"part","room":null,"reason":"r"}',
        b"[" * 1100,
    ],
    "irc": [
        b"CAP LS 302",
        b"CAP LS \xc2\xb2",
        b"NICK ada",
        b"USER ada 0 * :Ada",
        b"CAP END",
        b"PRIVMSG #a,bob :\x01ACTION waves\x01",
        b"MODE ada +iw-w",
        b"ISON a b",
        b"AUTHENTICATE PLAIN",
        b"AUTHENTICATE AGFkYQBwdw==",
        b"@a=b\\ :src JOIN #a,#b",
    ],
    "json-client": [
        b'{"type":"message","id":1,"time":1.5,"from":"bob","to":"#g","text":"hi"}',
        b'{"type":"history","to":"#g","messages":[1]}',
        b'{"type":"rooms","rooms":[{"name":"#g"}]}',
        b'{"type":"error","code":[],"text":"x"}',
        b"[" * 1100,
    ],
}


def _mutated(lines: list[bytes]) -> st.SearchStrategy[bytes]:
    """Real lines, each maybe with bytes replaced, inserted or cut, joined by LF or CRLF."""

    @st.composite
    def mutate(draw: st.DrawFn) -> bytes:
        line = bytearray(draw(st.sampled_from(lines)))
        for _ in range(draw(st.integers(0, 4))):
            at = draw(st.integers(0, len(line)))
            action = draw(st.sampled_from(("replace", "insert", "cut")))
            byte = draw(st.integers(0, 255))
            if action == "insert" or not line:
                line[at:at] = bytes([byte])
            elif action == "replace":
                line[min(at, len(line) - 1)] = byte
            else:
                del line[at : at + draw(st.integers(1, 8))]
        return bytes(line) + draw(st.sampled_from((b"\n", b"\r\n", b"")))

    return st.lists(mutate(), max_size=8).map(b"".join)


def _inputs(name: str) -> st.SearchStrategy[bytes]:
    seed = st.binary(min_size=2, max_size=2)
    body = st.one_of(st.binary(max_size=600), _mutated(_LINES[name.split("-registered")[0]]))
    return st.tuples(seed, body).map(b"".join)


_TARGETS: dict[str, Callable[[bytes], None]] = {
    "text": targets.fuzz_text,
    "jsonl": targets.fuzz_jsonl,
    "irc": targets.fuzz_irc,
    "json-client": targets.fuzz_json_client,
}


@pytest.mark.parametrize("name", sorted(_TARGETS))
def test_any_bytes_any_split_same_commands_never_raises(name: str) -> None:
    @settings(max_examples=300, deadline=None, suppress_health_check=[HealthCheck.too_slow])
    @given(_inputs(name))
    def check(data: bytes) -> None:
        _TARGETS[name](data)

    check()


@settings(max_examples=300, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(_inputs("irc"))
def test_irc_after_registration(data: bytes) -> None:
    targets.fuzz_irc_registered(data)


# ------------------------------------------------------------------ the reported crashes


def test_irc_cap_ls_with_a_superscript_digit_is_answered() -> None:
    codec = IrcCodec()
    (reply,) = codec.feed("CAP LS ²\r\n".encode())
    assert b"CAP * LS :" in reply.data  # type: ignore[union-attr]
    assert "sasl=PLAIN" not in reply.data.decode()  # type: ignore[union-attr]


@pytest.mark.parametrize("word", ["²", "١٢", "12345678901234567890123"])
def test_text_history_with_non_ascii_digits_is_a_target_not_a_crash(word: str) -> None:
    (cmd,) = TextCodec().feed(f"/history {word}\n".encode())
    assert cmd == m.History(target=word, limit=20)
    (cmd,) = TextCodec().feed(f"/history #general {word}\n".encode())
    assert isinstance(cmd, m.Invalid) and cmd.code is m.ErrorCode.BAD_COMMAND


def test_json_history_ids_beyond_64_bits_are_refused() -> None:
    (cmd,) = JsonServerCodec().feed(b'{"type":"history","before":99999999999999999999999}\n')
    assert isinstance(cmd, m.Invalid) and "out of range" in cmd.text


def test_json_client_deep_nesting_is_a_value_error() -> None:
    with pytest.raises(ValueError, match="nested too deeply"):
        JsonClientCodec().feed(b'{"deep":' + b"[" * 1100 + b"\n")


@pytest.mark.parametrize("size", [1, 2, 3])
def test_a_cr_at_the_line_limit_counts_the_same_split_or_whole(size: int) -> None:
    line = b"x" * 63 + b"\r\n"  # exactly the limit once the CRLF is taken off
    whole = TextCodec(max_line_bytes=63).feed(line)
    codec = TextCodec(max_line_bytes=63)
    split = [c for i in range(0, len(line), size) for c in codec.feed(line[i : i + size])]
    assert whole == split == [m.Say(target=None, text="x" * 63)]


@pytest.mark.parametrize(
    "line", ["CHATHISTORY LATEST #a * ²", "CHATHISTORY BEFORE #a msgid=² 10", "CAP LS ³⁰²"]
)
def test_irc_superscript_numbers_are_answered(line: str) -> None:
    codec = IrcCodec()
    codec.feed(b"NICK ada\r\nUSER a 0 * :A\r\n")
    codec.state.registered = True
    out = codec.feed(line.encode() + b"\r\n")
    assert out and all(isinstance(item, m.Invalid | LocalReply) for item in out)
