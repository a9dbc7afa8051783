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
        (b"GET / HTTP/1.1\r\n", Protocol.HTTP),
        (b"GET /ws HTTP/1.1\r\nHost: x\r\n\r\n", Protocol.HTTP),
        (b"HEAD ", Protocol.HTTP),
        (b"OPTIONS * HTTP/1.1\r\n", Protocol.HTTP),
        (b"GE", None),
        (b"OPTION", None),
        (b"get lost\n", Protocol.TEXT),
        (b"GETTING THERE\n", Protocol.TEXT),
        (b"Get real", Protocol.TEXT),
    ],
)
def test_first_bytes_pick_the_protocol(first: bytes, expected: Protocol | None) -> None:
    assert sniff(first) is expected
