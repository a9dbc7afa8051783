"""IRCv3 client-only tags through the real server: relayed on PRIVMSG, NOTICE and TAGMSG to
clients that negotiated message-tags, validated and bounded, with raw sockets."""

from __future__ import annotations

import anyio
import pytest

import anychat
from anychat import model as m

from .test_irc_channels import lines_until_pong
from .test_irc_presence import capped, joined
from .test_irc_server import raw

pytestmark = pytest.mark.timeout(30)


async def test_tagmsg_goes_to_members_that_negotiated_message_tags(server: anychat.Server) -> None:
    async with (
        capped(server.port, "ada", "message-tags") as ada,
        capped(server.port, "bob", "message-tags") as bob,
        raw(server.port, "cy") as cy,
        anychat.connect("127.0.0.1", server.port, nick="js") as js,
    ):
        for peer, nick in ((ada, "ada"), (bob, "bob"), (cy, "cy")):
            await joined(peer, nick)
        await js.join("#a")
        await bob.until(" JOIN #a")
        await ada.send(
            r"@+typing=active;+draft/reply=5;bad!key=x;+=empty;msgid=9;+ok=a\sb\:c TAGMSG #a"
        )
        assert await bob.until("TAGMSG") == (
            r"@+typing=active;+draft/reply=5;+ok=a\sb\:c :ada!~ada@anychat TAGMSG #a"
        )
        assert [ln for ln in await lines_until_pong(cy) if "TAGMSG" in ln] == []
        assert [ln for ln in await lines_until_pong(ada) if "TAGMSG" in ln] == []  # no echo
        await ada.send("PRIVMSG #a :after the tags")
        with anyio.fail_after(5):
            first = await js.wait_for(m.Message)  # the JSON user saw nothing before it
        assert first.text == "after the tags"


async def test_privmsg_carries_client_tags_to_those_who_asked(server: anychat.Server) -> None:
    async with (
        capped(server.port, "ada", "message-tags echo-message server-time") as ada,
        capped(server.port, "bob", "message-tags") as bob,
        raw(server.port, "cy") as cy,
    ):
        for peer, nick in ((ada, "ada"), (bob, "bob"), (cy, "cy")):
            await joined(peer, nick)
        await ada.send("@+draft/reply=1;+x PRIVMSG #a :hi")
        relayed = await bob.until("PRIVMSG")
        tags, _, line = relayed.partition(" ")
        assert line == ":ada!~ada@anychat PRIVMSG #a :hi"
        assert tags.startswith("@msgid=") and tags.endswith(";+draft/reply=1;+x")
        assert await cy.until("PRIVMSG") == ":ada!~ada@anychat PRIVMSG #a :hi"
        echo = await ada.until("PRIVMSG")
        assert echo.startswith("@time=") and ";+draft/reply=1;+x :ada!~ada@anychat" in echo
        await ada.send("@+typing=done TAGMSG #a,bob")
        echoed = await ada.until("TAGMSG #a")  # echo-message echoes a TAGMSG too
        assert echoed.startswith("@time=") and echoed.endswith(
            ";+typing=done :ada!~ada@anychat TAGMSG #a"
        )
        assert await bob.until("TAGMSG #a") == "@+typing=done :ada!~ada@anychat TAGMSG #a"
        assert await bob.until("TAGMSG bob") == "@+typing=done :ada!~ada@anychat TAGMSG bob"


async def test_tags_from_a_client_without_message_tags_are_not_relayed(
    server: anychat.Server,
) -> None:
    async with capped(server.port, "ada", "message-tags") as ada, raw(server.port, "cy") as cy:
        await joined(ada, "ada")
        await joined(cy, "cy")
        await cy.send("@+typing=active TAGMSG #a", "@+x=1 PRIVMSG #a :plain")
        relayed = await ada.until("PRIVMSG")
        assert relayed.startswith("@msgid=") and " " not in relayed.split(" ", 1)[0][1:]
        assert "+x" not in relayed
        assert relayed.split(" ", 1)[1] == ":cy!~cy@anychat PRIVMSG #a :plain"
        assert [ln for ln in await lines_until_pong(ada) if "TAGMSG" in ln] == []


async def test_bad_tagmsg_is_refused_once_and_loses_nothing(server: anychat.Server) -> None:
    async with capped(server.port, "ada", "message-tags") as ada, raw(server.port, "bob") as bob:
        await joined(ada, "ada")
        await joined(bob, "bob")
        await ada.send("@+t=1 TAGMSG nobody")
        assert await ada.until(" 401 ") == ":anychat 401 ada nobody :No such nick/channel"
        await ada.send("@+t=1 TAGMSG #nowhere")
        assert await ada.line() == ":anychat 401 ada #nowhere :No such nick/channel"
        await ada.send("TAGMSG")
        assert await ada.line() == ":anychat 411 ada :No recipient given (TAGMSG)"
        await ada.send("@+" + "v" * 4094 + " PRIVMSG #a :too many tags")
        assert await ada.line() == ":anychat 417 ada :Input line was too long"
        await ada.send("@+" + "v" * 4000 + " PRIVMSG #a :just fits")
        assert await bob.until("PRIVMSG") == ":ada!~ada@anychat PRIVMSG #a :just fits"
