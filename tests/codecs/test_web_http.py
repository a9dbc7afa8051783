"""The web codec's HTTP side, without sockets: every response is parsed back with h11."""

from __future__ import annotations

import gzip

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from anychat import model as m
from anychat.codecs import LocalReply
from anychat.codecs.web import WebCodec
from anychat.codecs.web.http import MAX_HEAD_BYTES, MAX_PIPELINED
from anychat.metrics import ServerStats

from .webparts import chunked, get, parse_replies, replies_bytes, request, small_assets


def codec(**kwargs: object) -> WebCodec:
    return WebCodec(assets=small_assets(), **kwargs)  # type: ignore[arg-type]


def test_root_serves_the_page_with_security_headers() -> None:
    assets = small_assets()
    reply = get(WebCodec(assets=assets), request("/"))
    page = assets.get("/index.html")
    assert page is not None
    assert reply.status == 200
    assert reply.body == page.body
    assert reply.header("content-type") == "text/html; charset=utf-8"
    assert reply.header("etag") == page.etag
    assert reply.header("cache-control") == "no-cache"
    csp = reply.header("content-security-policy") or ""
    assert "default-src 'self'" in csp and "script-src 'self'" in csp
    assert "frame-ancestors 'none'" in csp
    assert "unsafe-inline" not in csp and "unsafe-eval" not in csp
    assert "ws://chat.test:3000" in csp and "wss://chat.test:3000" in csp
    assert reply.header("x-content-type-options") == "nosniff"
    assert reply.header("referrer-policy") == "no-referrer"
    assert reply.header("x-frame-options") == "DENY"


@pytest.mark.parametrize(
    ("target", "status"),
    [("/", 200), ("/nope", 404), ("/healthz", 200), ("/metrics", 200), ("/ws", 426)],
)
def test_every_response_carries_the_security_headers(target: str, status: int) -> None:
    reply = get(codec(status=ServerStats), request(target))
    assert reply.status == status
    for name in ("content-security-policy", "x-content-type-options", "referrer-policy"):
        assert reply.header(name), (target, name)


def test_a_hostile_host_header_stays_out_of_the_policy() -> None:
    evil = b"x; script-src 'unsafe-inline'"
    reply = get(codec(), request("/", host=evil))
    csp = reply.header("content-security-policy") or ""
    assert "unsafe-inline" not in csp and "connect-src 'self';" in csp


def test_files_by_path_with_their_content_types() -> None:
    c = codec()
    js = get(c, request("/app.js"))
    assert js.status == 200 and js.header("content-type") == "text/javascript; charset=utf-8"
    png = get(c, request("/logo.png?v=2"))
    assert png.status == 200 and png.header("content-type") == "image/png"
    assert png.body == bytes(range(256)) * 4


def test_gzip_when_accepted_and_it_pays() -> None:
    c = codec()
    plain = get(c, request("/app.js"))
    zipped = get(c, request("/app.js", headers=[("Accept-Encoding", "br, gzip")]))
    assert zipped.header("content-encoding") == "gzip"
    assert gzip.decompress(zipped.body) == plain.body
    assert len(zipped.body) < len(plain.body)
    assert zipped.header("etag") != plain.header("etag")
    assert zipped.header("vary") == plain.header("vary") == "Accept-Encoding"
    refused = get(c, request("/app.js", headers=[("Accept-Encoding", "gzip;q=0, *")]))
    assert refused.header("content-encoding") is None and refused.body == plain.body
    # Tiny files and images are never compressed.
    for path in ("/tiny.css", "/logo.png"):
        other = get(c, request(path, headers=[("Accept-Encoding", "gzip")]))
        assert other.header("content-encoding") is None


def test_if_none_match_gives_304_without_a_body() -> None:
    c = codec()
    first = get(c, request("/app.js"))
    tag = first.header("etag") or ""
    again = get(c, request("/app.js", headers=[("If-None-Match", f'"other", W/{tag}')]))
    assert again.status == 304 and again.body == b"" and again.header("etag") == tag
    changed = get(c, request("/app.js", headers=[("If-None-Match", '"stale"')]))
    assert changed.status == 200 and changed.body == first.body


def test_head_sends_the_headers_only_and_keeps_the_connection() -> None:
    c = codec()
    head = get(c, request("/app.js", "HEAD"), "HEAD")
    full = get(c, request("/app.js"))
    assert head.status == 200 and head.body == b""
    assert head.header("content-length") == str(len(full.body))
    assert c.hangup is None


def test_healthz_follows_the_server_state() -> None:
    serving = True
    c = codec(status=lambda: ServerStats(serving=serving))
    assert get(c, request("/healthz")).status == 200
    serving = False
    reply = get(c, request("/healthz"))
    assert reply.status == 503 and b"shutting down" in reply.body


def test_metrics_render_the_snapshot() -> None:
    stats = ServerStats(
        connections={"jsonl": 3, "websocket": 2},
        rooms=4,
        messages_in=10,
        messages_out=25,
        slow_consumer_cuts=1,
        commit_buckets=(1,) * 12 + (2,),
        commit_count=2,
        commit_seconds=0.5,
    )
    reply = get(codec(status=lambda: stats, version="9.9"), request("/metrics"))
    assert reply.status == 200
    assert reply.header("content-type") == "text/plain; version=0.0.4; charset=utf-8"
    lines = reply.body.decode().splitlines()
    for expected in (
        'anychat_connections{protocol="jsonl"} 3',
        'anychat_connections{protocol="websocket"} 2',
        "anychat_rooms 4",
        "anychat_messages_in_total 10",
        "anychat_messages_out_total 25",
        "anychat_slow_consumer_cuts_total 1",
        'anychat_store_commit_seconds_bucket{le="+Inf"} 2',
        "anychat_store_commit_seconds_count 2",
        'anychat_build_info{version="9.9"} 1',
    ):
        assert expected in lines


def test_metrics_without_a_source_are_not_found() -> None:
    assert get(codec(), request("/metrics")).status == 404


def test_unknown_paths_get_the_404_page() -> None:
    reply = get(codec(), request("/../../etc/passwd"))
    assert reply.status == 404 and b"Not found" in reply.body
    assert reply.header("content-type") == "text/html; charset=utf-8"


def test_absolute_form_targets_are_understood() -> None:
    assert get(codec(), request("http://chat.test:3000/app.js")).status == 200


def test_other_methods_get_405_and_a_close() -> None:
    c = codec()
    reply = get(c, request("/", "POST", [("Content-Length", "5")]) + b"hello")
    assert reply.status == 405 and reply.header("allow") == "GET, HEAD"
    assert reply.header("connection") == "close"
    assert c.hangup is not None
    assert c.feed(request("/")) == []  # nothing more is read


def test_a_declared_body_past_the_limit_gets_413() -> None:
    c = codec(max_message_bytes=100)
    reply = get(c, request("/", headers=[("Content-Length", "101")]))
    assert reply.status == 413 and c.hangup is not None


def test_a_chunked_body_past_the_limit_gets_413() -> None:
    c = codec(max_message_bytes=100)
    head = request("/", headers=[("Transfer-Encoding", "chunked")])
    out = c.feed(head + b"40\r\n" + b"x" * 64 + b"\r\n")
    assert out == [] and c.hangup is None
    reply = get(c, b"40\r\n" + b"x" * 64 + b"\r\n")
    assert reply.status == 413 and c.hangup is not None


def test_a_small_body_on_get_is_read_and_ignored() -> None:
    c = codec()
    raw = request("/app.js", headers=[("Content-Length", "3")]) + b"abc" + request("/")
    replies = parse_replies(replies_bytes(c.feed(raw)), ["GET", "GET"])
    assert [r.status for r in replies] == [200, 200] and c.hangup is None


def test_an_oversized_head_gets_431() -> None:
    c = codec()
    reply = get(c, b"GET / HTTP/1.1\r\nHost: x\r\nX-Big: " + b"a" * (MAX_HEAD_BYTES + 10))
    assert reply.status == 431 and c.hangup is not None


@pytest.mark.parametrize(
    "raw",
    [
        b"GET / HTTP/1.1\r\n\r\n",  # no Host
        b"GET / HTTP/1.1\r\nHost: x\r\nBad Header\r\n\r\n",
        b"GET /\x00 HTTP/1.1\r\nHost: x\r\n\r\n",
        b"GET / HTTP/9.9\r\nHost: x\r\n\r\n",
        b"GET / HTTP/1.1\r\nHost: x\r\nContent-Length: -1\r\n\r\n",
        b"GET / HTTP/1.1\r\nHost: x\r\nContent-Length: 1\r\nContent-Length: 2\r\n\r\n",
    ],
)
def test_malformed_requests_get_400_and_a_close(raw: bytes) -> None:
    c = codec()
    reply = get(c, raw)
    assert reply.status in (400, 505)
    assert reply.header("connection") == "close" and c.hangup is not None


def test_keep_alive_and_pipelining_answer_in_order() -> None:
    c = codec(status=ServerStats)
    raw = request("/app.js") + request("/nope", "HEAD") + request("/healthz")
    replies = parse_replies(replies_bytes(c.feed(raw)), ["GET", "HEAD", "GET"])
    assert [r.status for r in replies] == [200, 404, 200]
    assert replies[1].body == b"" and replies[2].body == b"ok\n"
    assert c.hangup is None
    assert get(c, request("/")).status == 200


def test_pipelining_is_bounded_per_chunk() -> None:
    c = codec()
    raw = request("/app.js") * (MAX_PIPELINED + 50)
    replies = parse_replies(replies_bytes(c.feed(raw)), ["GET"] * MAX_PIPELINED)
    assert all(r.status == 200 for r in replies)
    assert replies[-1].header("connection") == "close" and replies[0].header("connection") is None
    assert c.hangup is not None


def test_requests_one_chunk_at_a_time_are_not_bounded() -> None:
    c = codec()
    for _ in range(MAX_PIPELINED * 2):
        assert get(c, request("/app.js")).status == 200
    assert c.hangup is None


def test_connection_close_and_http_1_0_end_after_the_response() -> None:
    c = codec()
    assert get(c, request("/", headers=[("Connection", "close")])).status == 200
    assert c.hangup is not None
    old = codec()
    assert get(old, request("/", version="1.0", host=None)).status == 200
    assert old.hangup is not None


def test_no_chat_events_before_the_upgrade() -> None:
    c = codec()
    assert c.encoding_key == "http" and c.protocol == "http"
    assert c.encode(m.Joined(room="#general", nick="ada")) == b""
    assert c.encode(m.Bye(code=None, reason="x")) == b""
    assert c.keepalive("anychat") is None and c.greeting() == []


# The 426 for a plain GET of the WebSocket endpoint closes the connection: the last request.
_PIPELINE = request("/app.js") + request("/nope", "HEAD") + request("/") + request("/ws")


def _fed(chunks: list[bytes]) -> bytes:
    c = codec()
    return b"".join(replies_bytes(c.feed(chunk)) for chunk in chunks)


def test_requests_split_at_every_byte_give_the_same_responses() -> None:
    whole = _fed([_PIPELINE])
    replies = parse_replies(whole, ["GET", "HEAD", "GET", "GET"])
    assert [r.status for r in replies] == [200, 404, 200, 426]
    for cut in range(1, len(_PIPELINE)):
        assert _fed([_PIPELINE[:cut], _PIPELINE[cut:]]) == whole, cut
    assert _fed([bytes([b]) for b in _PIPELINE]) == whole


@given(st.lists(st.integers(min_value=0, max_value=10_000), max_size=12))
def test_requests_in_any_chunks_give_the_same_responses(cuts: list[int]) -> None:
    assert _fed(chunked(_PIPELINE, cuts)) == _fed([_PIPELINE])


@settings(max_examples=300)
@given(
    st.lists(
        st.one_of(
            st.binary(max_size=40),
            st.sampled_from(
                [b"GET / HTTP/1.1\r\n", b"Host: x\r\n", b"\r\n", b"Content-Length: 3\r\n"]
            ),
            st.sampled_from([b"Transfer-Encoding: chunked\r\n", b"Upgrade: websocket\r\n"]),
        ),
        max_size=12,
    )
)
def test_garbage_never_raises_and_gets_a_parsable_answer(parts: list[bytes]) -> None:
    c = codec()
    data = b"GET " + b"".join(parts)
    out = []
    for chunk in chunked(data, [len(p) for p in parts]):
        out += c.feed(chunk)
    assert all(isinstance(item, LocalReply) for item in out)
    if c.hangup is not None:
        assert c.feed(b"GET / HTTP/1.1\r\nHost: x\r\n\r\n") == []
