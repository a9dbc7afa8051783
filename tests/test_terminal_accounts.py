"""The terminal client with accounts: logging in, saved tokens, history, catching up.

Same harness as ``test_terminal.py``: the client runs in a pseudo-terminal, its screen is
emulated by pyte, and every wait is for something on the screen (or at another client) under a
deadline. Tokens go to a config directory under ``tmp_path`` (``XDG_CONFIG_HOME``).
"""

from __future__ import annotations

import json
import stat
from pathlib import Path

import anyio

import anychat

from .test_terminal import DEADLINE, Terminal, _chat_command, _env, _prompt_ready, chat_in_terminal

SECRET = "terminal-tests-secret-" + "x" * 24
PASSWORD = "correct horse battery"


async def _register(server: anychat.Server, nick: str, password: str = PASSWORD) -> None:
    async with anychat.connect(*server.address, nick=nick) as client:
        await client.register(password)


def _token_file(config: Path) -> Path:
    return config / "anychat" / "tokens.json"


def _dimmed(term: Terminal, text: str) -> bool:
    """Whether the (first) line showing ``text`` shows it in grey, as history is."""
    row = next(y for y, line in enumerate(term.lines) if text in line)
    at = term.lines[row].index(text)
    return bool(term.screen.buffer[row][at].fg == "brightblack")


async def test_login_prompts_without_echo_then_reuses_the_saved_token(tmp_path: Path) -> None:
    env = _env(XDG_CONFIG_HOME=str(tmp_path))
    async with anychat.serve(port=0, secret=SECRET) as server:
        await _register(server, "ada")
        async with chat_in_terminal(server.port, "--nick", "ada", "--login", env=env) as term:
            await term.wait_for_text("password for ada:")
            term.type(PASSWORD)
            await term.wait_until(lambda: "*" * len(PASSWORD) in term.text(), "masked password")
            term.type("\r")
            await term.wait_until(_prompt_ready(term, "ada"), "prompt")
            assert PASSWORD.encode() not in term.raw
            assert "password for" not in term.text()  # the prompt was erased too
            assert "as ada (logged in with the password) in #general" in term.text()
            term.type("/quit\r")
            assert await term.wait_exit() == 0

        path = _token_file(tmp_path)
        assert stat.S_IMODE(path.stat().st_mode) == 0o600
        assert stat.S_IMODE(path.parent.stat().st_mode) == 0o700
        saved = json.loads(path.read_text())
        assert list(saved) == [f"127.0.0.1:{server.port}/ada"]

        # Next run: the token logs in, nothing is asked.
        async with (
            anychat.connect(*server.address, nick="bob") as bob,
            chat_in_terminal(server.port, "--nick", "ada", "--login", env=env) as term,
        ):
            await term.wait_until(_prompt_ready(term, "ada"), "prompt")
            assert "password" not in term.text()
            assert "as ada (logged in with the saved login token)" in term.text()
            with anyio.fail_after(DEADLINE):
                await bob.wait_for(anychat.Joined, lambda e: e.nick == "ada")
            term.type("/quit\r")
            assert await term.wait_exit() == 0

        # A token the server refuses (tampered) is dropped, and the password asked for again.
        path.write_text(json.dumps({key: token + "x" for key, token in saved.items()}))
        async with chat_in_terminal(server.port, "--nick", "ada", "--login", env=env) as term:
            await term.wait_for_text("password for ada:")
            term.type(PASSWORD + "\r")
            await term.wait_until(_prompt_ready(term, "ada"), "prompt")
            term.type("/quit\r")
            assert await term.wait_exit() == 0
        assert json.loads(path.read_text()) != {key: t + "x" for key, t in saved.items()}


async def test_wrong_password_at_the_prompt_is_one_line_and_exit_1(tmp_path: Path) -> None:
    env = _env(XDG_CONFIG_HOME=str(tmp_path))
    async with anychat.serve(port=0, secret=SECRET) as server:
        await _register(server, "ada")
        async with chat_in_terminal(server.port, "--nick", "ada", "--login", env=env) as term:
            await term.wait_for_text("password for ada:")
            term.type("not the password\r")
            assert await term.wait_exit() == 1
            assert "anychat: " in term.text()
            assert "not the password" not in term.text()
    assert not _token_file(tmp_path).exists()


async def test_pipe_login_reads_the_password_from_the_environment(tmp_path: Path) -> None:
    async with anychat.serve(port=0, secret=SECRET) as server:
        await _register(server, "bot")
        command = _chat_command(server.port, "--nick", "bot", "--login")
        missing = await anyio.run_process(
            command, input=b"hi\n", env=_env(XDG_CONFIG_HOME=str(tmp_path)), check=False
        )
        assert missing.returncode == 1
        assert missing.stderr.decode().splitlines() == [
            "anychat: set ANYCHAT_PASSWORD to log in as bot without a terminal"
        ]
        async with anychat.connect(*server.address, nick="listener") as listener:
            env = _env(XDG_CONFIG_HOME=str(tmp_path), ANYCHAT_PASSWORD=PASSWORD)
            result = await anyio.run_process(command, input=b"hi\n", env=env, check=False)
            assert result.returncode == 0, result.stderr
            with anyio.fail_after(DEADLINE):
                msg = await listener.wait_for(anychat.Message)
            assert (msg.sender, msg.text) == ("bot", "hi")
    assert stat.S_IMODE(_token_file(tmp_path).stat().st_mode) == 0o600


async def test_registered_nick_without_login_says_how_to_log_in(tmp_path: Path) -> None:
    async with anychat.serve(port=0, secret=SECRET) as server:
        await _register(server, "ada")
        result = await anyio.run_process(
            _chat_command(server.port, "--nick", "ada"),
            input=b"hi\n",
            env=_env(XDG_CONFIG_HOME=str(tmp_path)),
            check=False,
        )
    assert result.returncode == 1
    assert result.stderr.decode().splitlines() == [
        "anychat: nick ada is registered: add --login to log in"
    ]


async def test_register_and_login_keep_the_password_off_screen_and_out_of_history(
    tmp_path: Path,
) -> None:
    env = _env(XDG_CONFIG_HOME=str(tmp_path))
    secret = "hunter2hunter2"
    async with (
        anychat.serve(port=0, secret=SECRET) as server,
        chat_in_terminal(server.port, "--nick", "ada", env=env) as term,
    ):
        await term.wait_until(_prompt_ready(term, "ada"), "prompt")
        term.type("/who\r")
        await term.wait_for_text("in #general: nobody else")
        term.type(f"/register {secret}")
        await term.wait_until(lambda: "*" * len(secret) in term.cursor_line, "masked line")
        term.type("\r")
        await term.wait_for_text("logged in as ada")
        assert _token_file(tmp_path).exists()
        term.type("\x1b[A")  # Up recalls /who: the /register line was not kept
        await term.wait_until(lambda: term.cursor_line.endswith("ada> /who"), "recalled /who")
        term.type("\x15/login ada wrong-password\r")
        await term.wait_for_text("!! ")
        term.type("/quit\r")
        assert await term.wait_exit() == 0
        # Also not echoed by the terminal itself while a line was printed above the prompt.
        assert secret.encode() not in term.raw
        assert b"wrong-password" not in term.raw
        async with chat_in_terminal(server.port, env=env) as guest:  # a guest nick at first
            await guest.wait_until(lambda: guest.cursor_line.endswith(">"), "prompt")
            guest.type(f"/login ada {secret}\r")
            await guest.wait_for_text("logged in as ada")
            await guest.wait_until(_prompt_ready(guest, "ada"), "prompt as ada")
            guest.type("/quit\r")
            assert await guest.wait_exit() == 0
            assert secret.encode() not in guest.raw


async def test_history_is_dimmed_and_marked(tmp_path: Path) -> None:
    async with (
        anychat.serve(port=0, secret=SECRET, history_length=2) as server,
        anychat.connect(*server.address, nick="bob") as bob,
    ):
        ids = [(await bob.send("#general", f"old {i}")).id for i in range(1, 5)]
        async with chat_in_terminal(server.port, "--nick", "ada") as term:
            # Joining replays the last two, dimmed and marked, with their own time.
            await term.wait_for_text("old 4")
            await term.wait_until(_prompt_ready(term, "ada"), "prompt")
            assert "[earlier] <bob> old 3" in term.text()
            assert "old 2" not in term.text()
            # Said once, before the replay, not between its lines.
            screen = term.text()
            assert screen.count("-- connected to") == 1
            assert screen.index("-- connected to") < screen.index("[earlier] <bob> old 3")
            assert _dimmed(term, "old 3")
            await bob.send("#general", "live one")
            await term.wait_for_text("<bob> live one")
            assert not _dimmed(term, "live one")
            assert "[earlier] <bob> live" not in term.text()

            term.type(f"/history #general {ids[2]}\r")  # the page before "old 3"
            await term.wait_for_text("[earlier] <bob> old 2")
            assert "[earlier] <bob> old 1" in term.text()
            assert _dimmed(term, "old 1")
            term.type("/history #general 1\r")
            await term.wait_for_text("no earlier messages in #general")
            # That page (two messages) was the first: no later page is offered that is empty.
            assert "shows the messages before" not in term.text()
            term.type("/history #general x y\r")
            await term.wait_for_text("usage: /history")
            term.type("/quit\r")
            assert await term.wait_exit() == 0


async def test_reconnect_shows_what_was_missed_exactly_once(tmp_path: Path) -> None:
    """The server restarts (on the same port, same SQLite file); meanwhile messages are sent
    through another server on that file. Back, the client logs in again with its token and shows
    each missed message once, the ones it saw before not again."""
    url = f"sqlite:///{tmp_path / 'chat.db'}"
    env = _env(XDG_CONFIG_HOME=str(tmp_path / "config"))
    term = Terminal()
    try:
        async with anychat.serve(port=0, database_url=url, secret=SECRET) as first:
            port = first.port
            await _register(first, "ada")
            await term.start(port, "--nick", "ada", "--login", "--room", "#lobby", env=env)
            await term.wait_for_text("password for ada:")
            term.type(PASSWORD + "\r")
            await term.wait_until(_prompt_ready(term, "ada"), "prompt")
            async with anychat.connect(*first.address, nick="bob") as bob:
                await bob.join("#lobby")
                await bob.send("#lobby", "seen before the drop")
                await term.wait_for_text("<bob> seen before the drop")
                term.type("my own line\r")
                await term.wait_for_text("<ada> my own line")
        await term.wait_for_text("disconnected")
        async with (
            anychat.serve(port=0, database_url=url, secret=SECRET) as meanwhile,
            anychat.connect(*meanwhile.address, nick="bob", autojoin=False) as bob,
        ):
            await bob.join("#lobby")
            for text in ("missed one", "missed two"):
                await bob.send("#lobby", text)
            await bob.join("#elsewhere")
            await bob.send("#elsewhere", "not for ada")
            await bob.send("ada", "missed privately")
        async with (
            anychat.serve(port=port, database_url=url, secret=SECRET) as second,
            anychat.connect(*second.address, nick="bob", autojoin=False) as bob,
        ):
            await term.wait_for_text("reconnected as ada; in #lobby")
            await bob.join("#lobby")
            await bob.send("#lobby", "live again")
            await term.wait_for_text("<bob> live again")
            screen = term.text()
            for text in (
                "seen before the drop",
                "my own line",
                "missed one",
                "missed two",
                "missed privately",
            ):
                assert screen.count(text) == 1, (text, screen)
            assert screen.index("missed one") < screen.index("missed two")
            assert screen.index("missed two") < screen.index("live again")
            assert "[private] <bob> missed privately" in screen
            assert "not for ada" not in screen
            assert "[earlier]" not in screen
            term.type("/quit\r")
            assert await term.wait_exit() == 0
    finally:
        await term.aclose()


async def test_refused_token_on_reconnect_falls_back_to_a_guest(tmp_path: Path) -> None:
    """A server that comes back with another secret refuses the token; the prompt is up, so the
    client carries on as a guest and says how to log in again."""
    url = f"sqlite:///{tmp_path / 'chat.db'}"
    env = _env(XDG_CONFIG_HOME=str(tmp_path / "config"))
    term = Terminal()
    try:
        async with anychat.serve(port=0, database_url=url, secret=SECRET) as first:
            port = first.port
            await _register(first, "ada")
            await term.start(port, "--nick", "ada", "--login", env=env)
            await term.wait_for_text("password for ada:")
            term.type(PASSWORD + "\r")
            await term.wait_until(_prompt_ready(term, "ada"), "prompt")
        await term.wait_for_text("disconnected")
        async with anychat.serve(port=port, database_url=url, secret="another-secret-" + "y" * 30):
            await term.wait_for_text("cannot log in as ada again; using a guest nick")
            await term.wait_for_text("reconnected as guest")
            term.type("/quit\r")
            assert await term.wait_exit() == 0
        assert not json.loads(_token_file(tmp_path / "config").read_text())
    finally:
        await term.aclose()


def test_secret_lines_are_recognised() -> None:
    from anychat.terminal.session import is_secret

    assert is_secret("/register hunter2")
    assert is_secret("/LOGIN ada hunter2")
    assert not is_secret("/registered")
    assert not is_secret("register hunter2")
    assert not is_secret("/who")


def test_history_lines_are_all_dim_and_dated_when_old() -> None:
    from anychat import model as m
    from anychat.terminal import session as cs

    old = m.Message(id=1, time=0.0, sender="bob", target="#general", text="hi", history=True)
    line = cs.message_line(old, me="ada", room="#general")
    assert [style for style, *_ in line[1:]] == ["class:history"] * (len(line) - 1)
    text = "".join(fragment[1] for fragment in line)
    assert text.endswith(" [earlier] <bob> hi")
    assert text.startswith(("1970-01-01 ", "1969-12-31 "))  # not today: the date too
    live = cs.message_line(
        m.Message(id=2, time=0.0, sender="bob", target="#general", text="hi"),
        me="ada",
        room="#general",
    )
    assert "class:history" not in {style for style, *_ in live}
