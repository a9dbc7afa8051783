"""One data directory: where the database and the development secret live, for every command;
admin changes that reach a running server; logins that survive a restart."""

from __future__ import annotations

import os
import re
import stat
import subprocess
import sys
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path

import anyio
import pytest

import anychat
from anychat import model as m
from anychat.datadir import load_or_create_secret, resolve_data_dir
from anychat.errors import ConfigError, NickRegistered

ANYCHAT = [sys.executable, "-m", "anychat"]
LISTENING = re.compile(r"listening on 127\.0\.0\.1:(\d+)")
SECRET = "s" * 40


def _anychat(
    *args: str, stdin: str = "", cwd: Path | None = None
) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [*ANYCHAT, *args],
        input=stdin,
        capture_output=True,
        text=True,
        timeout=60,
        check=False,
        cwd=cwd,
    )


def test_the_data_directory_is_flag_then_variable_then_xdg(
    monkeypatch: pytest.MonkeyPatch, tmp_path: Path
) -> None:
    monkeypatch.setenv("XDG_DATA_HOME", str(tmp_path / "xdg"))
    assert resolve_data_dir() == tmp_path / "xdg" / "anychat"
    monkeypatch.setenv("ANYCHAT_DATA_DIR", str(tmp_path / "env"))
    assert resolve_data_dir() == tmp_path / "env"
    assert resolve_data_dir(tmp_path / "flag") == tmp_path / "flag"
    monkeypatch.delenv("XDG_DATA_HOME")
    monkeypatch.delenv("ANYCHAT_DATA_DIR")
    assert resolve_data_dir() == Path.home() / ".local" / "share" / "anychat"


def test_admin_commands_never_create_a_database(tmp_path: Path) -> None:
    data_home = Path(os.environ["XDG_DATA_HOME"])
    expected = data_home / "anychat" / "anychat.db"
    for args, stdin in (
        (["users", "list"], ""),
        (["users", "add", "quinn"], "a good password\n"),
        (["users", "delete", "quinn"], ""),
        (["history", "export", "--room", "#general"], ""),
    ):
        result = _anychat(*args, stdin=stdin, cwd=tmp_path)
        assert result.returncode == 1, result
        assert result.stdout == ""
        assert result.stderr.splitlines() == [
            f"anychat: using database {expected}",
            f"anychat: no database at {expected} (start `anychat serve` once to create it, "
            "or pass --data-dir or --database-url)",
        ]
    named = tmp_path / "nonexist.db"
    result = _anychat(
        "history", "export", "--room", "#general", "--database-url", f"sqlite:///{named}"
    )
    assert result.returncode == 1 and "no database at" in result.stderr
    assert list(tmp_path.iterdir()) == [] and not data_home.exists()


@contextmanager
def _serving(*args: str) -> Iterator[tuple[subprocess.Popen[str], int, str]]:
    """``anychat serve --port 0``; yields the process, its port and what it printed so far."""
    proc = subprocess.Popen(
        [*ANYCHAT, "serve", "--port", "0", *args],
        stdout=subprocess.PIPE,
        stderr=subprocess.DEVNULL,
        text=True,
    )
    try:
        assert proc.stdout is not None
        printed = ""
        while (found := LISTENING.search(printed)) is None:
            line = proc.stdout.readline()
            assert line, printed
            printed += line
        while "storing accounts" not in printed:
            printed += proc.stdout.readline()
        yield proc, int(found.group(1)), printed
    finally:
        proc.terminate()
        proc.wait(timeout=10)
        if proc.stdout:
            proc.stdout.close()


async def test_serve_keeps_database_and_secret_in_the_data_directory_across_restarts(
    tmp_path: Path,
) -> None:
    data = tmp_path / "data"
    with _serving("--data-dir", str(data)) as (_proc, port, printed):
        assert f"anychat: data directory {data}\n" in printed
        assert f"anychat: login tokens signed with {data / 'secret'} (made now)" in printed
        assert f"anychat: storing accounts and history in {data / 'anychat.db'}" in printed
        secret = (data / "secret").read_text()
        assert stat.S_IMODE((data / "secret").stat().st_mode) == 0o600
        assert stat.S_IMODE(data.stat().st_mode) == 0o700
        with anyio.fail_after(20):
            async with anychat.connect("127.0.0.1", port, nick="ada") as ada:
                token = await ada.register("ada's long password")
    with _serving("--data-dir", str(data)) as (_proc, port, printed):
        assert "(kept across restarts)" in printed
        assert (data / "secret").read_text() == secret
        with anyio.fail_after(20):
            # The token from before the restart still logs in: nobody was logged out.
            async with anychat.connect("127.0.0.1", port, nick="ada", token=token) as ada:
                assert ada.nick == "ada"


def test_production_never_uses_a_generated_secret(tmp_path: Path) -> None:
    data = tmp_path / "data"
    result = subprocess.run(
        [*ANYCHAT, "serve", "--port", "0", "--data-dir", str(data), "--env", "production"],
        capture_output=True,
        text=True,
        timeout=60,
        check=False,
    )
    assert result.returncode == 2 and "ANYCHAT_SECRET" in result.stderr
    assert not (data / "secret").exists()


def test_a_secret_file_others_can_read_is_refused(tmp_path: Path) -> None:
    secret, made = load_or_create_secret(tmp_path)
    assert made and len(secret) >= 32
    assert load_or_create_secret(tmp_path) == (secret, False)
    (tmp_path / "secret").chmod(0o644)
    with pytest.raises(ConfigError, match="chmod 600"):
        load_or_create_secret(tmp_path)


async def test_admin_changes_reach_a_running_server(tmp_path: Path) -> None:
    url = f"sqlite:///{tmp_path / 'chat.db'}"
    async with anychat.serve(port=0, database_url=url, secret=SECRET) as server:
        host, port = server.address
        async with anychat.connect(host, port, nick="quinn") as quinn:
            quinn_token = await quinn.register("quinn's long password")
        added = await anyio.run_process(
            [*ANYCHAT, "users", "add", "zoe", "--database-url", url],
            input=b"zoe's long password\n",
            check=False,
        )
        assert added.returncode == 0, added.stderr
        with anyio.fail_after(20):
            # Within the server's poll interval the nick is protected: no guest can take it.
            while True:
                try:
                    async with anychat.connect(host, port, nick="zoe"):
                        pass
                except NickRegistered:
                    break
                await anyio.sleep(0.1)  # pacing retries; the loop ends on the refusal itself

        async with anychat.connect(host, port, nick="quinn", token=quinn_token) as quinn:
            deleted = await anyio.run_process(
                [*ANYCHAT, "users", "delete", "quinn", "--database-url", url], check=False
            )
            assert deleted.returncode == 0, deleted.stderr
            with anyio.fail_after(20):
                notice = await quinn.wait_for(m.Error)
            assert notice.code is m.ErrorCode.ACCOUNT_DELETED
            assert notice.text == "account quinn was deleted: you are logged out"
            # Logged out, still connected, and the nick is free for anyone now.
            assert await quinn.send("#general", "still here")
        async with anychat.connect(host, port, nick="quinn") as guest:
            assert guest.nick == "quinn"
