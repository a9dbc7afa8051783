"""PostgreSQL: migrations, connection loss and recovery, a server on it, the admin commands.

The shared store contract (tests/test_store_contract.py) and the history tests over the wire
(tests/test_history.py) run against PostgreSQL too; this module covers what only a database
server has: a connection that can be cut, a server that can refuse connections, nodes that
migrate one database at once.
"""

from __future__ import annotations

import json
import logging
import re
import subprocess
import sys
from collections.abc import Awaitable, Callable
from pathlib import Path

import anyio
import pytest
from typer.testing import CliRunner

import anychat
from anychat import cli
from anychat import model as m
from anychat.errors import StoreError, StoreUnavailable
from anychat.store import Account, open_store

from .helpers import LineClient
from .postgres import PostgresServer


def msg(msg_id: int, text: str = "hi", target: str = "#r") -> m.Message:
    return m.Message(id=msg_id, time=1000.5 + msg_id, sender="ann", target=target, text=text)


async def test_schema_version_and_newer_database_refused(
    postgres: PostgresServer, postgres_url: str
) -> None:
    async with open_store(postgres_url) as store:
        await store.append_messages([msg(1)])
    async with open_store(postgres_url) as store:  # reopening migrates nothing, keeps data
        assert await store.last_message_id() == 1
    from anychat.store.postgres import MIGRATIONS

    assert postgres.query(postgres_url, "SELECT version FROM schema_version") == [
        (len(MIGRATIONS),)
    ]
    postgres.query(postgres_url, "UPDATE schema_version SET version = 99 RETURNING version")
    with pytest.raises(StoreError, match="newer"):
        async with open_store(postgres_url):
            pass


async def test_nodes_opening_a_new_database_together_migrate_once(postgres_url: str) -> None:
    opened: list[int] = []

    async def node() -> None:
        async with open_store(postgres_url) as store:
            opened.append(await store.last_message_id())

    with anyio.fail_after(30):
        async with anyio.create_task_group() as tg:
            for _ in range(4):
                tg.start_soon(node)
    assert opened == [0, 0, 0, 0]


async def test_a_cut_connection_is_replaced_before_it_is_used(
    postgres: PostgresServer, postgres_url: str
) -> None:
    async with open_store(postgres_url) as store:
        await store.append_messages([msg(1)])
        assert await anyio.to_thread.run_sync(postgres.terminate) == 1
        await store.append_messages([msg(2)])  # no error: the dead connection was noticed
        assert [x.id for x in await store.history("#r")] == [1, 2]


async def test_outage_raises_store_error_then_recovers_by_itself(
    postgres: PostgresServer, postgres_url: str
) -> None:
    async with open_store(postgres_url) as store:
        await store.create_account(Account(nick="ann", password_hash="h"))
        postgres.refuse_connections(True)
        try:
            await anyio.to_thread.run_sync(postgres.terminate)
            attempts: list[Callable[[], Awaitable[object]]] = [
                lambda: store.append_messages([msg(1)]),
                lambda: store.get_account("ann"),
                lambda: store.history("#r"),
                store.last_message_id,
            ]
            for attempt in attempts:
                with pytest.raises(StoreError, match="unreachable") as info:
                    await attempt()
                assert postgres.dbname in str(info.value)
        finally:
            postgres.refuse_connections(False)
        await store.append_messages([msg(2)])
        assert [x.id for x in await store.history("#r")] == [2]
        assert await store.get_account("ANN") == Account(nick="ann", password_hash="h")


async def test_unreachable_database_at_open_is_one_clear_error(postgres: PostgresServer) -> None:
    url = f"{postgres.base_url}_missing".replace("://", "://nobody:hunter2@", 1)
    with pytest.raises(StoreError, match="cannot open database") as info:
        async with open_store(url):
            pass
    assert "hunter2" not in str(info.value)
    assert "nobody:***@" in str(info.value)


async def test_server_on_postgresql_acks_pages_and_replays_after_restart(
    postgres_url: str,
) -> None:
    with anyio.fail_after(20):
        async with (
            anychat.serve(port=0, database_url=postgres_url, history_length=3) as srv,
            anychat.connect(*srv.address, nick="ann") as ann,
        ):
            acks = [await ann.send("#general", f"m{i}") for i in range(6)]
            ids = [a.id for a in acks]
            assert ids == sorted(ids) and len(set(ids)) == 6
            page = await ann.history("#general", limit=2)
            assert [x.text for x in page] == ["m4", "m5"]
            older = await ann.history("#general", before=page[0].id, limit=3)
            assert [x.text for x in older] == ["m1", "m2", "m3"]
            # Backslashes (the store's escape character for NUL) and controls come back as sent.
            odd = "back\\slash \\0 and \\\\0 \x07 \u202e"
            await ann.send("#general", odd)
            assert [x.text for x in await ann.history("#general", limit=1)] == [odd]
        # A new server process on the same database: ids go on, joiners get the replay.
        async with (
            anychat.serve(port=0, database_url=postgres_url, history_length=3) as srv,
            anychat.connect(*srv.address, nick="bob", history=True) as bob,
        ):
            replay = [await bob.wait_for(m.Message) for _ in range(3)]
            assert [(x.text, x.history) for x in replay] == [
                ("m4", True),
                ("m5", True),
                (odd, True),
            ]
            ack = await bob.send("#general", "after restart")
            assert ack.id == ids[-1] + 2


async def test_postgresql_outage_mid_run_live_chat_goes_on(
    postgres: PostgresServer, postgres_url: str, caplog: pytest.LogCaptureFixture
) -> None:
    caplog.set_level(logging.WARNING, logger="anychat")
    with anyio.fail_after(30):
        async with (
            anychat.serve(port=0, database_url=postgres_url) as srv,
            anychat.connect(*srv.address, nick="ann") as ann,
            anychat.connect(*srv.address, nick="bob") as bob,
        ):
            await ann.send("#general", "one")
            # Connections cut while PostgreSQL stays up: replaced unnoticed.
            await anyio.to_thread.run_sync(postgres.terminate)
            await ann.send("#general", "two")
            # Now PostgreSQL refuses every connection: senders are told, chat goes on.
            postgres.refuse_connections(True)
            try:
                await anyio.to_thread.run_sync(postgres.terminate)
                with pytest.raises(StoreUnavailable, match="not stored"):
                    await ann.send("#general", "three")
                with pytest.raises(StoreUnavailable):
                    await bob.history("#general")
                async with anychat.connect(*srv.address, nick="cy", autojoin=False) as cy:
                    await cy.join("#general")
                    with pytest.raises(StoreUnavailable):
                        await cy.send("#general", "four")
                    with pytest.raises(StoreUnavailable):
                        await cy.register("cy's password")
                    assert (await bob.wait_for(m.Message)).text == "one"
                    assert [(await bob.wait_for(m.Message)).text for _ in range(3)] == [
                        "two",
                        "three",
                        "four",
                    ]
            finally:
                postgres.refuse_connections(False)
            # Back: the next message commits on a new connection, no restart.
            await ann.send("#general", "five")
            assert [x.text for x in await bob.history("#general")] == ["one", "two", "five"]
    failures = [r for r in caplog.records if "message store failed" in r.getMessage()]
    assert len(failures) == 1
    assert any("recovered" in r.getMessage() for r in caplog.records)


def test_admin_commands_on_postgresql(postgres_url: str, tmp_path: Path) -> None:
    runner = CliRunner()

    def run(*args: str, password: str | None = None) -> tuple[int, str]:
        result = runner.invoke(
            cli.app, [*args, "--database-url", postgres_url], input=password and password + "\n"
        )
        # stdout for what a script reads; errors (and which database) go to stderr.
        return result.exit_code, result.stdout if result.exit_code == 0 else result.output

    assert run("users", "add", "Alice", password="a good password") == (0, "registered Alice\n")
    code, out = run("users", "add", "alice", password="a good password")
    assert code == 1 and "already registered" in out
    assert run("users", "add", "bob", password="another password")[0] == 0
    code, out = run("users", "list")
    assert code == 0 and [line.split("\t")[0] for line in out.splitlines()] == ["Alice", "bob"]
    assert run("users", "passwd", "ALICE", password="a third password")[0] == 0
    assert run("users", "passwd", "nobody", password="a third password")[0] == 1

    async def fill() -> None:
        async with open_store(postgres_url) as store:
            account = await store.get_account("alice")
            assert account is not None and account.password_hash.startswith("$argon2")
            await store.append_messages(
                [msg(i, f"line {i}", "#general") for i in range(1, 601)] + [msg(601, "x", "#x")]
            )

    anyio.run(fill)
    out_file = tmp_path / "general.jsonl"
    code, _ = run("history", "export", "--room", "#General", "-o", str(out_file))
    assert code == 0
    lines = out_file.read_text().splitlines()
    assert len(lines) == 600  # more than one page of MAX_HISTORY_LIMIT, nothing from #x
    assert '"line 1"' in lines[0] and '"line 600"' in lines[-1]
    assert run("users", "delete", "alice") == (0, "deleted alice\n")
    assert run("users", "delete", "alice")[0] == 1
    code, out = run("users", "list")
    assert out.startswith("bob\t")


async def _anychat(*args: str, stdin: str = "") -> tuple[int, str, str]:
    """Run the real command line (``python -m anychat ...``) in a process of its own."""
    done = await anyio.run_process(
        [sys.executable, "-m", "anychat", *args], input=stdin.encode(), check=False
    )
    return done.returncode, done.stdout.decode(), done.stderr.decode()


async def test_admin_command_processes_on_postgresql_beside_a_server(postgres_url: str) -> None:
    """``anychat users ...`` and ``anychat history export`` as processes, against the database
    a server uses: the account they add logs in there, the export has what it stored."""
    url = ["--database-url", postgres_url]
    code, out, err = await _anychat("users", "add", "zoe", *url, stdin="zoe's long password\n")
    assert (code, out) == (0, "registered zoe\n"), err
    assert "using database postgresql://" in err  # said on stderr: stdout stays the answer
    code, _, err = await _anychat("users", "add", "ZOE", *url, stdin="zoe's long password\n")
    assert code == 1 and "ZOE is already registered" in err
    code, out, _ = await _anychat("users", "list", *url)
    assert code == 0 and [line.split("\t")[0] for line in out.splitlines()] == ["zoe"]
    async with (
        anychat.serve(port=0, database_url=postgres_url) as server,
        anychat.connect(*server.address, nick="zoe", password="zoe's long password") as zoe,
    ):
        assert zoe.token is not None  # logged in with the password the command line set
        acks = [await zoe.send("#general", f"line {i}") for i in range(3)]  # acked: committed
        code, out, err = await _anychat("history", "export", "--room", "#general", *url)
        assert code == 0, err
        exported = [json.loads(line) for line in out.splitlines()]
        assert [(e["id"], e["from"], e["text"]) for e in exported] == [
            (ack.id, "zoe", f"line {i}") for i, ack in enumerate(acks)
        ]
        code, out, err = await _anychat("users", "delete", "zoe", *url)
        assert (code, out) == (0, "deleted zoe\n"), err
        with anyio.fail_after(20):  # the server follows the change log (once a second)
            notice = await zoe.wait_for(m.Error)
        assert notice.code is m.ErrorCode.ACCOUNT_DELETED
    code, out, _ = await _anychat("users", "list", *url)
    assert (code, out) == (0, "")


def _serve_subprocess(url: str) -> subprocess.Popen[bytes]:
    return subprocess.Popen(
        [sys.executable, "-m", "anychat", "serve", "--port", "0", "--database-url", url],
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
    )


async def test_serve_subprocess_on_postgresql_hides_the_password(
    postgres: PostgresServer, postgres_url: str
) -> None:
    """``anychat serve`` as a user runs it; trust auth ignores the password, which therefore
    can be in the URL without being needed, and must appear in no output."""
    url, count = re.subn(r"://([^:@/]+)@", r"://\1:hunter2@", postgres_url, count=1)
    if not count:
        pytest.skip("the test server's URL has a password of its own (not trust auth)")
    proc = _serve_subprocess(url)
    try:
        assert proc.stdout is not None and proc.stderr is not None
        first = proc.stdout.readline()
        match = re.search(rb"listening on 127\.0\.0\.1:(\d+)", first)
        assert match, first + proc.stderr.read()
        storing = b""
        while b"storing accounts" not in storing:
            line = proc.stdout.readline()
            assert line, proc.stderr.read()
            storing += line
        assert b"postgresql://" in storing and b":***@" in storing
        with anyio.fail_after(15):
            async with await LineClient.open(int(match.group(1))) as js:
                await js.send_json(type="hello", nick="js")
                await js.json_event("members")
                await js.send_json(type="say", to="#general", text="stored in postgres")
                ack = await js.json_event("ack")
        rows = postgres.query(postgres_url, "SELECT id, text FROM messages")
        assert rows == [(ack["id"], "stored in postgres")]
    finally:
        proc.kill()
        out, err = proc.communicate(timeout=10)
    assert b"hunter2" not in first + storing + out + err


def test_serve_on_unreachable_postgresql_is_one_clear_line(postgres: PostgresServer) -> None:
    url = f"{postgres.base_url}_missing".replace("://", "://nobody:hunter2@", 1)
    done = subprocess.run(
        [sys.executable, "-m", "anychat", "serve", "--port", "0", "--database-url", url],
        capture_output=True,
        timeout=60,
    )
    assert done.returncode == 1
    assert b"cannot open database" in done.stderr
    assert b"Traceback" not in done.stderr
    assert b"hunter2" not in done.stdout + done.stderr
