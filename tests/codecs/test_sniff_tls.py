"""TLS ClientHello recognition: real hellos from the standard library, plaintext never."""

from __future__ import annotations

import ssl

import pytest
from hypothesis import given
from hypothesis import strategies as st

from anychat.codecs.sniff import Protocol, sniff
from anychat.codecs.sniff_tls import looks_like_tls


def _client_hello(**options: object) -> bytes:
    context = ssl.create_default_context()
    for name, value in options.items():
        setattr(context, name, value)
    outgoing = ssl.MemoryBIO()
    sslobj = context.wrap_bio(ssl.MemoryBIO(), outgoing, server_hostname="chat.example")
    with pytest.raises(ssl.SSLWantReadError):
        sslobj.do_handshake()
    return outgoing.read()


@pytest.mark.parametrize(
    "options",
    [
        {},
        {"maximum_version": ssl.TLSVersion.TLSv1_2},
        {"minimum_version": ssl.TLSVersion.TLSv1_3},
    ],
)
def test_real_client_hellos_are_tls_from_the_third_byte(options: dict[str, object]) -> None:
    hello = _client_hello(**options)
    assert looks_like_tls(hello[:1]) is None
    assert looks_like_tls(hello[:2]) is None
    for size in (3, 5, 17, len(hello)):
        assert looks_like_tls(hello[:size]) is True


@pytest.mark.parametrize(
    "first",
    [
        b'{"type": "hello"}\n',
        b"NICK ada\r\n",
        b"CAP LS 302\r\n",
        b"GET / HTTP/1.1\r\n",
        b"hello\n",
        b"\r\n",
        b"\x16hello",  # Ctrl-V typed first: not a record header
        b"\x16\x03\x05",  # no such TLS version
        b"\x16\x02\x01",
        b"\x80\x2e\x01",  # an SSL 2 hello: refused as plaintext
    ],
)
def test_plaintext_is_not_tls(first: bytes) -> None:
    assert looks_like_tls(first) is False


def test_nothing_yet_needs_more() -> None:
    assert looks_like_tls(b"") is None


@given(st.binary(min_size=1, max_size=64))
def test_any_bytes_not_starting_like_a_record_are_plaintext_at_once(data: bytes) -> None:
    verdict = looks_like_tls(data)
    if data[0] != 0x16:
        assert verdict is False
    elif len(data) >= 3:
        assert verdict is (data[1] == 0x03 and data[2] <= 0x04)
    else:
        assert verdict is None or verdict is False


@given(st.binary(min_size=3, max_size=64))
def test_the_verdict_never_changes_as_bytes_arrive(data: bytes) -> None:
    final = looks_like_tls(data)
    assert final is not None
    for size in range(1, len(data)):
        early = looks_like_tls(data[:size])
        assert early is None or early is final


def test_the_protocol_sniffer_alone_would_take_a_hello_for_text() -> None:
    """Why the server must ask :func:`looks_like_tls` first."""
    assert sniff(_client_hello()) is Protocol.TEXT
