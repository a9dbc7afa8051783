"""Idempotency keys: a message resent after a lost ack is stored and relayed exactly once.

The broker and its bounded memory are tested with plain calls; then real servers: a resend on
the same connection, after a reconnect, and the Python client against a server process that is
SIGKILLed and restarted while messages are in flight (every message stored exactly once, every
ack naming the stored id).
"""

from __future__ import annotations

import os
import signal
import sqlite3
import sys
from pathlib import Path

import anyio
import pytest
from anyio.abc import Process

import anychat
from anychat import model as m
from anychat.broker import Broker, Deliver, Persist
from anychat.resend import RecentKeys, Sent

from .helpers import LineClient


def _broker() -> Broker[str]:
    broker: Broker[str] = Broker(clock=lambda: 100.0)
    for peer in ("ann", "bob"):
        broker.connect(peer)
        broker.handle(peer, m.Hello(nick=peer))
    return broker


def _say(broker: Broker[str], peer: str, **fields: object) -> list[object]:
    return list(broker.handle(peer, m.Say(target="#general", **fields)))  # type: ignore[arg-type]


def test_a_resent_key_gets_the_original_ack_and_is_not_relayed() -> None:
    broker = _broker()
    first = _say(broker, "ann", text="hi", key="k1", ref=1)
    persist = next(e for e in first if isinstance(e, Persist))
    assert not persist.resent
    again = _say(broker, "ann", text="hi", key="k1", ref=2)
    ack = m.Ack(id=persist.ack.id, time=persist.ack.time, target="#general", ref=2)
    assert again == [Persist(persist.message, "ann", ack, resent=True)]
    assert not any(isinstance(e, Deliver) for e in again)
    # Another nick's key of the same name is its own; a new key is a new message.
    other = _say(broker, "bob", text="hi", key="k1")
    assert next(e for e in other if isinstance(e, Persist)).message.id == persist.message.id + 1
    new = _say(broker, "ann", text="hi", key="k2")
    assert next(e for e in new if isinstance(e, Persist)).message.id == persist.message.id + 2


def test_a_repeated_ref_is_a_resend_only_for_the_same_message() -> None:
    broker = _broker()
    own = {"resend_by_ref": True}  # refs the client chose (JSON lines)
    first = next(e for e in _say(broker, "ann", text="a", ref=7, **own) if isinstance(e, Persist))
    repeat = _say(broker, "ann", text="a", ref=7, **own)
    assert len(repeat) == 1 and isinstance(repeat[0], Persist) and repeat[0].resent
    assert repeat[0].ack.id == first.ack.id
    reused = _say(broker, "ann", text="b", ref=7, **own)  # a script reusing its ref loses nothing
    assert any(isinstance(e, Deliver) for e in reused)
    # Refs belong to a connection: a new connection's ref 7 is a new message.
    broker.disconnect("ann")
    broker.connect("ann2")
    broker.handle("ann2", m.Hello(nick="ann"))
    assert any(isinstance(e, Deliver) for e in _say(broker, "ann2", text="a", ref=7, **own))


def test_refs_a_codec_numbered_itself_are_not_remembered() -> None:
    """IRC's refs are the codec's own numbers, never repeated: nothing to remember for them."""
    broker = _broker()
    for n in range(50):
        _say(broker, "ann", text="a", ref=n)
    assert len(broker.sent.keys) == 0
    # A repeat of one (which an IRC client cannot make) would be a new message, not a resend.
    assert any(isinstance(e, Deliver) for e in _say(broker, "ann", text="a", ref=3))
    _say(broker, "ann", text="a", ref=3, resend_by_ref=True)
    assert len(broker.sent.keys) == 1


def test_keys_of_unstored_messages_are_forgotten_so_a_resend_stores_them() -> None:
    broker = _broker()
    failed = [e for e in _say(broker, "ann", text="x", key="k") if isinstance(e, Persist)]
    broker.sent.forget_unstored(failed)
    again = _say(broker, "ann", text="x", key="k")
    assert any(isinstance(e, Deliver) for e in again)


@pytest.mark.parametrize("key", ["", "x" * (m.MAX_KEY_LENGTH + 1), "a\nb", "a\x00"])
def test_bad_keys_are_refused(key: str) -> None:
    (effect,) = _say(_broker(), "ann", text="x", key=key, ref=3)
    assert isinstance(effect, Deliver) and isinstance(effect.event, m.Error)
    assert effect.event.code is m.ErrorCode.BAD_COMMAND and effect.event.ref == 3


def test_recent_keys_are_bounded_per_scope_and_in_all() -> None:
    keys = RecentKeys(per_scope=3, max_keys=5)
    for i in range(10):
        keys.remember("a", i, Sent(i, 0.0, "#r"))
    assert len(keys) == 3 and keys.find("a", 6) is None and keys.find("a", 9) is not None
    for i in range(3):
        keys.remember("b", i, Sent(i, 0.0, "#r"))
    assert len(keys) == 5  # the least recently used scope ("a") lost its oldest
    assert keys.find("a", 7) is None and keys.find("b", 0) is not None
    keys.drop("b")
    assert len(keys) == 2


# ------------------------------------------------------------------------- real servers


async def _hello(port: int, nick: str) -> LineClient:
    client = await LineClient.open(port)
    await client.send_json(type="hello", nick=nick)
    await client.json_event("welcome")
    return client


async def test_a_resend_over_the_wire_is_stored_and_relayed_once(tmp_path: Path) -> None:
    url = f"sqlite:///{tmp_path / 'chat.db'}"
    async with anychat.serve(port=0, database_url=url) as srv:
        async with await _hello(srv.port, "bob") as bob:
            async with await _hello(srv.port, "ann") as ann:
                await ann.send_json(type="say", to="#general", text="once", key="K", ref=1)
                first = await ann.json_event("ack")
                await ann.send_json(type="say", to="#general", text="once", key="K", ref=2)
                second = await ann.json_event("ack")
            assert (second["id"], second["time"], second["ref"]) == (first["id"], first["time"], 2)
            # ann comes back on a new connection: the key still names her message.
            async with await _hello(srv.port, "ann") as ann:
                await ann.send_json(type="say", to="#general", text="once", key="K", ref=3)
                assert (await ann.json_event("ack"))["id"] == first["id"]
                await ann.send_json(type="say", to="#general", text="next", ref=4)
                await ann.json_event("ack")
            assert (await bob.json_event("message"))["text"] == "once"
            assert (await bob.json_event("message"))["text"] == "next"
            await bob.send_json(type="history", to="#general", ref="h")
            page = await bob.json_event("history")
            assert [msg["text"] for msg in page["messages"]] == ["once", "next"]


# --------------------------------------------------------- SIGKILL with messages in flight


async def _start(url: str, port: int = 0) -> tuple[Process, int]:
    env = {**os.environ, "ANYCHAT_SECRET": "k" * 40}
    proc = await anyio.open_process(
        [
            *(sys.executable, "-m", "anychat", "serve", "--port", str(port)),
            *("--database-url", url, "--log-level", "warning"),
        ],
        env=env,
    )
    assert proc.stdout is not None
    buffered = b""
    with anyio.fail_after(20):
        while b"listening on" not in buffered or not buffered.endswith(b"\n"):
            buffered += await proc.stdout.receive()
    line = next(x for x in buffered.decode().splitlines() if "listening on" in x)
    return proc, int(line.split("listening on ")[1].split()[0].rsplit(":", 1)[1])


async def _kill(proc: Process) -> None:
    proc.send_signal(signal.SIGKILL)
    with anyio.fail_after(10):
        await proc.wait()
    await proc.aclose()


@pytest.mark.skipif(sys.platform == "win32", reason="SIGKILL is POSIX")
async def test_client_resends_across_a_sigkill_and_every_message_is_stored_once(
    tmp_path: Path,
) -> None:
    path = tmp_path / "chat.db"
    url = f"sqlite:///{path}"
    proc, port = await _start(url)
    senders, each = 8, 25
    acks: dict[str, int] = {}
    killed = anyio.Event()
    third = anyio.Event()
    try:
        async with anychat.connect(
            "127.0.0.1", port, nick="ann", reconnect=True, reconnect_delay=0.05, timeout=20
        ) as ann:

            async def sender(n: int) -> None:
                for i in range(each):
                    text = f"{n}-{i}"
                    acks[text] = (await ann.send("#general", text)).id
                    if len(acks) >= senders * each // 3:
                        third.set()

            async def killer() -> None:
                nonlocal proc
                await third.wait()
                await _kill(proc)  # acks in flight, commits in flight: no grace at all
                proc, _ = await _start(url, port)
                killed.set()

            with anyio.fail_after(60):
                async with anyio.create_task_group() as tg:
                    tg.start_soon(killer)
                    for n in range(senders):
                        tg.start_soon(sender, n)
            assert killed.is_set()
    finally:
        await _kill(proc)
    assert len(acks) == senders * each
    db = sqlite3.connect(path)
    try:
        rows = db.execute("SELECT id, text FROM messages").fetchall()
    finally:
        db.close()
    texts = [text for _, text in rows]
    assert sorted(texts) == sorted(acks), "each message stored exactly once"
    assert {text: id_ for id_, text in rows} == acks, "each ack names the stored message"
