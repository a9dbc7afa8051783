"""History over IRC: no replay passing for live chat, chathistory batches, CHATHISTORY."""

from __future__ import annotations

import anyio
import pytest

import anychat
from anychat import model as m
from anychat.store.memory import MemoryStore

from .test_irc_channels import lines_until_pong
from .test_irc_server import Raw, raw

pytestmark = pytest.mark.timeout(30)

CAPS = "batch server-time message-tags draft/chathistory"


async def modern(peer: Raw, nick: str) -> None:
    await peer.send("CAP LS 302", f"NICK {nick}", f"USER {nick} 0 * :{nick}")
    await peer.send(f"CAP REQ :{CAPS}", "CAP END")
    assert await peer.until(" ACK ") == f":anychat CAP * ACK :{CAPS}"
    await peer.until(f" 422 {nick} ")


async def said(server: anychat.Server, *texts: str) -> list[int]:
    async with anychat.connect("127.0.0.1", server.port, nick="bob") as bob:
        await bob.join("#h")
        return [(await bob.send("#h", text)).id for text in texts]


async def test_plain_clients_get_no_replay_and_batch_clients_get_original_times(
    server: anychat.Server,
) -> None:
    ids = await said(server, "one", "two")
    async with raw(server.port, "cy") as cy, raw(server.port) as ada:
        await cy.until(" 422 cy ")
        await cy.send("JOIN #h")
        await cy.until("366 cy #h")
        assert await lines_until_pong(cy) == []  # nothing replayed to a plain client
        await modern(ada, "ada")
        await ada.send("JOIN #h")
        await ada.until("366 ada #h")
        replay = await lines_until_pong(ada)
        first = ids[0]
        assert replay[0] == f":anychat BATCH +r{first} chathistory #h"
        assert replay[1].startswith(f"@batch=r{first};time=")
        assert replay[1].endswith(f";msgid={first} :bob!~bob@anychat PRIVMSG #h :one")
        assert replay[2] == f":anychat BATCH -r{first}"
        assert len(replay) == 6


async def test_operators_may_replay_history_to_plain_clients(server: anychat.Server) -> None:
    async with anychat.serve(port=0, irc_history_replay=True) as srv:
        await said(srv, "kept")
        async with raw(srv.port, "cy") as cy:
            await cy.send("JOIN #h")
            assert (await cy.until("PRIVMSG")).endswith(":bob!~bob@anychat PRIVMSG #h :kept")


async def test_chathistory_requests(server: anychat.Server) -> None:
    ids = await said(server, *(f"m{i}" for i in range(6)))
    async with raw(server.port) as ada:
        await modern(ada, "ada")
        await ada.send("JOIN #h")
        await ada.until("366 ada #h")
        await lines_until_pong(ada)  # the join's replay

        async def texts(line: str) -> list[str]:
            await ada.send(line)
            out = await lines_until_pong(ada)
            assert out[0].startswith(":anychat BATCH +h") and out[0].endswith(" chathistory #h")
            assert out[-1].startswith(":anychat BATCH -h")
            return [x.rsplit(" :", 1)[1] for x in out[1:-1]]

        assert await texts("CHATHISTORY LATEST #h * 2") == ["m4", "m5"]
        assert await texts(f"CHATHISTORY BEFORE #h msgid={ids[3]} 2") == ["m1", "m2"]
        assert await texts(f"CHATHISTORY AFTER #h msgid={ids[3]} 10") == ["m4", "m5"]
        assert await texts(f"CHATHISTORY AROUND #h msgid={ids[2]} 4") == ["m1", "m2", "m3", "m4"]
        assert await texts(f"CHATHISTORY AROUND #h msgid={ids[2]} 1") == ["m2"]
        assert await texts(f"CHATHISTORY BETWEEN #h msgid={ids[4]} msgid={ids[0]} 10") == [
            "m1",
            "m2",
            "m3",
        ]
        # draft/chathistory: BETWEEN counts from its first reference towards the second.
        assert await texts(f"CHATHISTORY BETWEEN #h msgid={ids[5]} msgid={ids[0]} 2") == [
            "m3",
            "m4",
        ]
        assert await texts(f"CHATHISTORY BETWEEN #h msgid={ids[0]} msgid={ids[5]} 2") == [
            "m1",
            "m2",
        ]
        # LATEST with a reference: the newest messages, as long as they are after it.
        assert await texts(f"CHATHISTORY LATEST #h msgid={ids[1]} 2") == ["m4", "m5"]
        assert await texts(f"CHATHISTORY LATEST #h msgid={ids[3]} 10") == ["m4", "m5"]
        assert await texts(f"CHATHISTORY LATEST #h msgid={ids[5]} 10") == []
        # timestamp= references (moments well before and after these messages).
        past, future = "timestamp=2000-01-01T00:00:00.000Z", "timestamp=2100-01-01T00:00:00Z"
        assert await texts(f"CHATHISTORY BEFORE #h {past} 10") == []
        assert await texts(f"CHATHISTORY BEFORE #h {future} 2") == ["m4", "m5"]
        assert await texts(f"CHATHISTORY AFTER #h {past} 2") == ["m0", "m1"]
        assert await texts(f"CHATHISTORY AFTER #h {future} 2") == []
        assert await texts(f"CHATHISTORY LATEST #h {past} 2") == ["m4", "m5"]
        assert await texts(f"CHATHISTORY LATEST #h {future} 2") == []
        # One msgid= and one timestamp=, either way round, counted from the first.
        assert await texts(f"CHATHISTORY BETWEEN #h {past} msgid={ids[3]} 10") == [
            "m0",
            "m1",
            "m2",
        ]
        assert await texts(f"CHATHISTORY BETWEEN #h {past} msgid={ids[3]} 2") == ["m0", "m1"]
        assert await texts(f"CHATHISTORY BETWEEN #h msgid={ids[3]} {past} 2") == ["m1", "m2"]
        assert await texts(f"CHATHISTORY BETWEEN #h msgid={ids[1]} {future} 2") == ["m2", "m3"]
        assert await texts(f"CHATHISTORY BETWEEN #h {future} msgid={ids[1]} 2") == ["m4", "m5"]
        assert await texts(f"CHATHISTORY BETWEEN #h {future} msgid={ids[4]} 10") == ["m5"]
        assert await texts(f"CHATHISTORY BETWEEN #h msgid={ids[5]} {future} 10") == []
        assert await texts(f"CHATHISTORY BETWEEN #h msgid={ids[0]} {past} 10") == []
        assert await texts(f"CHATHISTORY BETWEEN #h {past} {future} 2") == ["m0", "m1"]
        assert await texts(f"CHATHISTORY BETWEEN #h {future} {past} 3") == ["m3", "m4", "m5"]
        assert await texts(f"CHATHISTORY AROUND #h {future} 4") == ["m4", "m5"]
        await ada.send(
            "CHATHISTORY LATEST #elsewhere * 5",
            "CHATHISTORY BEFORE #h timestamp=yesterday 5",
            "CHATHISTORY TARGETS timestamp=a timestamp=b 5",
            "CHATHISTORY LATEST #h",
        )
        with anyio.fail_after(5):
            assert (await ada.line()).startswith(
                ":anychat FAIL CHATHISTORY INVALID_TARGET LATEST #elsewhere :"
            )
        assert await ada.line() == (
            ":anychat FAIL CHATHISTORY INVALID_PARAMS BEFORE timestamp=yesterday "
            ":Invalid message reference"
        )
        assert await ada.line() == (
            ":anychat FAIL CHATHISTORY INVALID_PARAMS TARGETS timestamp=a :Invalid timestamp"
        )
        assert await ada.line() == ":anychat 461 ada CHATHISTORY :Not enough parameters"


async def test_between_a_msgid_and_a_timestamp_keeps_its_limit_when_clocks_disagree() -> None:
    """Messages whose times go back and forth (servers' clocks apart): both readings of a mixed
    BETWEEN find some, and the batch still holds at most the limit, in id order."""
    store = MemoryStore()
    times = [100.0, 200.0, 150.0, 300.0, 120.0, 400.0]
    await store.append_messages(
        [
            m.Message(id=i, time=t, sender="bob", target="#h", text=f"m{i}")
            for i, t in enumerate(times, start=1)
        ]
    )
    async with anychat.serve(port=0, store=store) as srv, raw(srv.port) as ada:
        await modern(ada, "ada")
        await ada.send("JOIN #h")
        await ada.until("366 ada #h")
        await lines_until_pong(ada)  # the join's replay

        async def texts(line: str) -> list[str]:
            await ada.send(line)
            out = await lines_until_pong(ada)
            return [x.rsplit(" :", 1)[1] for x in out[1:-1]]

        moment = "timestamp=1970-01-01T00:03:00.000Z"  # 180 s: m2 is after it, m5 before
        assert await texts(f"CHATHISTORY BETWEEN #h msgid=3 {moment} 10") == ["m2", "m5"]
        assert await texts(f"CHATHISTORY BETWEEN #h msgid=3 {moment} 1") == ["m2"]
