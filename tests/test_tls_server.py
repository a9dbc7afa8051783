"""The server over TLS: every protocol on the main port and on the TLS-only port, plaintext
beside it, TLS required, failed handshakes that nobody else notices, reloads."""

from __future__ import annotations

import functools
import logging
import ssl
from collections.abc import AsyncIterator
from pathlib import Path

import anyio
import irc.client
import irc.connection
import pytest
from anyio.abc import ByteStream

import anychat
from anychat import model as m
from anychat.errors import ConnectError, ConnectionClosed

from .test_irc_interop import irc_peer
from .tls_support import Certs, make_certs, tls_connect

pytestmark = pytest.mark.timeout(60)


@pytest.fixture
def certs(tmp_path: Path) -> Certs:
    return make_certs(tmp_path / "certs")


@pytest.fixture
async def tls_server(certs: Certs) -> AsyncIterator[anychat.Server]:
    async with anychat.serve(
        port=0, tls_cert=str(certs.cert_file), tls_key=str(certs.key_file), tls_port=0
    ) as server:
        yield server


class Lines:
    """Whole lines from a byte stream (plaintext or TLS), every wait bounded."""

    def __init__(self, stream: ByteStream) -> None:
        self.stream = stream
        self.buffer = b""

    async def line(self) -> bytes:
        with anyio.fail_after(10):
            while b"\n" not in self.buffer:
                self.buffer += await self.stream.receive()
        line, _, self.buffer = self.buffer.partition(b"\n")
        return line.rstrip(b"\r")

    async def until(self, needle: bytes) -> bytes:
        with anyio.fail_after(10):
            while True:
                line = await self.line()
                if needle in line:
                    return line

    async def to_eof(self) -> bytes:
        data, self.buffer = self.buffer, b""
        with anyio.fail_after(10):
            try:
                while True:
                    data += await self.stream.receive()
            except (anyio.EndOfStream, anyio.BrokenResourceError):
                return data


def _ports(server: anychat.Server) -> list[int]:
    assert server.tls_port is not None
    return [server.port, server.tls_port]


async def test_json_clients_over_tls_on_both_ports_chat_with_plaintext(
    tls_server: anychat.Server, certs: Certs
) -> None:
    main, tls_only = _ports(tls_server)
    async with (
        anychat.connect("127.0.0.1", main, nick="ada", tls_ca=certs.ca_file) as ada,
        anychat.connect("localhost", tls_only, nick="bob", tls_ca=certs.ca_file) as bob,
        anychat.connect("127.0.0.1", main, nick="cy") as cy,
    ):
        assert ada.tls_version is not None and ada.tls_verified
        assert bob.tls_version is not None and bob.tls_verified
        assert cy.tls_version is None and not cy.tls_verified
        await ada.send("#general", "from tls")
        await cy.send("#general", "from plaintext")
        with anyio.fail_after(10):
            got = await bob.wait_for(anychat.Message, lambda e: e.text == "from tls")
            assert got.sender == "ada"
            await bob.wait_for(anychat.Message, lambda e: e.text == "from plaintext")
            await cy.wait_for(anychat.Message, lambda e: e.text == "from tls")


@pytest.mark.parametrize("which", ["main", "tls"])
async def test_text_over_tls_gets_the_greeting_and_chats(
    tls_server: anychat.Server, certs: Certs, which: str
) -> None:
    port = tls_server.port if which == "main" else tls_server.tls_port
    assert port is not None
    async with anychat.connect("127.0.0.1", tls_server.port, nick="ada") as ada:
        stream = await tls_connect(port, certs.client_context())
        person = Lines(stream)
        await person.until(b"Welcome to anychat")  # silence inside TLS: a person on s_client
        await stream.send(b"hello through openssl\n")
        with anyio.fail_after(10):
            got = await ada.wait_for(anychat.Message, lambda e: e.text == "hello through openssl")
        assert got.sender.startswith("guest")
        await stream.aclose()


@pytest.mark.parametrize("which", ["main", "tls"])
async def test_irc_over_tls_registers(tls_server: anychat.Server, certs: Certs, which: str) -> None:
    port = tls_server.port if which == "main" else tls_server.tls_port
    assert port is not None
    stream = await tls_connect(port, certs.client_context())
    irc_lines = Lines(stream)
    await stream.send(b"NICK ada\r\nUSER ada 0 * :Ada\r\n")
    welcome = await irc_lines.until(b" 001 ")
    assert b"ada" in welcome
    await stream.send(b"QUIT :bye\r\n")
    await irc_lines.to_eof()
    await stream.aclose()


async def test_the_irc_library_connects_with_tls(tls_server: anychat.Server, certs: Certs) -> None:
    context = certs.client_context()
    factory = irc.connection.Factory(
        wrapper=functools.partial(context.wrap_socket, server_hostname="localhost")
    )
    assert tls_server.tls_port is not None
    async with (
        irc_peer(tls_server.tls_port, "ircada", connect_factory=factory) as ada,
        anychat.connect("127.0.0.1", tls_server.port, nick="bob") as bob,
    ):
        await ada.wait_for("welcome")
        await ada.call("join", "#general")
        await ada.wait_for("join")
        await ada.call("privmsg", "#general", "hello from a TLS IRC client")
        with anyio.fail_after(10):
            got = await bob.wait_for(
                anychat.Message, lambda e: e.text == "hello from a TLS IRC client"
            )
        assert got.sender == "ircada"
        assert isinstance(ada.conn.socket, ssl.SSLSocket)


async def test_tls_required_refuses_plaintext_in_its_own_protocol(certs: Certs) -> None:
    async with anychat.serve(
        port=0, tls_cert=str(certs.cert_file), tls_key=str(certs.key_file), tls_required=True
    ) as server:
        with anyio.fail_after(10), pytest.raises(ConnectionClosed) as caught:
            async with anychat.connect("127.0.0.1", server.port, nick="ada"):
                pass
        assert caught.value.code is m.ErrorCode.TLS_REQUIRED
        assert "requires TLS" in caught.value.reason

        person = Lines(await anyio.connect_tcp("127.0.0.1", server.port))
        assert b"requires TLS" in await person.to_eof()  # silent nc user: told, then closed
        await person.stream.aclose()

        ircer = Lines(await anyio.connect_tcp("127.0.0.1", server.port))
        await ircer.stream.send(b"NICK ada\r\nUSER ada 0 * :Ada\r\n")
        said = await ircer.to_eof()
        assert said.startswith(b"ERROR :") and b"requires TLS" in said
        await ircer.stream.aclose()

        browser = Lines(await anyio.connect_tcp("127.0.0.1", server.port))
        await browser.stream.send(b"GET / HTTP/1.1\r\nHost: 127.0.0.1\r\n\r\n")
        said = await browser.to_eof()
        assert said.startswith(b"HTTP/1.1 403 ") and b"requires TLS" in said
        assert b"https://" in said and b"<html" not in said  # no page served in plaintext
        await browser.stream.aclose()

        async with anychat.connect(
            "127.0.0.1", server.port, nick="ada", tls_ca=certs.ca_file
        ) as ada:
            assert ada.tls_verified


async def test_tls_to_a_server_without_tls_is_closed_and_logged(
    server: anychat.Server, caplog: pytest.LogCaptureFixture
) -> None:
    caplog.set_level(logging.INFO, "anychat.server")
    with anyio.fail_after(10), pytest.raises(ConnectError) as caught:
        async with anychat.connect("127.0.0.1", server.port, tls=True):
            pass
    assert "does it serve TLS on this port" in caught.value.reason
    assert any("TLS handshake on a server without TLS" in r.getMessage() for r in caplog.records)


async def test_garbage_and_stalled_handshakes_cost_only_themselves(
    certs: Certs, caplog: pytest.LogCaptureFixture
) -> None:
    """A stalled handshake is dropped at the timeout and garbage at once, with a log line
    each, while two clients chat on undisturbed."""
    caplog.set_level(logging.INFO, "anychat.server")
    async with (
        anychat.serve(
            port=0,
            tls_cert=str(certs.cert_file),
            tls_key=str(certs.key_file),
            tls_handshake_seconds=0.5,
        ) as server,
        anychat.connect("127.0.0.1", server.port, nick="ada", tls_ca=certs.ca_file) as ada,
        anychat.connect("127.0.0.1", server.port, nick="bob") as bob,
    ):
        stalled = await anyio.connect_tcp("127.0.0.1", server.port)
        await stalled.send(b"\x16\x03\x01\x02\x00\x01")  # a ClientHello's start, then nothing
        garbage = await anyio.connect_tcp("127.0.0.1", server.port)
        await garbage.send(b"\x16\x03\x01\x00\x10" + b"\xff" * 16)
        alert = await Lines(garbage).to_eof()
        assert alert.startswith(b"\x15\x03")  # a TLS alert record, then the end
        for i in range(20):
            await ada.send("#general", f"line {i}")
        with anyio.fail_after(10):
            for i in range(20):
                got = await bob.wait_for(anychat.Message)
                assert got.text == f"line {i}"
        assert await Lines(stalled).to_eof() == b""  # dropped by the handshake timeout
        await stalled.aclose()
        await garbage.aclose()
    failures = [r.getMessage() for r in caplog.records if "TLS handshake failed" in r.getMessage()]
    assert len(failures) == 2, failures
    assert any("no handshake within 0.5 s" in line for line in failures)


async def test_reload_serves_the_new_certificate_to_new_connections_only(
    tmp_path: Path,
) -> None:
    old = make_certs(tmp_path / "old")
    new = make_certs(tmp_path / "new")
    live_cert, live_key = tmp_path / "live.crt", tmp_path / "live.key"
    live_cert.write_bytes(old.cert_file.read_bytes())
    live_key.write_bytes(old.key_file.read_bytes())
    async with anychat.serve(port=0, tls_cert=str(live_cert), tls_key=str(live_key)) as server:
        async with anychat.connect("127.0.0.1", server.port, nick="ada", tls_ca=old.ca_file) as ada:
            live_cert.write_bytes(new.cert_file.read_bytes())
            live_key.write_bytes(new.key_file.read_bytes())
            assert server.reload_tls()
            with anyio.fail_after(10), pytest.raises(ConnectError, match="unknown certificate"):
                async with anychat.connect("127.0.0.1", server.port, tls_ca=old.ca_file):
                    pass
            async with anychat.connect(
                "127.0.0.1", server.port, nick="bob", tls_ca=new.ca_file
            ) as bob:
                await ada.send("#general", "still here")
                with anyio.fail_after(10):
                    await bob.wait_for(anychat.Message, lambda e: e.text == "still here")


async def test_alpn_http11_is_chosen_for_browsers(tls_server: anychat.Server, certs: Certs) -> None:
    context = certs.client_context()
    context.set_alpn_protocols(["h2", "http/1.1"])
    stream = await tls_connect(tls_server.port, context)
    from anyio.streams.tls import TLSAttribute

    assert stream.extra(TLSAttribute.alpn_protocol) == "http/1.1"
    await stream.aclose()


async def test_a_browser_slow_to_ask_after_its_handshake_still_gets_the_page(
    certs: Certs,
) -> None:
    """ALPN ``http/1.1`` in its hello says a browser: its request is awaited however late,
    while a peer silent after a handshake without ALPN is taken for a person and greeted."""
    async with anychat.serve(
        port=0, tls_cert=str(certs.cert_file), tls_key=str(certs.key_file), sniff_seconds=0.01
    ) as server:
        context = certs.client_context()
        context.set_alpn_protocols(["h2", "http/1.1"])
        async with (
            await tls_connect(server.port, context) as browser,
            await tls_connect(server.port, certs.client_context()) as person,
        ):
            # The person's handshake came after the browser's, and it is greeted only once its
            # own silence has lasted: by then the browser has been silent for longer.
            await Lines(person).until(b"*** Welcome to ")
            await browser.send(b"GET / HTTP/1.1\r\nHost: 127.0.0.1\r\nConnection: close\r\n\r\n")
            said = await Lines(browser).to_eof()
            assert said.startswith(b"HTTP/1.1 200 ") and b"<html" in said


def test_tls_settings_are_checked(certs: Certs) -> None:
    with pytest.raises(anychat.ConfigError, match="needs its key"):
        anychat.ServerConfig(tls_cert=str(certs.cert_file))
    with pytest.raises(anychat.ConfigError, match="--tls-required needs a certificate"):
        anychat.ServerConfig(tls_required=True)
    with pytest.raises(anychat.ConfigError, match="--tls-port needs a certificate"):
        anychat.ServerConfig(tls_port=6697)


async def test_a_bad_certificate_fails_at_start(tmp_path: Path, certs: Certs) -> None:
    other = make_certs(tmp_path / "other")
    with pytest.raises(anychat.ConfigError, match="does not belong"):
        async with anychat.serve(
            port=0, tls_cert=str(certs.cert_file), tls_key=str(other.key_file)
        ):
            pass


async def test_https_page_and_wss_chat_on_every_web_port(certs: Certs) -> None:
    """A browser's view over TLS: the page by ``https://`` and a real WebSocket client over
    ``wss://``, on the sniffing main port, the TLS-only port and the dedicated HTTP port."""
    import json

    from websockets.sync.client import connect as ws_connect
    from websockets.typing import Origin

    context = ssl.create_default_context(cafile=str(certs.ca_file))
    async with anychat.serve(
        port=0,
        tls_cert=str(certs.cert_file),
        tls_key=str(certs.key_file),
        tls_port=0,
        http_port=0,
    ) as server:
        assert server.tls_port is not None and server.http_port is not None
        for port in (server.port, server.tls_port, server.http_port):
            raw = await anyio.connect_tcp(
                "127.0.0.1", port, tls=True, ssl_context=context, tls_hostname="127.0.0.1"
            )
            page = Lines(raw)
            await raw.send(b"GET / HTTP/1.1\r\nHost: 127.0.0.1\r\nConnection: close\r\n\r\n")
            said = await page.to_eof()
            assert said.startswith(b"HTTP/1.1 200 ") and b"<html" in said
            await raw.aclose()

            def chat(port: int = port) -> list[dict[str, object]]:
                url = f"wss://127.0.0.1:{port}/ws"
                origin = Origin(f"https://127.0.0.1:{port}")  # same origin, https scheme
                with ws_connect(url, origin=origin, ssl=context, open_timeout=10) as ws:
                    ws.send(json.dumps({"type": "hello", "nick": f"web{port}"}))
                    seen: list[dict[str, object]] = [json.loads(ws.recv(timeout=10))]
                    return seen

            with anyio.fail_after(30):
                seen = await anyio.to_thread.run_sync(chat)
            assert seen[0]["type"] == "welcome" and seen[0]["nick"] == f"web{port}"
