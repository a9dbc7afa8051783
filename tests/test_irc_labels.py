"""IRCv3 labeled-response through the real server, with raw sockets and the ``irc`` package:
one labeled line, a labeled-response batch, or ACK, for local and broker answers alike."""

from __future__ import annotations

import re

import pytest

import anychat

from .test_irc_channels import lines_until_pong
from .test_irc_interop import irc_peer
from .test_irc_presence import capped, joined
from .test_irc_server import Raw, raw
from .webclient import http_get

pytestmark = pytest.mark.timeout(30)

CAPS = "labeled-response batch message-tags"


async def answer(peer: Raw, line: str) -> list[str]:
    """What ``line`` got back (every line up to a PING round trip after it)."""
    await peer.send(line)
    return await lines_until_pong(peer)


def unbatched(lines: list[str], label: str) -> list[str]:
    """The lines of a labeled-response batch, checked and without their batch tag."""
    opening = re.fullmatch(rf"@label={label} :anychat BATCH \+(\S+) labeled-response", lines[0])
    assert opening, lines
    name = opening.group(1)
    assert lines[-1] == f":anychat BATCH -{name}"
    inner = lines[1:-1]
    out = []
    for line in inner:
        prefix = f"@batch={name} "
        if line.startswith(prefix):
            out.append(line[len(prefix) :])
        elif not line.startswith(f"@batch={name};"):
            assert line.startswith("@batch="), line  # a nested batch's line: its own tag
            out.append(line)
        else:
            assert line.startswith(f"@batch={name};"), line
            out.append("@" + line[len(f"@batch={name};") :])
    return out


async def test_local_answers_are_labeled_or_acked(server: anychat.Server) -> None:
    async with capped(server.port, "ada", CAPS) as ada:
        assert await answer(ada, "@label=a1 PING :tok") == ["@label=a1 :anychat PONG anychat tok"]
        assert await answer(ada, "@label=a2 PONG :tok") == ["@label=a2 :anychat ACK"]
        assert await answer(ada, "@label=a3 BOGUS") == [
            "@label=a3 :anychat 421 ada BOGUS :Unknown command"
        ]
        whowas = await answer(ada, "@label=a4 WHOWAS nobody")
        assert unbatched(whowas, "a4") == [
            ":anychat 406 ada nobody :There was no such nickname",
            ":anychat 369 ada nobody :End of WHOWAS",
        ]


async def test_broker_answers_are_labeled(server: anychat.Server) -> None:
    async with (
        capped(server.port, "ada", CAPS + " echo-message") as ada,
        raw(server.port, "bob") as bob,
    ):
        joinlines = unbatched(await answer(ada, "@label=j1 JOIN #l"), "j1")
        assert joinlines == [
            ":ada!~ada@anychat JOIN #l",
            ":anychat 353 ada = #l :@ada",
            ":anychat 366 ada #l :End of /NAMES list",
        ]
        await joined(bob, "bob", "#l")
        await ada.until(" JOIN #l")
        # A stored message's echo comes once it is on disk: labeled, then.
        await ada.send("@label=p1 PRIVMSG #l :hi")
        said = await ada.until("PRIVMSG")
        assert said.startswith("@label=p1;msgid=")
        assert said.endswith(" :ada!~ada@anychat PRIVMSG #l :hi")
        assert await bob.until("PRIVMSG") == ":ada!~ada@anychat PRIVMSG #l :hi"  # no label
        assert await answer(ada, "@label=m1 MONITOR + bob") == [
            "@label=m1 :anychat 730 ada :bob!~bob@anychat"
        ]
        assert await answer(ada, "@label=m2 MONITOR - bob") == ["@label=m2 :anychat ACK"]
        whois = unbatched(await answer(ada, "@label=w1 WHOIS nobody"), "w1")
        assert whois == [
            ":anychat 401 ada nobody :No such nick/channel",
            ":anychat 318 ada nobody :End of /WHOIS list",
        ]
        modes = unbatched(await answer(ada, "@label=o1 MODE #l +oo nobody nobody2"), "o1")
        assert modes == [
            ":anychat 401 ada nobody :No such nick/channel",
            ":anychat 401 ada nobody2 :No such nick/channel",
        ]
        history = unbatched(await answer(ada, "@label=h1 CHATHISTORY LATEST #l * 10"), "h1")
        assert re.fullmatch(r":anychat BATCH \+(\S+) chathistory #l", history[0])
        assert history[1].startswith("@batch=") and history[1].endswith("PRIVMSG #l :hi")


async def test_a_message_without_echo_is_acked(server: anychat.Server) -> None:
    async with capped(server.port, "ada", CAPS) as ada:
        await joined(ada, "ada", "#l")
        await ada.send("@label=p3 PRIVMSG #l :unechoed")
        assert await ada.until(" ACK") == "@label=p3 :anychat ACK"
        await ada.send("@label=p4 PRIVMSG nobody :lost")
        assert await ada.until("p4") == "@label=p4 :anychat 401 ada nobody :No such nick/channel"


async def test_without_the_capability_labels_are_ignored(server: anychat.Server) -> None:
    async with capped(server.port, "ada", "batch message-tags") as ada:
        assert await answer(ada, "@label=x PING :tok") == [":anychat PONG anychat tok"]
    async with capped(server.port, "bob", CAPS) as bob:
        long = "x" * 65
        assert await answer(bob, f"@label={long} PING :tok") == [":anychat PONG anychat tok"]


async def test_labels_with_the_irc_package(server: anychat.Server) -> None:
    async with irc_peer(server.port, "ada") as ada:
        await ada.wait_for("welcome")
        await ada.call("cap", "REQ", "labeled-response batch message-tags")
        await ada.wait_for("cap")
        await ada.call("send_raw", "@label=q1 PING :tok")
        pong = await ada.wait_for("pong")
        assert {"key": "label", "value": "q1"} in pong.tags


async def test_each_refused_mode_change_is_its_own_numeric(server: anychat.Server) -> None:
    async with raw(server.port, "ada") as ada:
        await joined(ada, "ada", "#l")
        assert await answer(ada, "MODE #l +oo nobody nobody2") == [
            ":anychat 401 ada nobody :No such nick/channel",
            ":anychat 401 ada nobody2 :No such nick/channel",
        ]


async def commands_in(port: int) -> int:
    """The server's count of commands received, the one flood control goes by."""
    metrics = (await http_get(port, "/metrics")).body.decode().splitlines()
    line = next(x for x in metrics if x.startswith("anychat_messages_in_total "))
    return int(line.split()[1])


async def test_a_labeled_command_counts_once_against_the_flood_limit(
    server: anychat.Server,
) -> None:
    """The fence a label needs is the server's own: the client sent one command, not two."""
    async with capped(server.port, "ada", CAPS) as ada:
        await joined(ada, "ada", "#l")

        async def counted(*lines: str) -> int:
            before = await commands_in(server.port)
            for line in lines:
                await answer(ada, line)  # and a PING
            return await commands_in(server.port) - before

        asking = await counted()  # the metrics request itself
        plain = await counted("PRIVMSG #l :one", "WHOIS ada", "CHATHISTORY LATEST #l * 5")
        assert plain == asking + 6
        labeled = ["@label=a PRIVMSG #l :one", "@label=b WHOIS ada", "@label=c PING :x"]
        assert await counted(*labeled, "@label=d CHATHISTORY LATEST #l * 5") == asking + 8
