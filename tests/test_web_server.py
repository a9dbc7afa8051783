"""The web side of a real server: HTTP and WebSocket on the main port, on every backend."""

from __future__ import annotations

import json

import anyio
import pytest
from wsproto.events import CloseConnection, Ping, TextMessage

import anychat
from anychat.codecs.web.assets import default_assets

from .helpers import LineClient
from .webclient import HttpClient, WsPeer, WsRefused, http_get


async def test_the_page_and_its_headers(server: anychat.Server) -> None:
    reply = await http_get(server.port, "/")
    page = default_assets().get("/")
    assert page is not None
    assert reply.status == 200 and reply.body == page.body
    assert reply.header("content-type") == page.content_type
    csp = reply.header("content-security-policy") or ""
    assert "script-src 'self'" in csp and "unsafe-inline" not in csp
    assert reply.header("x-content-type-options") == "nosniff"
    assert reply.header("referrer-policy") == "no-referrer"


async def test_health_metrics_and_404_on_one_kept_alive_connection(
    server: anychat.Server,
) -> None:
    async with await HttpClient.open(server.port) as client:
        health = await client.get("/healthz")
        assert (health.status, health.body) == (200, b"ok\n")
        metrics = await client.get("/metrics")
        assert metrics.status == 200
        lines = metrics.body.decode().splitlines()
        assert 'anychat_connections{protocol="http"} 1' in lines  # this very connection
        assert "anychat_up 1" in lines
        missing = await client.get("/no/such/page")
        assert missing.status == 404 and b"Not found" in missing.body
        again = await client.get("/", [("If-None-Match", (health.header("etag") or '"x"'))])
        assert again.status == 200


async def test_websocket_chats_with_json_and_text_clients(server: anychat.Server) -> None:
    async with (
        await WsPeer.open(server.port) as web,
        await LineClient.open(server.port) as jsonc,
        await LineClient.open(server.port) as nc,
    ):
        await web.send_json(type="hello", nick="webby")
        welcome = await web.json_event("welcome")
        assert welcome["nick"] == "webby"
        await web.json_event("members")
        await jsonc.send_json(type="hello", nick="jay")
        await jsonc.json_event("welcome")
        await web.json_event("joined")  # jay joins #general
        await nc.line_containing(b"Welcome")  # a guest nick, after the sniffing silence
        await web.json_event("joined")  # the nc guest joins too

        await web.send_json(type="say", to="#general", text="hello from the browser", ref=1)
        ack = await web.json_event("ack")
        assert ack["ref"] == 1
        said = await jsonc.json_event("message")
        assert (said["from"], said["text"]) == ("webby", "hello from the browser")
        assert b"webby" in await nc.line_containing(b"hello from the browser")

        await jsonc.send_json(type="say", to="#general", text="hi web")
        got = await web.json_event("message")
        assert (got["from"], got["text"]) == ("jay", "hi web")
        await nc.send(b"plain text here\r\n")
        got = await web.json_event("message")
        assert got["text"] == "plain text here" and got["from"] != "jay"
        assert (await jsonc.json_event("message"))["text"] == "plain text here"

        # A bad command costs an error with the same code as on a JSON socket, nothing more.
        await web.send_text("{not json")
        error = await web.json_event("error")
        assert error["code"] == "bad_command"
        await web.send_json(type="say", to="#general", text="still here")
        assert (await jsonc.json_event("message"))["text"] == "still here"

        metrics = await http_get(server.port, "/metrics")
        assert b'anychat_connections{protocol="websocket"} 1' in metrics.body


async def test_a_real_third_party_websocket_client(server: anychat.Server) -> None:
    from websockets.sync.client import connect
    from websockets.typing import Origin

    url = f"ws://127.0.0.1:{server.port}/ws"
    origin = Origin(f"http://127.0.0.1:{server.port}")

    def chat() -> list[dict[str, object]]:
        # It offers permessage-deflate; the server declines, and the chat works uncompressed.
        with connect(url, origin=origin, open_timeout=5) as ws:
            ws.send(json.dumps({"type": "hello", "nick": "thirdparty"}))
            seen: list[dict[str, object]] = []
            while not any(e["type"] == "members" for e in seen):
                seen.append(json.loads(ws.recv(timeout=5)))
            ws.send(json.dumps({"type": "ping", "token": "tok"}))
            while seen[-1]["type"] != "pong":
                seen.append(json.loads(ws.recv(timeout=5)))
            return seen

    with anyio.fail_after(15):
        seen = await anyio.to_thread.run_sync(chat)
    assert seen[0]["type"] == "welcome" and seen[0]["nick"] == "thirdparty"
    assert seen[-1] == {"type": "pong", "token": "tok"}


async def test_a_foreign_origin_is_refused_and_others_carry_on(server: anychat.Server) -> None:
    with pytest.raises(WsRefused) as refused:
        await WsPeer.open(server.port, origin="https://evil.example")
    assert refused.value.status == 403
    async with await WsPeer.open(server.port) as web:
        await web.send_json(type="hello", nick="fine")
        await web.json_event("welcome")


async def test_allowed_origins_are_admitted(anyio_backend: object) -> None:
    async with anychat.serve(port=0, allowed_origins=("https://app.example",)) as srv:
        async with await WsPeer.open(srv.port, origin="https://app.example") as web:
            await web.send_json(type="hello", nick="app")
            await web.json_event("welcome")


async def test_an_oversized_frame_closes_1009_and_the_room_keeps_chatting(
    anyio_backend: object,
) -> None:
    async with anychat.serve(port=0, max_line_bytes=512) as srv:
        async with (
            await WsPeer.open(srv.port) as big,
            await WsPeer.open(srv.port) as web,
            await LineClient.open(srv.port) as jsonc,
        ):
            for peer, nick in ((big, "big"), (web, "small")):
                await peer.send_json(type="hello", nick=nick)
                await peer.json_event("welcome")
            await jsonc.send_json(type="hello", nick="jay")
            await jsonc.json_event("welcome")
            # In one packet: a message that fits, then one that does not.
            fits = json.dumps({"type": "say", "to": "#general", "text": "before the cut"})
            too_big = json.dumps({"type": "say", "to": "#general", "text": "x" * 600})
            await big.stream.send(
                big.ws.send(TextMessage(data=fits)) + big.ws.send(TextMessage(data=too_big))
            )
            close = await big.wait_closed()
            assert close.code == 1009
            assert (await jsonc.json_event("message"))["text"] == "before the cut"
            await jsonc.json_event("quit")  # the room hears that big left
            await web.send_json(type="say", to="#general", text="after the cut")
            assert (await jsonc.json_event("message"))["text"] == "after the cut"


async def test_client_close_handshake_and_half_close(server: anychat.Server) -> None:
    async with await WsPeer.open(server.port) as web:
        await web.send_json(type="hello", nick="leaver")
        await web.json_event("welcome")
        await web.stream.send(web.ws.send(CloseConnection(code=1000, reason="bye")))
        await web.stream.send_eof()  # half-closed: we still read
        close = await web.wait_closed()
        assert close.code == 1000


async def test_a_request_then_half_close_still_gets_its_response(server: anychat.Server) -> None:
    stream = await anyio.connect_tcp("127.0.0.1", server.port)
    async with stream:
        await stream.send(b"GET /healthz HTTP/1.1\r\nHost: x\r\nConnection: close\r\n\r\n")
        await stream.send_eof()
        data = b""
        with anyio.fail_after(5):
            try:
                while True:
                    data += await stream.receive()
            except anyio.EndOfStream:
                pass
    assert data.startswith(b"HTTP/1.1 200 ") and data.endswith(b"ok\n")


async def test_half_open_garbage_disturbs_nobody(server: anychat.Server) -> None:
    async with await WsPeer.open(server.port) as web:
        await web.send_json(type="hello", nick="steady")
        await web.json_event("welcome")
        for junk in (b"GET / HTTP/1.1\r\nHost: x", b"GET /\x00\x01 HTTP/1.1\r\n\r\n"):
            stream = await anyio.connect_tcp("127.0.0.1", server.port)
            await stream.send(junk)
            await stream.send_eof()
            with anyio.fail_after(5):
                try:
                    while await stream.receive():
                        pass
                except (anyio.EndOfStream, anyio.BrokenResourceError):
                    pass
            await stream.aclose()
        raw = await anyio.connect_tcp("127.0.0.1", server.port)
        ws_bad = b"GET /ws HTTP/1.1\r\nHost: x\r\nUpgrade: websocket\r\nConnection: Upgrade\r\n"
        await raw.send(ws_bad + b"Sec-WebSocket-Key: AAAAAAAAAAAAAAAAAAAAAA==\r\n")
        await raw.send(b"Sec-WebSocket-Version: 13\r\n\r\n\x81\x05hello")  # unmasked: 1002
        await raw.aclose()
        await web.send_json(type="ping", token="alive")
        assert (await web.json_event("pong"))["token"] == "alive"


async def test_a_full_server_answers_http_with_503(anyio_backend: object) -> None:
    async with anychat.serve(port=0, max_connections=1) as srv:
        async with await WsPeer.open(srv.port) as web:
            await web.send_json(type="hello", nick="only")
            await web.json_event("welcome")
            reply = await http_get(srv.port, "/healthz")
            assert reply.status == 503 and reply.header("retry-after") == "5"
            assert b"too many connections" in reply.body


async def test_websocket_gets_pinged_when_quiet(anyio_backend: object) -> None:
    async with anychat.serve(port=0, idle_ping_seconds=0.2, idle_timeout_seconds=5) as srv:
        async with await WsPeer.open(srv.port) as web:
            await web.send_json(type="hello", nick="quiet")
            await web.json_event("welcome")
            with anyio.fail_after(5):
                while not isinstance(event := await web.next(), Ping):
                    assert isinstance(event, TextMessage)
            assert event.payload == b"anychat"


async def test_shutdown_closes_websockets_with_1001(anyio_backend: object) -> None:
    async with anychat.serve(port=0) as srv:
        web = await WsPeer.open(srv.port)
        await web.send_json(type="hello", nick="stayer")
        await web.json_event("welcome")
    async with web:
        bye = await web.json_event("bye")
        assert bye["code"] == "shutdown"
        close = await web.wait_closed()
        assert close.code == 1001


async def test_the_dedicated_http_port(anyio_backend: object) -> None:
    async with anychat.serve(port=0, http_port=0) as srv:
        assert srv.http_port is not None and srv.http_port != srv.port
        assert (await http_get(srv.http_port, "/healthz")).status == 200
        async with await WsPeer.open(srv.http_port) as web:
            await web.send_json(type="hello", nick="dedicated")
            await web.json_event("welcome")
        # No sniffing there: a JSON line is a bad HTTP request, not a chat client.
        async with await LineClient.open(srv.http_port) as wrong:
            await wrong.send(b'{"type":"hello"}\r\n\r\n')
            assert (await wrong.read_to_eof()).startswith(b"HTTP/1.1 400 ")


async def test_websocket_floods_are_slowed_not_dropped(anyio_backend: object) -> None:
    async with anychat.serve(port=0, flood_rate=100.0, flood_burst=20) as srv:
        async with await WsPeer.open(srv.port) as web, await LineClient.open(srv.port) as jsonc:
            await jsonc.send_json(type="hello", nick="reader")
            await jsonc.json_event("welcome")
            await web.send_json(type="hello", nick="flooder")
            await web.json_event("welcome")
            frames = b"".join(
                web.ws.send(TextMessage(data=json.dumps({"type": "say", "text": f"m{i}"})))
                for i in range(60)
            )
            await web.stream.send(frames)
            texts = [(await jsonc.json_event("message"))["text"] for _ in range(60)]
            assert texts == [f"m{i}" for i in range(60)]


@pytest.mark.parametrize("size", [1, 7])
async def test_frames_dribbled_byte_by_byte_over_the_socket(
    server: anychat.Server, size: int
) -> None:
    async with await WsPeer.open(server.port) as web:
        data = web.ws.send(TextMessage(data=json.dumps({"type": "hello", "nick": "dribble"})))
        for i in range(0, len(data), size):
            await web.stream.send(data[i : i + size])
        assert (await web.json_event("welcome"))["nick"] == "dribble"


async def test_a_websocket_that_never_reads_is_cut_like_any_slow_client(
    anyio_backend: object,
) -> None:
    from anychat import model as m

    async with anychat.serve(port=0, max_queue_bytes=64 * 1024, flood_rate=0) as srv:
        async with (
            anychat.connect(*srv.address, nick="ada") as ada,
            anychat.connect(*srv.address, nick="bob") as bob,
            await WsPeer.open(srv.port) as sloth,
        ):
            await sloth.send_json(type="hello", nick="sloth")
            await bob.wait_for(m.Joined, lambda e: e.nick == "sloth")
            cut: m.Quitted | None = None
            with anyio.fail_after(30):
                # The WebSocket never reads: its buffers fill, then its queue passes the bound.
                while cut is None:
                    await ada.send("#general", "y" * 300)
                    got = await bob.wait_for(m.Message | m.Quitted)  # type: ignore[arg-type]
                    if isinstance(got, m.Quitted):
                        cut = got
            assert cut.nick == "sloth" and cut.reason.startswith("send queue exceeded")
            await ada.send("#general", "still here")
            await bob.wait_for(m.Message, lambda e: e.text == "still here")
            metrics = (await http_get(srv.port, "/metrics")).body.decode().splitlines()
            assert "anychat_slow_consumer_cuts_total 1" in metrics
            assert 'anychat_connections{protocol="jsonl"} 2' in metrics
            sent = next(line for line in metrics if line.startswith("anychat_messages_out_total"))
            assert int(sent.split()[1]) > 100
            commits = next(x for x in metrics if x.startswith("anychat_store_commit_seconds_count"))
            assert int(commits.split()[1]) >= 1  # every said message went through the store
