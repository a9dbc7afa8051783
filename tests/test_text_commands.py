"""Every protocol offers the same commands: /topic, /away, /whois, /names, /list for people on
nc and in the terminal client, through the one grammar; topics set elsewhere reach both."""

from __future__ import annotations

import anyio

import anychat
from anychat import model as m

from .helpers import LineClient
from .test_terminal import DEADLINE, _prompt_ready, chat_in_terminal


async def test_nc_user_has_topic_away_whois_names_and_list() -> None:
    async with anychat.serve(port=0, sniff_seconds=0.05) as server:
        async with (
            anychat.connect(*server.address, nick="bob") as bob,
            await LineClient.open(server.port) as nc,
        ):
            await nc.line_containing(b"Welcome")
            await nc.send(b"/nick ada\r\n/topic all about crabs\r\n")
            assert await nc.line_containing(b"* topic of #general") == (
                b"* topic of #general: all about crabs (set by ada)"
            )
            with anyio.fail_after(DEADLINE):
                topic = await bob.wait_for(m.RoomTopic)
            assert (topic.text, topic.setter) == ("all about crabs", "ada")
            await nc.send(b"/topic\r\n/away at lunch\r\n/whois bob\r\n/names\r\n/list\r\n")
            assert b"all about crabs" in await nc.line_containing(b"* topic of")
            assert await nc.line() == b"* you are away: at lunch"
            assert await nc.line() == b"* bob is in #general"
            assert (await nc.line()).startswith(b"* #general (2): ")
            assert await nc.line() == b"* rooms:"
            assert await nc.line() == b"*   #general (2): all about crabs"
            assert (await bob.whois("ada")).away == "at lunch"
            # Invalid UTF-8 is answered, as the JSON protocol does, and nothing else is lost.
            await nc.send(b"bad utf8 \xff\xfe\xc3( end\r\n\xff\xff\xff\r\nfine\r\n")
            assert await nc.line() == b"! line was not valid UTF-8"
            assert await nc.line() == b"! line was not valid UTF-8"
            with anyio.fail_after(DEADLINE):
                said = await bob.wait_for(m.Message)
            assert said.text == "fine"
            # The fix for an error is the text client's business: the hint is in slash words.
            await nc.send(b"/part\r\nhello?\r\n")
            assert await nc.line_containing(b"! ") == (
                b"! you are not in a room; /join #room first"
            )


async def test_terminal_client_shows_topics_and_has_the_same_commands() -> None:
    async with (
        anychat.serve(port=0) as server,
        anychat.connect(*server.address, nick="bob") as bob,
    ):
        await bob.topic("#general", "release on friday")
        async with chat_in_terminal(server.port, "--nick", "ada") as term:
            # Entering a room shows its topic.
            await term.wait_for_text("topic of #general: release on friday (set by bob)")
            await term.wait_until(_prompt_ready(term, "ada"), "prompt")
            await bob.topic("#general", "release on monday")
            await term.wait_for_text("bob set the topic of #general: release on monday")
            term.type("/topic moved again\r")
            with anyio.fail_after(DEADLINE):
                changed = await bob.wait_for(m.RoomTopic)
            assert changed.text == "moved again" and changed.setter == "ada"
            term.type("/away brb\r")
            await term.wait_for_text("you are away: brb")
            term.type("/whois bob\r")
            await term.wait_for_text("bob is in #general; connected since")
            term.type("/list\r")
            await term.wait_for_text("#general (2): moved again")
            term.type("/names\r")
            await term.wait_for_text("in #general: bob")
            term.type("/whois\r")
            await term.wait_for_text("usage: /whois NICK")
            term.type("/quit\r")
            assert await term.wait_exit() == 0
        assert (await bob.whois("bob")).nick == "bob"
