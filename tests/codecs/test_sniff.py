from __future__ import annotations

import pytest

from anychat.codecs.sniff import Protocol, sniff


@pytest.mark.parametrize(
    ("first", "expected"),
    [
        (b'{"type":"hello"}\n', Protocol.JSONL),
        (b"\r\n  {", Protocol.JSONL),
        (b"hello everyone\n", Protocol.TEXT),
        (b"/nick ada\r\n", Protocol.TEXT),
        (b"\xff\xfd\x03", Protocol.TEXT),
        (b"", None),
        (b"\r\n", None),
    ],
)
def test_first_bytes_pick_the_protocol(first: bytes, expected: Protocol | None) -> None:
    assert sniff(first) is expected
