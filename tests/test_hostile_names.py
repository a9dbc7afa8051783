"""Names that could drive a terminal, and codec inputs that used to crash a connection.

A room name is shown raw in every nc user's ``/rooms``, join lines and message prefixes, so a
name with a C1 CSI (U+009B) or a bidi override would be an escape sequence or a spoof on their
screens. Names refuse those characters (``model.valid_room``); what the text protocol writes is
neutralised line by line as a second line of defence. The codec crashes (``CAP LS ²``,
``/history ²``) once dropped the client with a traceback; now each is answered and the
connection lives.
"""

from __future__ import annotations

import anyio
import pytest
from anyio.abc import SocketStream

import anychat
from anychat import model as m
from anychat.codecs.text import TextCodec

from .helpers import LineClient

SPOOFERS = [
    "\x9b",  # C1 CSI: ESC [ in one character
    "\x85",  # C1 NEL
    "\u202e",  # right-to-left override
    "\u202a",
    "\u2066",  # left-to-right isolate
    "\u2069",
    "\u2028",  # line separator
    "\u2029",
    "\u200b",  # zero-width space
    "\u200d",  # zero-width joiner
    "\u00ad",  # soft hyphen
    "\ufeff",  # byte order mark
    "\u00a0",  # no-break space
    "\u3000",  # ideographic space
    "\ue000",  # private use
]


@pytest.mark.parametrize("char", SPOOFERS, ids=[f"U+{ord(c):04X}" for c in SPOOFERS])
def test_room_names_refuse_controls_format_and_space_characters(char: str) -> None:
    assert not m.valid_room(f"#a{char}b")
    assert not m.valid_room(f"#{char}")
    assert not m.valid_nick(f"a{char}b")


@pytest.mark.parametrize("name", ["#general", "#café", "#日本語", "#a-b_c.d", "#ü🙂"])
def test_room_names_keep_ordinary_unicode(name: str) -> None:
    assert m.valid_room(name)


@pytest.mark.parametrize("char", ["\x1b", "\x9b", "\u202e", "\u2067", "\u2028", "\u2029"])
def test_text_output_neutralises_every_line_whole(char: str) -> None:
    codec = TextCodec()
    events: list[m.Event] = [
        m.Message(id=1, time=0, sender="bob", target=f"#old{char}room", text=f"x{char}y"),
        m.Error(code=m.ErrorCode.NO_SUCH_NICK, text=f"no such nick a{char}b"),
        m.Bye(code=None, reason=f"bye{char}"),
        m.HistoryPage(
            target="#g",
            messages=(m.Message(id=2, time=0, sender="b", target="#g", text=char, history=True),),
        ),
    ]
    for event in events:
        out = codec.encode(event).decode()
        assert char not in out
        assert "\N{REPLACEMENT CHARACTER}" in out
        assert out.endswith("\r\n") and "\n" not in out[:-2].replace("\r\n", "")


async def _until(stream: SocketStream, needle: bytes, seen: bytearray) -> bytes:
    with anyio.fail_after(10):
        while needle not in seen:
            seen += await stream.receive()
    head, _, rest = bytes(seen).partition(needle)
    seen[:] = rest
    return head + needle


async def test_escape_room_is_refused_and_never_reaches_an_nc_user() -> None:
    async with anychat.serve(port=0, database_url="memory://", sniff_seconds=0.05) as srv:
        async with await anyio.connect_tcp(*srv.address) as nc:
            seen = bytearray()
            await _until(nc, b"Welcome", seen)
            async with await LineClient.open(srv.port) as mallory:
                await mallory.send_json(type="hello", nick="mallory")
                await mallory.json_event("welcome")
                for room in ("#\u009b2J\u009b0;31mpwned", "#\u202egnp.exe", "#a\u2028b"):
                    await mallory.send_json(type="join", room=room, ref=room)
                    error = await mallory.json_event("error")
                    assert error["code"] == "invalid_room" and error["ref"] == room
                await mallory.send_json(type="say", to="#general", text="\u202eevil\u2029", ref=1)
                await mallory.json_event("ack")
                await nc.send(b"/rooms\r\n/msg \xe2\x80\xae\xc2\x9bbob hi\r\n/ping\r\n")
                transcript = await _until(nc, b"* pong", seen)
            for raw in ("\u009b", "\u202e", "\u2028", "\u2029"):
                assert raw.encode() not in transcript
            assert b"<mallory> \xef\xbf\xbdevil\xef\xbf\xbd" in transcript
            assert b"*   #general (2)" in transcript
            assert b"no such nick" in transcript


async def test_irc_cap_ls_superscript_is_answered_and_the_client_registers() -> None:
    async with anychat.serve(port=0, database_url="memory://") as srv:
        async with await LineClient.open(srv.port) as irc:
            await irc.send("CAP LS ²\r\n".encode())
            assert b"CAP * LS :" in await irc.line_containing(b" LS ")
            await irc.send(b"NICK ada\r\nUSER ada 0 * :Ada\r\nCAP END\r\n")
            assert b" 001 ada " in await irc.line_containing(b" 001 ")


async def test_text_history_superscript_is_answered_and_the_client_stays() -> None:
    async with anychat.serve(port=0, database_url="memory://", sniff_seconds=0.05) as srv:
        async with await anyio.connect_tcp(*srv.address) as nc:
            seen = bytearray()
            await _until(nc, b"Welcome", seen)
            await nc.send("/history ²\r\n/history #general ²\r\n".encode())
            await _until(nc, b"log in to read private messages", seen)
            await _until(nc, b"usage: /history", seen)
            await nc.send(b"still here\r\n/ping\r\n")
            await _until(nc, b"* pong", seen)


async def test_json_history_with_a_huge_id_is_answered() -> None:
    async with anychat.serve(port=0, database_url="memory://") as srv:
        async with await LineClient.open(srv.port) as client:
            await client.send_json(type="hello", nick="ada")
            await client.json_event("welcome")
            await client.send(b'{"type":"history","before":100000000000000000000000,"ref":2}\n')
            error = await client.json_event("error")
            assert error["code"] == "bad_command" and error["ref"] == 2
            await client.send_json(type="ping", token="t", ref=3)
            assert (await client.json_event("pong"))["ref"] == 3
