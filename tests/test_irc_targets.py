"""CHATHISTORY TARGETS over IRC: which conversations had messages when, as the asker may see them.

Rooms count while the asker is in them; private conversations once it is logged in (as for
reading their history). Both stores that serve one node are checked; the PostgreSQL store's
query is checked by tests/test_store_contract.py like every other store query.
"""

from __future__ import annotations

import re
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from pathlib import Path

import pytest

import anychat

from .test_irc_channels import lines_until_pong
from .test_irc_server import Raw, raw

pytestmark = pytest.mark.timeout(30)

PASSWORD = "correct horse battery"
PAST, FUTURE = "timestamp=2000-01-01T00:00:00.000Z", "timestamp=2100-01-01T00:00:00.000Z"
CAPS = "batch server-time message-tags draft/chathistory labeled-response"


@pytest.fixture(params=["memory", "sqlite"])
async def server(request: pytest.FixtureRequest, tmp_path: Path) -> AsyncIterator[anychat.Server]:
    url = "memory://" if request.param == "memory" else f"sqlite:///{tmp_path / 'chat.db'}"
    async with anychat.serve(
        port=0, database_url=url, login_delay_seconds=0, secret="s" * 40
    ) as srv:
        yield srv


@asynccontextmanager
async def irc(port: int, nick: str, caps: str = "", password: str = "") -> AsyncIterator[Raw]:
    """A registered IRC client with ``caps``, logged in to its account with ``password``."""
    async with raw(port) as peer:
        lines = [f"PASS {password}"] if password else []
        if caps:
            lines += ["CAP LS 302", f"CAP REQ :{caps}"]
        await peer.send(*lines, f"NICK {nick}", f"USER {nick} 0 * :{nick}")
        if caps:
            assert await peer.until(" ACK ") == f":anychat CAP * ACK :{caps}"
            await peer.send("CAP END")
        await peer.until(f" 422 {nick} ")
        yield peer


async def answer(peer: Raw, line: str) -> list[str]:
    await peer.send(line)
    return await lines_until_pong(peer)


def unbatched(lines: list[str], kind: str = "draft/chathistory-targets") -> list[str]:
    """The lines of one batch of ``kind``, checked and without their batch tag."""
    opening = re.fullmatch(rf":anychat BATCH \+(\S+) {re.escape(kind)}", lines[0])
    assert opening, lines
    name = opening.group(1)
    assert lines[-1] == f":anychat BATCH -{name}"
    inner = lines[1:-1]
    assert all(line.startswith(f"@batch={name} ") for line in inner), lines
    return [line.split(" ", 1)[1] for line in inner]


async def stamps(peer: Raw, name: str) -> list[str]:
    """The ``server-time`` of each stored message of ``name``, oldest first: exactly what a
    TARGETS line shows for a message (the acks' times are rounded, these are not)."""
    lines = await answer(peer, f"CHATHISTORY LATEST {name} * 10")
    found = [re.search(r"[@;]time=([^; ]+)", line) for line in lines if " PRIVMSG " in line]
    assert all(found), lines
    return [x.group(1) for x in found if x]


def target(name: str, stamp: str) -> str:
    return f":anychat CHATHISTORY TARGETS {name} {stamp}"


async def test_targets_list_the_rooms_and_private_chats_the_asker_may_read(
    server: anychat.Server,
) -> None:
    async with anychat.connect("127.0.0.1", server.port, nick="ada", autojoin=False) as ada:
        await ada.register(PASSWORD)
    async with (
        anychat.connect("127.0.0.1", server.port, nick="bob", autojoin=False) as bob,
        anychat.connect("127.0.0.1", server.port, nick="cy", autojoin=False) as cy,
    ):
        await bob.join("#pub")
        await bob.join("#secret")
        await bob.send("#pub", "public")
        await bob.send("#secret", "not for ada")  # ada is not in it
        await bob.send("#pub", "public again")
        await bob.send("#pub", "public, last")
        await bob.send("ada", "to ada, stored while she is away")
        await cy.send("ada", "hi ada")
        await cy.send("bob", "between others")  # not ada's
        async with irc(server.port, "ada", CAPS, PASSWORD) as peer:
            await peer.send("JOIN #pub")
            await peer.until("366 ada #pub")
            await lines_until_pong(peer)  # the join's replay
            said = {name: await stamps(peer, name) for name in ("#pub", "bob", "cy")}
            assert [len(x) for x in said.values()] == [3, 1, 1]
            pub, from_bob, from_cy = (target(name, x[-1]) for name, x in said.items())
            mine = await answer(peer, f"CHATHISTORY TARGETS {PAST} {FUTURE} 10")
            assert unbatched(mine) == [pub, from_bob, from_cy]
            # Counted from the first moment: the oldest, or (the later first) the newest.
            oldest = await answer(peer, f"CHATHISTORY TARGETS {PAST} {FUTURE} 1")
            assert unbatched(oldest) == [pub]
            newest = await answer(peer, f"CHATHISTORY TARGETS {FUTURE} {PAST} 2")
            assert unbatched(newest) == [from_bob, from_cy]
            # Up to bob's private message (excluded): each conversation's last message before
            # (stamps in this one format compare as the moments they name).
            upto = said["bob"][0]
            last = {name: x[-1] for name in said if (x := [t for t in said[name] if t < upto])}
            window = await answer(peer, f"CHATHISTORY TARGETS {PAST} timestamp={upto} 10")
            assert "bob" not in last and unbatched(window) == [target(*x) for x in last.items()]
            assert unbatched(await answer(peer, f"CHATHISTORY TARGETS {FUTURE} {FUTURE} 5")) == []
            # Labeled: the targets batch nests in the labeled-response batch.
            labeled = await answer(peer, f"@label=t1 CHATHISTORY TARGETS {PAST} {FUTURE} 1")
            outer = re.fullmatch(r"@label=t1 :anychat BATCH \+(\S+) labeled-response", labeled[0])
            assert outer and labeled[-1] == f":anychat BATCH -{outer.group(1)}"
            inner = labeled[1:-1]
            assert inner[0].startswith(f"@batch={outer.group(1)} :anychat BATCH +")
            assert inner[0].endswith(" draft/chathistory-targets")
            assert inner[1].endswith(pub)
            # Leaving a room takes it off the list.
            await peer.send("PART #pub")
            await peer.until("PART #pub")
            left = await answer(peer, f"CHATHISTORY TARGETS {PAST} {FUTURE} 10")
            assert unbatched(left) == [from_bob, from_cy]


async def test_guests_see_rooms_only_and_without_batch_the_lines_come_bare(
    server: anychat.Server,
) -> None:
    async with (
        irc(server.port, "dee", "server-time") as dee,
        anychat.connect("127.0.0.1", server.port, nick="bob", autojoin=False) as bob,
    ):
        await dee.send("JOIN #pub")
        await dee.until("366 dee #pub")
        await bob.join("#pub")
        await bob.send("#pub", "hello")
        await bob.send("dee", "a private word")  # stored, but dee has no account to read it
        await lines_until_pong(dee)
        (said,) = await stamps(dee, "#pub")
        assert await answer(dee, f"CHATHISTORY TARGETS {FUTURE} {PAST} 10") == [
            target("#pub", said)
        ]
        assert await answer(dee, f"CHATHISTORY TARGETS {PAST} {PAST} 10") == []  # no batch


async def test_bad_targets_requests_fail_with_invalid_params(server: anychat.Server) -> None:
    async with irc(server.port, "eve", CAPS) as eve:
        await eve.send(
            "CHATHISTORY TARGETS timestamp=yesterday timestamp=2100-01-01T00:00:00Z 5",
            f"CHATHISTORY TARGETS {PAST} msgid=12 5",
            f"CHATHISTORY TARGETS {PAST} timestamp=2100-01-01T00:00:00 5",  # no time zone
            f"CHATHISTORY TARGETS {PAST} {FUTURE} many",
            f"CHATHISTORY TARGETS {PAST} {FUTURE} 5 more",
            f"CHATHISTORY TARGETS {PAST} {FUTURE}",
        )
        fail = ":anychat FAIL CHATHISTORY INVALID_PARAMS TARGETS"
        assert await lines_until_pong(eve) == [
            f"{fail} timestamp=yesterday :Invalid timestamp",
            f"{fail} msgid=12 :Invalid timestamp",
            f"{fail} timestamp=2100-01-01T00:00:00 :Invalid timestamp",
            f"{fail} many :Invalid limit",
            f"{fail} :Too many parameters",
            ":anychat 461 eve CHATHISTORY :Not enough parameters",
        ]
        # Nothing was lost: the connection still answers.
        assert unbatched(await answer(eve, f"CHATHISTORY TARGETS {PAST} {FUTURE} 5")) == []
