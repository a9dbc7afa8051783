"""The server over real sockets, with the Python client and with raw nc-style peers."""

from __future__ import annotations

import json

import anyio
import pytest

import anychat
from anychat import model as m

from .helpers import LineClient


async def test_room_message_reaches_others_not_the_sender(server: anychat.Server) -> None:
    async with (
        anychat.connect(*server.address, nick="ada") as ada,
        anychat.connect(*server.address, nick="bob") as bob,
        anychat.connect(*server.address, nick="cy") as cy,
    ):
        ack = await ada.send("#general", "hello")
        for client in (bob, cy):
            msg = await client.wait_for(m.Message)
            assert (msg.id, msg.sender, msg.target, msg.text) == (
                ack.id,
                "ada",
                "#general",
                "hello",
            )
            assert msg.time == pytest.approx(ack.time)
        # Ada got the ack, not her own message: her next message event is bob's.
        await bob.send("#general", "hi ada")
        msg = await ada.wait_for(m.Message)
        assert (msg.sender, msg.text) == ("bob", "hi ada")


async def test_private_messages_are_private(server: anychat.Server) -> None:
    async with (
        anychat.connect(*server.address, nick="ada") as ada,
        anychat.connect(*server.address, nick="bob") as bob,
        anychat.connect(*server.address, nick="eve") as eve,
    ):
        await ada.send("bob", "secret")
        await ada.send("#general", "public")
        got = await bob.wait_for(m.Message, lambda e: e.target == "bob")
        assert got.text == "secret"
        seen = await eve.wait_for(m.Message)
        assert seen.text == "public"  # the first message eve sees is the public one


async def test_refusals_raise_specific_errors(server: anychat.Server) -> None:
    async with anychat.connect(*server.address, nick="ada") as ada:
        with pytest.raises(anychat.NickInUse):
            async with anychat.connect(*server.address, nick="ADA"):
                pass
        with pytest.raises(anychat.InvalidNick):
            async with anychat.connect(*server.address, nick="9bad"):
                pass
        with pytest.raises(anychat.NoSuchNick):
            await ada.send("nobody", "hi")
        with pytest.raises(anychat.NoSuchRoom):
            await ada.who("#nowhere")
        with pytest.raises(anychat.InvalidRoom):
            await ada.join("no-hash")
        assert await ada.who("#general") == ("ada",)  # still connected and working


async def test_join_part_nick_are_announced(server: anychat.Server) -> None:
    async with (
        anychat.connect(*server.address, nick="ada") as ada,
        anychat.connect(*server.address, nick="bob") as bob,
    ):
        assert await ada.join("#rust") == ("ada",)
        assert await bob.join("#rust") == ("ada", "bob")
        assert await ada.wait_for(m.Joined, lambda e: e.room == "#rust") == m.Joined(
            room="#rust", nick="bob"
        )
        await bob.set_nick("bobby")
        assert bob.nick == "bobby"
        assert await ada.wait_for(m.NickChanged) == m.NickChanged(old="bob", new="bobby")
        await bob.part("#rust", "later")
        assert await ada.wait_for(m.Parted) == m.Parted(room="#rust", nick="bobby", reason="later")
        assert bob.rooms == {"#general"}
        rooms = await ada.list_rooms()
        assert [(r.name, r.members) for r in rooms] == [("#general", 2), ("#rust", 1)]


async def test_quit_is_announced_with_its_reason(server: anychat.Server) -> None:
    async with anychat.connect(*server.address, nick="ada") as ada:
        async with anychat.connect(*server.address, nick="bob") as bob:
            await bob.who("#general")
        assert await ada.wait_for(m.Quitted) == m.Quitted(nick="bob", reason="goodbye")


async def test_nc_user_is_greeted_after_silence_and_chats(server: anychat.Server) -> None:
    async with (
        anychat.connect(*server.address, nick="ada") as ada,
        await LineClient.open(server.port) as nc,
    ):
        greeting = await nc.line()
        assert greeting.startswith(b"*** Welcome to anychat, guest")
        guest = greeting.split(b", ")[1].split(b"!")[0].decode()
        await nc.line_containing(b"joined #general")
        await nc.send(b"/nick carol\r\n")
        await nc.line_containing(b"is now known as carol")
        await nc.send(b"hello from nc\r\n")
        msg = await ada.wait_for(m.Message)
        assert (msg.sender, msg.text) == ("carol", "hello from nc")
        await ada.send("#general", "hi carol")
        assert (await nc.line_containing(b"hi carol")).endswith(b"#general <ada> hi carol")
        await ada.send("carol", "psst")
        assert (await nc.line_containing(b"psst")).endswith(b"*ada* psst")
        assert guest.startswith("guest")


async def test_text_client_that_types_immediately_is_still_served(server: anychat.Server) -> None:
    async with anychat.connect(*server.address, nick="ada") as ada:
        async with await LineClient.open(server.port) as nc:
            await nc.send(b"/nick quick\nfast words\n")
            msg = await ada.wait_for(m.Message)
            assert (msg.sender, msg.text) == ("quick", "fast words")


async def test_bad_input_gets_clear_errors_and_the_connection_lives(
    anyio_backend: object,
) -> None:
    async with anychat.serve(port=0, max_line_bytes=256) as server:
        async with await LineClient.open(server.port) as nc:
            await nc.line_containing(b"Welcome")
            await nc.send(b"x" * 1000 + b"\n")
            assert b"longer than 256 bytes" in await nc.line_containing(b"! ")
            await nc.send(b"caf\xe9\n")
            assert b"not valid UTF-8" in await nc.line_containing(b"! ")
            await nc.send(b"/dance\n")
            assert b"unknown command /dance" in await nc.line_containing(b"! ")
            await nc.send(b"/nick\n")
            assert b"usage: /nick" in await nc.line_containing(b"! ")
            await nc.send(b"/nick 9lives\n")
            assert b"invalid nick" in await nc.line_containing(b"! ")
            await nc.send(b"/ping alive\n")
            assert await nc.line_containing(b"pong") == b"* pong alive"

        async with await LineClient.open(server.port) as js:
            await js.send(b'{"type":"hello","nick":"js"}\n{oops\n{"type":"fly","ref":1}\n')
            await js.json_event("welcome")
            bad_json = await js.json_event("error")
            assert bad_json["code"] == "bad_command"
            unknown = await js.json_event("error")
            assert (unknown["code"], unknown["ref"]) == ("unknown_command", 1)
            await js.send_json(type="ping", token="t", ref=2)
            assert (await js.json_event("pong"))["ref"] == 2


async def test_json_commands_before_hello_are_refused(server: anychat.Server) -> None:
    async with await LineClient.open(server.port) as js:
        await js.send_json(type="join", room="#x", ref=1)
        error = await js.json_event("error")
        assert (error["code"], error["ref"]) == ("hello_required", 1)


async def test_peer_vanishing_mid_line_disturbs_nobody(server: anychat.Server) -> None:
    async with anychat.connect(*server.address, nick="ada") as ada:
        half = await LineClient.open(server.port)
        await half.send(b'{"type":"hello","nick":"half"}\n')
        await ada.wait_for(m.Joined, lambda e: e.nick == "half")
        await half.send(b'{"type":"say","to":"#general","te')
        await half.aclose()
        quit_ = await ada.wait_for(m.Quitted)
        assert quit_.nick == "half"
        assert await ada.who("#general") == ("ada",)


async def test_slow_consumer_is_cut_and_the_room_keeps_flowing(anyio_backend: object) -> None:
    async with anychat.serve(port=0, max_queue_bytes=64 * 1024, flood_rate=0) as server:
        async with (
            anychat.connect(*server.address, nick="ada") as ada,
            anychat.connect(*server.address, nick="bob") as bob,
        ):
            sloth = await LineClient.open(server.port)
            await sloth.send_json(type="hello", nick="sloth")
            await bob.wait_for(m.Joined, lambda e: e.nick == "sloth")
            text = "x" * 300
            cut: m.Quitted | None = None
            sent = 0
            with anyio.fail_after(30):
                # Sloth never reads: its kernel buffers fill, then its queue passes the bound.
                while cut is None:
                    await ada.send("#general", text)
                    sent += 1
                    got = await bob.wait_for(m.Message | m.Quitted)  # type: ignore[arg-type]
                    if isinstance(got, m.Quitted):
                        cut = got
            assert cut.nick == "sloth"
            assert cut.reason.startswith("send queue exceeded")
            # The room still works for everyone else.
            await ada.send("#general", "still here")
            msg = await bob.wait_for(m.Message, lambda e: e.text == "still here")
            assert msg.sender == "ada"
            await sloth.aclose()


async def test_connection_limit_is_a_clear_refusal(anyio_backend: object) -> None:
    async with anychat.serve(port=0, max_connections=1) as server:
        async with anychat.connect(*server.address, nick="ada"):
            extra = await LineClient.open(server.port)
            await extra.send_json(type="hello", nick="bob")
            bye = await extra.json_event("bye")
            assert bye["code"] == "too_many_connections"
            await extra.aclose()


async def test_flood_is_slowed_but_nothing_is_lost(anyio_backend: object) -> None:
    async with anychat.serve(port=0, flood_rate=2000, flood_burst=20) as server:
        async with (
            anychat.connect(*server.address, nick="ada") as ada,
            anychat.connect(*server.address, nick="bob") as bob,
            await LineClient.open(server.port) as flooder,
        ):
            count = 300
            lines = b'{"type":"hello","nick":"flood"}\n' + b"".join(
                json.dumps({"type": "say", "to": "#general", "text": f"f{i}"}).encode() + b"\n"
                for i in range(count)
            )
            await flooder.send(lines)
            # Others are served while the flood is being worked through.
            assert await bob.ping() >= 0
            texts: list[str] = []
            with anyio.fail_after(20):
                while len(texts) < count:
                    msg = await ada.wait_for(m.Message)
                    texts.append(msg.text)
            assert texts == [f"f{i}" for i in range(count)]


async def test_shutdown_tells_every_client(anyio_backend: object) -> None:
    async with anychat.serve(port=0) as server:
        js = await LineClient.open(server.port)
        await js.send_json(type="hello", nick="js")
        await js.json_event("members")
        nc = await LineClient.open(server.port)
        await nc.line_containing(b"Welcome")
    tail = await js.read_to_eof()
    assert json.loads(tail.splitlines()[-1]) == {
        "type": "bye",
        "code": "shutdown",
        "reason": "server shutting down",
    }
    assert (await nc.read_to_eof()).rstrip().endswith(b"*** server shutting down")
    await js.aclose()
    await nc.aclose()


async def test_connect_error_names_host_and_port(anyio_backend: object) -> None:
    async with anychat.serve(port=0) as server:
        port = server.port
    with pytest.raises(anychat.ConnectError, match=f"127.0.0.1:{port}"):
        async with anychat.connect("127.0.0.1", port):
            pass
