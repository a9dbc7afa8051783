"""A program whose first words come after the sniffing moment was greeted as a person on nc
(silence is a guess made on a deadline: a slow link, a busy server). Its first words still
show what it is: it gets a session in its own protocol, and a JSON hello (a password in it) is
never said to a room as text. A person's first words, even "nick bob", stay a person's."""

from __future__ import annotations

import json
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager

import anyio
import pytest
from anyio.abc import SocketStream

import anychat
from anychat import model as m
from anychat.codecs.jsonl import JsonClientCodec, JsonServerCodec
from anychat.codecs.sniff import Protocol, late_undecided, sniff_late

from .helpers import LineClient

DEADLINE = 10
#: Short, so that a test's silence is taken for a person soon.
SNIFF = 0.05


async def _greeted_as_a_person(peer: LineClient) -> None:
    await peer.line_containing(b"*** Welcome to ")


async def _first_json(peer: LineClient) -> dict[str, object]:
    """Skip the text greeting; the first JSON line."""
    with anyio.fail_after(DEADLINE):
        while not (line := await peer.line()).startswith(b"{"):
            pass
    event: dict[str, object] = json.loads(line)
    return event


async def test_a_late_json_hello_gets_a_json_session_and_is_never_said_to_a_room() -> None:
    async with anychat.serve(port=0, database_url="memory://", sniff_seconds=SNIFF) as server:
        async with anychat.connect(*server.address, nick="ann") as ann:
            await ann.register("ann's secret")
        async with (
            anychat.connect(*server.address, nick="bob") as bob,
            await LineClient.open(server.port) as late,
        ):
            await _greeted_as_a_person(late)
            await late.send_json(type="hello", nick="ann", password="ann's secret")
            logged_in = await _first_json(late)
            assert (logged_in["type"], logged_in["nick"]) == ("logged_in", "ann")
            assert (await late.json_event("welcome"))["nick"] == "ann"
            await late.send_json(type="say", to="#general", text="hello from a slow link", ref=1)
            ack = await late.json_event("ack")
            assert ack["ref"] == 1
            with anyio.fail_after(DEADLINE):
                said = await bob.wait_for(m.Message)
            # The first thing bob hears said is ann's line: no hello, no password before it.
            assert (said.sender, said.text) == ("ann", "hello from a slow link")


async def test_a_late_irc_registration_gets_an_irc_session() -> None:
    async with (
        anychat.serve(port=0, database_url="memory://", sniff_seconds=SNIFF) as server,
        await LineClient.open(server.port) as late,
    ):
        await _greeted_as_a_person(late)
        await late.send(b"NICK ivy\r\nUSER ivy 0 * :Ivy\r\n")
        welcome = await late.line_containing(b" 001 ")
        assert b" 001 ivy " in welcome


async def test_a_persons_first_words_stay_a_persons() -> None:
    async with anychat.serve(port=0, database_url="memory://", sniff_seconds=SNIFF) as server:
        async with (
            anychat.connect(*server.address, nick="bob") as bob,
            await LineClient.open(server.port) as nc,
        ):
            await _greeted_as_a_person(nc)
            await nc.send(b"nick bob, hi\r\n")
            with anyio.fail_after(DEADLINE):
                said = await bob.wait_for(m.Message)
            assert said.text == "nick bob, hi"
            assert said.sender.startswith("guest")


async def _said_before_leaving(watcher: anychat.Client, guest: str) -> tuple[list[str], str]:
    """What ``watcher`` heard said until ``guest`` left the server, and why it left."""
    said: list[str] = []
    with anyio.fail_after(DEADLINE):
        while True:
            event = await watcher.receive()
            if isinstance(event, m.Message):
                said.append(event.text)
            elif isinstance(event, m.Quitted) and event.nick == guest:
                return said, event.reason


@pytest.mark.parametrize(
    ("late_words", "why"),
    [
        (
            b"GET /ws HTTP/1.1\r\nHost: 127.0.0.1\r\nCookie: session=bob-s-secret\r\n\r\n",
            "HTTP request came late",
        ),
        # A TLS record header and the start of a ClientHello.
        (b"\x16\x03\x01\x00\xc8\x01\x00\x00\xc4\x03\x03", "TLS handshake came late"),
    ],
    ids=["http", "tls"],
)
async def test_a_late_http_request_or_handshake_is_closed_and_never_said(
    late_words: bytes, why: str
) -> None:
    """Neither can read past the text greeting it heard, so neither is served: closed at once
    (the client fails and can try again), its words (cookies, say) never said to a room."""
    async with anychat.serve(port=0, database_url="memory://", sniff_seconds=SNIFF) as server:
        async with (
            anychat.connect(*server.address, nick="bob") as bob,
            await LineClient.open(server.port) as late,
        ):
            welcome = await late.line_containing(b"*** Welcome to ")
            guest = welcome.split(b"Welcome to anychat, ")[1].split(b"!")[0].decode()
            # In two pieces, as a slow link may deliver it: the first is not yet a whole line.
            await late.send(late_words[:10])
            await late.send(late_words[10:])
            await late.read_to_eof()
            said, why_it_left = await _said_before_leaving(bob, guest)
            assert said == []
            assert why in why_it_left


@asynccontextmanager
async def _holding_the_first_words(port: int) -> AsyncIterator[int]:
    """A relay to ``port`` that passes on nothing from its client until the server has spoken
    first: whatever connects through it speaks late, every time."""

    async def relay(client: SocketStream) -> None:
        async with client, await anyio.connect_tcp("127.0.0.1", port) as upstream:
            greeted = anyio.Event()

            async def down() -> None:
                async for data in upstream:
                    greeted.set()
                    await client.send(data)

            async def up() -> None:
                await greeted.wait()
                async for data in client:
                    await upstream.send(data)

            async with anyio.create_task_group() as tg:
                tg.start_soon(down)
                await up()
                tg.cancel_scope.cancel()

    listener = await anyio.create_tcp_listener(local_host="127.0.0.1", local_port=0)
    async with listener, anyio.create_task_group() as tg:
        tg.start_soon(listener.serve, relay)
        yield listener.extra(anyio.abc.SocketAttribute.local_port)
        tg.cancel_scope.cancel()


async def test_the_client_library_works_when_its_hello_is_late() -> None:
    async with (
        anychat.serve(port=0, database_url="memory://", sniff_seconds=SNIFF) as server,
        anychat.connect(*server.address, nick="bob") as bob,
        _holding_the_first_words(server.port) as relay_port,
        anychat.connect("127.0.0.1", relay_port, nick="cy", autojoin=True) as cy,
    ):
        assert cy.nick == "cy"
        await cy.send("#general", "made it")
        with anyio.fail_after(DEADLINE):
            said = await bob.wait_for(m.Message)
        assert (said.sender, said.text) == ("cy", "made it")


def test_the_client_codec_skips_prose_before_the_first_json_line_only() -> None:
    codec = JsonClientCodec()
    welcome = JsonServerCodec().encode(m.Welcome(nick="cy", server="anychat", version="1"))
    prose = b"*** Welcome to anychat, guest1!\r\n[12:00] #general <bob> hi\r\n"
    assert [type(e) for e in codec.feed(prose[:10])] == []
    assert [type(e) for e in codec.feed(prose[10:] + welcome)] == [m.Welcome]
    try:
        codec.feed(b"not json\n")
    except ValueError:
        pass
    else:
        raise AssertionError("prose after the first JSON line must be a protocol error")


def test_only_unmistakable_first_words_are_a_program() -> None:
    assert sniff_late(b'{"type":"hello"}\n') is Protocol.JSONL
    assert sniff_late(b"CAP LS 302\r\nNICK ivy\r\n") is Protocol.IRC
    assert sniff_late(b"\r\nNICK ivy\r\n") is Protocol.IRC
    assert sniff_late(b"GET /ws?x=1 HTTP/1.1\r\nHost: h\r\n") is Protocol.HTTP
    person = (b"nick bob\r\n", b"{ braces }\n", b"hello\n", b"/nick bob\n", b"GET lost\r\n")
    for words in (*person, b"get / HTTP/1.1\r\n", b"GET / HTTP/1.1"):
        assert sniff_late(words) is None, words


def test_first_words_that_could_still_be_a_programs_wait_for_their_line_end() -> None:
    for start in (b"{", b"CA", b"\r\nNICK", b"GET", b"GET /ws HT", b"POST /x HTTP/1.1\r"):
        assert late_undecided(start), start
    for words in (b"hello", b"nick", b"GET / HTTP/1.1\r\n", b"{x", b"GET " + b"x" * 9000):
        assert not late_undecided(words), words
