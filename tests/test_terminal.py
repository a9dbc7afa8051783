"""The terminal client (``anychat chat``), run for real: in a pseudo-terminal or with a pipe.

The client is a subprocess (its own asyncio loop); the server runs in the test, on the test's
backend. What the client draws is fed to a VT100 emulator (pyte), so assertions are about the
screen a person would see, not about escape-sequence details. Every wait reads the terminal or
the other client under a deadline: nothing sleeps.
"""

from __future__ import annotations

import fcntl
import os
import socket
import struct
import subprocess
import sys
import termios
from collections.abc import AsyncIterator, Callable
from contextlib import asynccontextmanager

import anyio
import pyte
from anyio.abc import Process

import anychat
from anychat import model as m
from anychat.terminal import session as cs

COLUMNS, ROWS = 100, 30
DEADLINE = 10


def _env(**extra: str) -> dict[str, str]:
    env = dict(os.environ)
    env.pop("ANYCHAT_PASSWORD", None)
    # No cursor-position requests: the emulator does not answer them.
    env.update(TERM="xterm-256color", PROMPT_TOOLKIT_NO_CPR="1", LC_ALL="C.UTF-8")
    env.pop("NO_COLOR", None)
    env.update(extra)
    return env


def _chat_command(port: int, *args: str, plain: bool = True) -> list[str]:
    """``anychat chat``; in line mode unless ``plain`` is false (then full-screen on a pty)."""
    mode = ["--plain"] if plain else []
    return [sys.executable, "-m", "anychat", "chat", "--port", str(port), *mode, *args]


class Terminal:
    """A pseudo-terminal running ``anychat chat``, with an emulated screen of what it drew."""

    def __init__(self) -> None:
        self.master, self.slave = os.openpty()
        fcntl.ioctl(self.slave, termios.TIOCSWINSZ, struct.pack("HHHH", ROWS, COLUMNS, 0, 0))
        os.set_blocking(self.master, False)
        self.screen = pyte.Screen(COLUMNS, ROWS)
        self.stream = pyte.ByteStream(self.screen)
        self.raw = bytearray()
        self.process: Process | None = None
        self.closed = False

    async def start(
        self, port: int, *args: str, env: dict[str, str] | None = None, plain: bool = True
    ) -> None:
        self.process = await anyio.open_process(
            _chat_command(port, *args, plain=plain),
            stdin=self.slave,
            stdout=self.slave,
            stderr=self.slave,
            env=env or _env(),
        )
        os.close(self.slave)  # the child has it; EOF on the master once the child is gone
        self.slave = -1

    def type(self, text: str) -> None:
        os.write(self.master, text.encode())

    @property
    def lines(self) -> list[str]:
        return [line.rstrip() for line in self.screen.display]

    @property
    def cursor_line(self) -> str:
        return self.lines[self.screen.cursor.y]

    def text(self) -> str:
        return "\n".join(self.lines)

    async def _read_some(self) -> None:
        await anyio.wait_readable(self.master)
        try:
            data = os.read(self.master, 65536)
        except BlockingIOError:
            return
        except OSError:  # EIO: the child closed the terminal
            data = b""
        if not data:
            self.closed = True
            return
        self.raw += data
        self.stream.feed(data)

    async def wait_until(self, condition: Callable[[], bool], what: str) -> None:
        try:
            with anyio.fail_after(DEADLINE):
                while not condition():
                    if self.closed:
                        raise AssertionError(f"terminal closed while waiting for {what}")
                    await self._read_some()
        except TimeoutError:
            raise AssertionError(f"no {what} on screen:\n{self.text()}") from None

    async def wait_for_text(self, text: str) -> None:
        await self.wait_until(lambda: text in self.text(), repr(text))

    async def wait_exit(self) -> int:
        assert self.process is not None
        with anyio.fail_after(DEADLINE):
            while not self.closed:  # drain, so the child never blocks on a full terminal
                await self._read_some()
            return await self.process.wait()

    async def aclose(self) -> None:
        if self.process is not None:
            if self.process.returncode is None:
                self.process.kill()
            with anyio.CancelScope(shield=True):
                await self.process.wait()
                await self.process.aclose()
        if self.slave >= 0:
            os.close(self.slave)
        os.close(self.master)


@asynccontextmanager
async def chat_in_terminal(
    port: int, *args: str, env: dict[str, str] | None = None, plain: bool = True
) -> AsyncIterator[Terminal]:
    term = Terminal()
    try:
        await term.start(port, *args, env=env, plain=plain)
        yield term
    finally:
        await term.aclose()


def _prompt_ready(term: Terminal, nick: str) -> Callable[[], bool]:
    return lambda: term.cursor_line.endswith(f"{nick}>")


async def test_typed_line_survives_incoming_message(server: anychat.Server) -> None:
    async with (
        anychat.connect(*server.address, nick="bob") as bob,
        chat_in_terminal(server.port, "--nick", "ada") as term,
    ):
        await term.wait_until(_prompt_ready(term, "ada"), "prompt")
        with anyio.fail_after(DEADLINE):
            await bob.wait_for(anychat.Joined, lambda e: e.nick == "ada")

        term.type("hello wor")
        await term.wait_until(lambda: term.cursor_line.endswith("ada> hello wor"), "typed text")
        await bob.send("#general", "news from bob")
        await term.wait_for_text("news from bob")

        def redrawn_below() -> bool:
            said = [i for i, line in enumerate(term.lines) if "news from bob" in line]
            return (
                len(said) == 1
                and term.screen.cursor.y > said[0]
                and term.cursor_line.endswith("#general ada> hello wor")
            )

        # prompt_toolkit erases the prompt, prints, then redraws the prompt with the half-typed
        # text intact below the message (possibly in a later write: wait for it).
        await term.wait_until(redrawn_below, "prompt redrawn below the message")
        row = next(y for y, line in enumerate(term.lines) if "news from bob" in line)
        said = term.lines[row]
        assert said.endswith("<bob> news from bob")
        assert "hello wor" not in said
        assert sum("hello wor" in line for line in term.lines) == 1
        # The time is dimmed and the nick has its own colour, the same in every session.
        cells = term.screen.buffer[row]
        assert cells[0].fg == "brightblack"
        nick_at = said.index("<bob>") + 1
        assert cells[nick_at].fg == cs.nick_style("bob").removeprefix("ansi")
        assert cells[nick_at + 5].fg == "default"  # the text itself is not coloured

        term.type("ld\r")
        with anyio.fail_after(DEADLINE):
            msg = await bob.wait_for(anychat.Message)
        assert (msg.sender, msg.target, msg.text) == ("ada", "#general", "hello world")
        await term.wait_for_text("<ada> hello world")  # our own line, shown once acked

        term.type("/quit\r")
        assert await term.wait_exit() == 0


async def test_escape_sequences_from_others_are_neutralised(server: anychat.Server) -> None:
    attack = "\x1b]0;pwned\x07\x1b[2J\x1b[31mred alert\x9b1A\x1b[8mhidden\u202eevil"
    async with (
        anychat.connect(*server.address, nick="mallory") as mallory,
        chat_in_terminal(server.port, "--nick", "ada") as term,
    ):
        await term.wait_until(_prompt_ready(term, "ada"), "prompt")
        with anyio.fail_after(DEADLINE):
            await mallory.wait_for(anychat.Joined, lambda e: e.nick == "ada")
        await mallory.send("#general", "before")
        await term.wait_for_text("<mallory> before")
        start = len(term.raw)
        await mallory.send("#general", attack)
        await term.wait_for_text("evil")

        received = bytes(term.raw[start:])
        for sequence in (b"\x1b]0;", b"\x07", b"\x1b[2J", b"\x1b[31mred", b"\xc2\x9b", b"\x1b[8m"):
            assert sequence not in received
        assert "\u202e".encode() not in received
        assert "pwned" not in term.screen.title
        # Nothing was cleared or hidden: the earlier line is still there, the text is visible.
        screen = term.text()
        assert "<mallory> before" in screen
        line = next(line for line in term.lines if "red alert" in line)
        assert (
            "\ufffd]0;pwned\ufffd\ufffd[2J\ufffd[31mred alert\ufffd1A\ufffd[8mhidden\ufffdevil"
            in line
        )

        term.type("\x04")  # Ctrl-D on an empty line leaves
        assert await term.wait_exit() == 0


async def test_completion_of_commands_and_nicks(server: anychat.Server) -> None:
    async with (
        anychat.connect(*server.address, nick="bob") as bob,
        chat_in_terminal(server.port, "--nick", "ada", "--room", "general") as term,
    ):
        await term.wait_until(_prompt_ready(term, "ada"), "prompt")
        # A paste of several lines sends each; a line longer than the server takes is split.
        term.type(f"\x1b[200~line one\nline two {'z' * 500}\x1b[201~\r")
        with anyio.fail_after(DEADLINE):
            texts = [(await bob.wait_for(anychat.Message)).text for _ in range(3)]
        assert texts == ["line one", "line two " + "z" * 391, "z" * 109]
        term.type("/wh\t")
        await term.wait_until(lambda: term.cursor_line.endswith("ada> /who"), "completed /who")
        term.type("\r")
        await term.wait_for_text("in #general: bob")
        term.type("\x1b[A")  # Up: the history
        await term.wait_until(lambda: term.cursor_line.endswith("ada> /who"), "recalled /who")
        term.type("\x15b\t")  # Ctrl-U clears the line
        await term.wait_until(lambda: term.cursor_line.endswith("ada> bob:"), "completed nick")
        term.type("\x03")  # Ctrl-C leaves too
        assert await term.wait_exit() == 0


async def test_sigterm_leaves_and_restores_the_terminal(server: anychat.Server) -> None:
    async with (
        anychat.connect(*server.address, nick="bob") as bob,
        chat_in_terminal(server.port, "--nick", "ada") as term,
    ):
        await term.wait_until(_prompt_ready(term, "ada"), "prompt")
        assert not termios.tcgetattr(term.master)[3] & termios.ICANON  # raw while prompting
        assert term.process is not None
        term.process.terminate()
        assert await term.wait_exit() == 0
        assert termios.tcgetattr(term.master)[3] & termios.ICANON
        with anyio.fail_after(DEADLINE):
            await bob.wait_for(anychat.Quitted, lambda e: e.nick == "ada")


async def test_reconnects_and_rejoins_after_the_server_went_away() -> None:
    term = Terminal()
    try:
        async with anychat.serve(port=0) as first:
            port = first.port
            await term.start(port, "--nick", "ada", "--room", "#lobby")
            await term.wait_until(_prompt_ready(term, "ada"), "prompt")
            term.type("/join #Dev\r")
            await term.wait_for_text("you are in #Dev")
        await term.wait_for_text("disconnected")
        await term.wait_until(lambda: "(offline) #Dev ada>" in term.cursor_line, "offline")
        async with anychat.serve(port=port) as second:
            await term.wait_for_text("reconnected as ada; in #lobby, #Dev")
            async with anychat.connect(*second.address, nick="bob") as bob:
                assert "ada" in await bob.who("#lobby")
                assert "ada" in await bob.join("#dev")
                term.type("still here\r")  # to the current room, which is still #Dev
                with anyio.fail_after(DEADLINE):
                    msg = await bob.wait_for(anychat.Message)
                assert (msg.sender, msg.target, msg.text) == ("ada", "#Dev", "still here")
                term.type("/quit\r")
                assert await term.wait_exit() == 0
    finally:
        await term.aclose()


async def test_pipe_sends_every_line_and_exits_zero(server: anychat.Server) -> None:
    async with anychat.connect(*server.address, nick="listener") as listener:
        lines = "hello\n\n/me waves\n//slash\n/msg listener psst\nlast line\n"
        result = await anyio.run_process(
            _chat_command(server.port, "--nick", "bot"),
            input=lines.encode(),
            env=_env(),
            check=False,
        )
        assert result.returncode == 0, result.stderr
        got: list[anychat.Message] = []
        with anyio.fail_after(DEADLINE):
            while len(got) < 5:
                got.append(await listener.wait_for(anychat.Message))
    assert [(e.target, e.text, e.kind) for e in got] == [
        ("#general", "hello", m.Kind.PLAIN),
        ("#general", "waves", m.Kind.ACTION),
        ("#general", "/slash", m.Kind.PLAIN),
        ("listener", "psst", m.Kind.PLAIN),
        ("#general", "last line", m.Kind.PLAIN),
    ]
    assert result.stdout == b""


async def test_pipe_prints_incoming_messages_plainly(server: anychat.Server) -> None:
    async with (
        anychat.connect(*server.address, nick="bob") as bob,
        await anyio.open_process(
            _chat_command(server.port, "--nick", "bot", "--show"), env=_env()
        ) as proc,
    ):
        assert proc.stdin is not None
        assert proc.stdout is not None
        await proc.stdin.send(b"hi\n")
        with anyio.fail_after(DEADLINE):
            await bob.wait_for(anychat.Message, lambda e: e.text == "hi")
        await bob.send("#general", "yo \x1b[31mthere")
        output = b""
        with anyio.fail_after(DEADLINE):
            while b"there\n" not in output:
                output += await proc.stdout.receive()
        assert b"<bob> yo \xef\xbf\xbd[31mthere\n" in output
        assert b"\x1b" not in output
        await proc.stdin.aclose()
        with anyio.fail_after(DEADLINE):
            assert await proc.wait() == 0


async def test_pipe_resends_after_the_server_came_back() -> None:
    async with anychat.serve(port=0) as first:
        port = first.port
        async with anychat.connect(*first.address, nick="listener") as listener:
            proc = await anyio.open_process(_chat_command(port, "--nick", "bot"), env=_env())
            assert proc.stdin is not None
            assert proc.stderr is not None
            await proc.stdin.send(b"one\n")
            with anyio.fail_after(DEADLINE):
                await listener.wait_for(anychat.Message, lambda e: e.text == "one")
    try:
        errors = b""
        with anyio.fail_after(DEADLINE):
            while b"disconnected" not in errors:
                errors += await proc.stderr.receive()
        async with (
            anychat.serve(port=port),
            anychat.connect("127.0.0.1", port, nick="listener") as listener,
        ):
            await proc.stdin.send(b"two\n")  # sent once the client is back in #general
            with anyio.fail_after(DEADLINE):
                msg = await listener.wait_for(anychat.Message)
            assert (msg.sender, msg.target, msg.text) == ("bot", "#general", "two")
            await proc.stdin.aclose()
            with anyio.fail_after(DEADLINE):
                assert await proc.wait() == 0
    finally:
        if proc.returncode is None:
            proc.kill()
        with anyio.CancelScope(shield=True):
            await proc.aclose()


async def test_pipe_reports_refused_lines(server: anychat.Server) -> None:
    result = await anyio.run_process(
        _chat_command(server.port, "--nick", "bot", "--show"),
        input=b"/msg nobody hi\n/frobnicate\n/help\nfine\n",
        env=_env(),
        check=False,
    )
    assert result.returncode == 1
    errors = result.stderr.decode().splitlines()
    assert len(errors) == 3
    assert (
        errors[0] == f"anychat: connected to 127.0.0.1:{server.port} as bot (guest, not logged in)"
    )
    assert "no such nick nobody" in errors[1]
    assert "unknown command /frobnicate" in errors[2]
    assert "/join #ROOM" in result.stdout.decode()


def test_unreachable_server_is_one_line_and_exit_1() -> None:
    with socket.socket() as reserved:  # bound, never listening: connections are refused
        reserved.bind(("127.0.0.1", 0))
        port = reserved.getsockname()[1]
        result = subprocess.run(
            _chat_command(port, "--nick", "ada"),
            input=b"hi\n",
            capture_output=True,
            env=_env(),
            timeout=DEADLINE * 3,
            check=False,
        )
    assert result.returncode == 1
    assert result.stdout == b""
    lines = result.stderr.decode().splitlines()
    assert len(lines) == 1, lines
    assert lines[0].startswith(f"anychat: cannot connect to 127.0.0.1:{port}")


async def test_nick_in_use_at_start_is_one_line_and_exit_1(server: anychat.Server) -> None:
    async with anychat.connect(*server.address, nick="ada"):
        result = await anyio.run_process(
            _chat_command(server.port, "--nick", "ADA"), input=b"hi\n", env=_env(), check=False
        )
    assert result.returncode == 1
    assert result.stderr.decode().splitlines() == ["anychat: nick ADA is already in use"]


# ---------------------------------------------------------------------- pure parts


def test_safe_replaces_every_control_character() -> None:
    controls = "".join(map(chr, [*range(0x20), *range(0x7F, 0xA0)]))
    assert cs.safe(controls) == "\ufffd" * len(controls)
    assert cs.safe("caf\u00e9 \u202ebidi") == "caf\u00e9 \ufffdbidi"


def test_nick_colours_are_stable_and_case_insensitive() -> None:
    assert cs.nick_style("Alice") == cs.nick_style("alice")
    assert len({cs.nick_style(f"user{i}") for i in range(100)}) > 3
    assert "red" not in cs.nick_style("bob")


def test_split_text_cuts_at_spaces_within_the_limit() -> None:
    assert cs.split_text("short") == ["short"]
    words = " ".join(["word"] * 300)  # 1499 characters
    pieces = cs.split_text(words)
    assert all(0 < len(p) <= m.MAX_TEXT_LENGTH for p in pieces)
    assert " ".join(pieces) == words
    assert cs.split_text("x" * 1000, 400) == ["x" * 400, "x" * 400, "x" * 200]


def test_message_lines() -> None:
    def text(msg: m.Message, room: str | None = "#general") -> str:
        line = cs.message_line(msg, me="ada", room=room)
        return "".join(fragment[1] for fragment in line)[6:]  # without "HH:MM "

    base = m.Message(id=1, time=0.0, sender="bob", target="#general", text="hi")
    assert text(base) == "<bob> hi"
    assert text(base, room="#other") == "#general <bob> hi"
    action = m.Message(
        id=1, time=0.0, sender="bob", target="#general", text="waves", kind=m.Kind.ACTION
    )
    assert text(action) == "* bob waves"
    private = m.Message(id=1, time=0.0, sender="bob", target="ada", text="psst")
    assert text(private) == "[private] <bob> psst"
    mine = m.Message(id=1, time=0.0, sender="ada", target="bob", text="hey")
    assert text(mine) == "[private to bob] <ada> hey"
