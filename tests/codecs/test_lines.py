from __future__ import annotations

import pytest
from hypothesis import given
from hypothesis import strategies as st

from anychat.codecs._lines import LineBuffer


def feed_in_steps(data: bytes, step: int, limit: int = 16) -> list[bytes | None]:
    buffer = LineBuffer(limit)
    out: list[bytes | None] = []
    for i in range(0, len(data), step):
        out += buffer.feed(data[i : i + step])
    return out


def test_lf_and_crlf_both_end_lines() -> None:
    assert LineBuffer(100).feed(b"a\r\nb\nc") == [b"a", b"b"]


def test_incomplete_line_waits_for_its_newline() -> None:
    buffer = LineBuffer(100)
    assert buffer.feed(b"hel") == []
    assert buffer.pending_bytes == 3
    assert buffer.feed(b"lo\n") == [b"hello"]


def test_over_long_line_is_reported_once_and_skipped() -> None:
    buffer = LineBuffer(4)
    assert buffer.feed(b"ok\n123456") == [b"ok", None]
    assert buffer.pending_bytes == 0  # not buffered while discarding
    assert buffer.feed(b"789") == []
    assert buffer.feed(b"0\nfine\n") == [b"fine"]


def test_line_of_exactly_the_limit_is_kept() -> None:
    assert LineBuffer(4).feed(b"1234\n12345\n") == [b"1234", None]


@pytest.mark.parametrize("step", [1, 2, 7, 4096])
def test_slicing_does_not_change_the_lines(step: int) -> None:
    data = b"one\r\ntwo\n" + b"x" * 40 + b"\nthree\n\nfour"
    assert feed_in_steps(data, step) == [b"one", b"two", None, b"three", b""]


@given(st.binary(max_size=300), st.integers(min_value=1, max_value=50))
def test_any_slicing_gives_the_same_lines(data: bytes, step: int) -> None:
    assert feed_in_steps(data, step) == feed_in_steps(data, len(data) or 1)
