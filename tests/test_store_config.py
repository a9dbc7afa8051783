"""Settings precedence (flag > environment > .env > default), secrets, and the codecs' new verbs."""

from __future__ import annotations

import os
from pathlib import Path
from typing import Any

import anyio
import pytest
from typer.testing import CliRunner

from anychat import cli
from anychat import model as m
from anychat.codecs.jsonl import JsonClientCodec, JsonServerCodec
from anychat.codecs.text import TextCodec
from anychat.config import ServerConfig, load_env_file
from anychat.errors import ConfigError
from anychat.store import open_store

KEYS = (
    "ANYCHAT_PORT",
    "PORT",
    "ANYCHAT_HISTORY_LENGTH",
    "ANYCHAT_DATABASE_URL",
    "ANYCHAT_SECRET",
    "JWT_SECRET",
    "ANYCHAT_ENV",
    "ANYCHAT_HOST",
)


@pytest.fixture
def clean_env(monkeypatch: pytest.MonkeyPatch, tmp_path: Path) -> Any:
    saved = {k: os.environ.get(k) for k in KEYS}
    for key in KEYS:
        monkeypatch.delenv(key, raising=False)
    monkeypatch.chdir(tmp_path)
    yield
    for key, value in saved.items():
        if value is None:
            os.environ.pop(key, None)
        else:
            os.environ[key] = value


def _serve_config(monkeypatch: pytest.MonkeyPatch, args: list[str]) -> ServerConfig:
    seen: list[ServerConfig] = []
    monkeypatch.setattr("anychat.runner.run_server", lambda config, **kw: seen.append(config))
    result = CliRunner().invoke(cli.app, ["serve", *args])
    assert result.exit_code == 0, result.output
    return seen[0]


def test_flag_beats_env_beats_dotenv_beats_default(
    clean_env: None, monkeypatch: pytest.MonkeyPatch, tmp_path: Path
) -> None:
    (tmp_path / ".env").write_text(
        "ANYCHAT_PORT=4000\nANYCHAT_HISTORY_LENGTH=7\nANYCHAT_DATABASE_URL=sqlite:///from-env.db\n"
        "JWT_SECRET=" + "j" * 40 + "\n"
    )
    os.environ["ANYCHAT_PORT"] = "5000"
    assert load_env_file()
    config = _serve_config(monkeypatch, ["--history-length", "9"])
    assert config.port == 5000  # environment beats .env
    assert config.history_length == 9  # flag beats .env
    assert config.database_url == "sqlite:///from-env.db"  # .env beats default
    assert config.secret == "j" * 40  # JWT_SECRET is accepted
    assert config.host == "127.0.0.1"  # default


def test_plain_port_and_default_database(clean_env: None, monkeypatch: pytest.MonkeyPatch) -> None:
    os.environ["PORT"] = "6001"
    config = _serve_config(monkeypatch, [])
    assert config.port == 6001
    data_dir = Path(os.environ["XDG_DATA_HOME"]) / "anychat"
    assert config.database_url == f"sqlite:///{data_dir / 'anychat.db'}"
    assert config.environment == "development"


def test_production_needs_a_real_secret(clean_env: None, monkeypatch: pytest.MonkeyPatch) -> None:
    os.environ["ANYCHAT_ENV"] = "production"
    result = CliRunner().invoke(cli.app, ["serve"])
    assert result.exit_code == 2
    assert "ANYCHAT_SECRET" in result.output
    assert "not set" in result.output
    for secret, why in (("changeme", "well-known"), ("short", "too short")):
        with pytest.raises(ConfigError, match=why):
            ServerConfig(environment="production", secret=secret)
    ServerConfig(environment="production", secret="x" * 32)
    with pytest.raises(ConfigError, match="ANYCHAT_ENV"):
        ServerConfig(environment="staging")
    with pytest.raises(ConfigError, match="ANYCHAT_DATABASE_URL"):
        ServerConfig(database_url="mysql://x")
    assert "x" * 32 not in repr(ServerConfig(secret="x" * 32))


def test_users_and_export_cli(clean_env: None, tmp_path: Path) -> None:
    url = f"sqlite:///{tmp_path / 'c.db'}"
    anyio.run(_create_database, url)
    runner = CliRunner()
    added = runner.invoke(
        cli.app, ["users", "add", "alice", "--database-url", url], input="a good password\n"
    )
    assert added.exit_code == 0, added.output
    assert "good password" not in added.output
    again = runner.invoke(
        cli.app, ["users", "add", "alice", "--database-url", url], input="a good password\n"
    )
    assert again.exit_code == 1
    assert "already registered" in again.output
    weak = runner.invoke(cli.app, ["users", "add", "bob", "--database-url", url], input="x\n")
    assert weak.exit_code == 2
    assert "too short" in weak.output
    listed = runner.invoke(cli.app, ["users", "list", "--database-url", url])
    assert listed.stdout.startswith("alice\t")
    assert listed.stderr == f"anychat: using database {tmp_path / 'c.db'}\n"
    changed = runner.invoke(
        cli.app, ["users", "passwd", "alice", "--database-url", url], input="another password\n"
    )
    assert changed.exit_code == 0
    exported = runner.invoke(
        cli.app, ["history", "export", "--room", "#general", "--database-url", url]
    )
    assert exported.exit_code == 0
    assert exported.stdout == ""
    deleted = runner.invoke(cli.app, ["users", "delete", "ALICE", "--database-url", url])
    assert deleted.exit_code == 0
    gone = runner.invoke(cli.app, ["users", "delete", "alice", "--database-url", url])
    assert gone.exit_code == 1


async def _create_database(url: str) -> None:
    async with open_store(url):
        pass


def test_text_codec_account_and_history_verbs() -> None:
    codec = TextCodec()
    cmds = codec.feed(
        b"/register hunter22 x\r\n/login alice pw word\n/history\n"
        b"/history #general 42\n/history bob\n/history a b c\n/login alice\n"
    )
    assert cmds[0] == m.Register(password="hunter22 x")
    assert cmds[1] == m.Login(nick="alice", password="pw word")
    assert cmds[2] == m.History(target=None, limit=20)
    assert cmds[3] == m.History(target="#general", before=42, limit=20)
    assert cmds[4] == m.History(target="bob", limit=20)
    assert isinstance(cmds[5], m.Invalid)
    assert isinstance(cmds[6], m.Invalid)
    assert "hunter22" not in repr(cmds[0])
    assert "pw word" not in repr(cmds[1])
    logged = codec.encode(m.LoggedIn(nick="alice", token="tok.en.sig"))
    assert b"alice" in logged
    assert b"tok.en" not in logged
    page = m.HistoryPage(
        target="#general",
        messages=(
            m.Message(id=3, time=0, sender="ann", target="#general", text="hi", history=True),
        ),
    )
    assert b"(history) #general <ann> hi" in codec.encode(page)
    assert b"no earlier" in codec.encode(m.HistoryPage(target="#general"))


def test_jsonl_round_trips_new_commands_and_events() -> None:
    client, server = JsonClientCodec(), JsonServerCodec()
    commands: list[m.Command] = [
        m.Hello(nick="alice", password="pw", ref=1),
        m.Hello(token="t.o.k", autojoin=False),
        m.Register(password="secret pw", ref="r"),
        m.Login(nick="alice", password="pw"),
        m.Login(token="t.o.k"),
        m.History(target="#general", before=10, after=2, limit=5, ref=3),
        m.History(),
    ]
    for cmd in commands:
        assert server.feed(client.encode(cmd)) == [cmd]
    msg = m.Message(id=1, time=2.5, sender="a", target="#r", text="x", history=True)
    events: list[m.Event] = [
        m.LoggedIn(nick="alice", token="t.o.k", expires=99.0, ref=1),
        m.HistoryPage(target="#r", messages=(msg,), ref=2),
        m.HistoryPage(target="bob"),
    ]
    for event in events:
        assert client.feed(server.encode(event)) == [event]
    bad = server.feed(
        b'{"type":"history","limit":"x"}\n{"type":"register"}\n{"type":"login","password":5}\n'
    )
    assert len(bad) == 3
    assert all(isinstance(x, m.Invalid) for x in bad)
    assert {x.code for x in bad if isinstance(x, m.Invalid)} == {m.ErrorCode.BAD_COMMAND}


def test_token_file_is_private_and_round_trips(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    from anychat.terminal.tokenfile import forget_token, load_token, save_token, token_path

    monkeypatch.setenv("XDG_CONFIG_HOME", str(tmp_path / "cfg"))
    assert load_token("h", 1, "alice") is None
    save_token("h", 1, "Alice", "t1")
    save_token("h", 2, "alice", "t2")
    path = token_path()
    assert path.stat().st_mode & 0o777 == 0o600
    assert path.parent.stat().st_mode & 0o777 == 0o700
    assert load_token("h", 1, "ALICE") == "t1"
    forget_token("h", 1, "alice")
    assert load_token("h", 1, "alice") is None
    assert load_token("h", 2, "alice") == "t2"
    path.write_text("garbage")
    assert load_token("h", 2, "alice") is None
