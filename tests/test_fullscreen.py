"""The full-screen terminal client in a real pseudo-terminal, read back through a VT100 emulator:
a window per room and private chat, unread counts and mentions, topic line, members, switching
with Alt+number, Ctrl+N/P and /join, per-window scrollback with PgUp/PgDn and earlier history."""

from __future__ import annotations

import os
import xml.etree.ElementTree as ET
from pathlib import Path

import anyio

import anychat
from anychat import model as m

from .screenshot import svg_of
from .test_terminal import DEADLINE, Terminal, chat_in_terminal

SCREENSHOT = Path(__file__).parent.parent / "docs" / "terminal.svg"


def _row(term: Terminal, text: str) -> int:
    for y, line in enumerate(term.lines):
        if text in line:
            return y
    raise AssertionError(f"{text!r} not on screen:\n{term.text()}")


def _column(term: Terminal) -> list[str]:
    """The window list: the left column, one window per row."""
    return [line[:18].strip() for line in term.lines[1:-1] if line[:18].strip()]


def _scrollback(term: Terminal) -> str:
    return "\n".join(line[19:83].rstrip() for line in term.lines[1:-1])


async def test_full_screen_windows(tmp_path: Path) -> None:
    async with (
        anychat.serve(port=0, history_length=5) as server,
        anychat.connect(*server.address, nick="bob") as bob,
        anychat.connect(*server.address, nick="carol") as carol,
    ):
        await bob.topic("#general", "release on friday")
        for i in range(8):
            await bob.send("#general", f"old {i}")
        await carol.join("#rust")
        await carol.topic("#rust", "fearless concurrency")
        async with chat_in_terminal(server.port, "--nick", "ada", plain=False) as term:
            # Title line with the topic, replayed history in the room's window, members.
            await term.wait_for_text("#general: release on friday")
            await term.wait_for_text("[earlier] <bob> old 7")
            await term.wait_until(lambda: term.lines[-1].endswith("#general ada>"), "prompt")
            assert "old 2" not in term.text()  # only history_length were replayed
            # A screen arrives in several reads of the pty: wait for the whole of it.
            await term.wait_until(
                lambda: term.lines[1].rstrip().endswith("ada") and "bob" in term.lines[2],
                "members",
            )
            with anyio.fail_after(DEADLINE):
                await bob.wait_for(m.Joined, lambda e: e.nick == "ada")

            # /join opens and shows a window of its own.
            term.type("/join #rust\r")
            await term.wait_for_text("#rust: fearless concurrency")
            await term.wait_until(lambda: _column(term) == ["1 #general", "2 #rust"], "windows")
            # #general's lines stay in its window (the title is drawn before the body).
            await term.wait_until(lambda: "old 7" not in _scrollback(term), "#rust's own window")

            # Activity elsewhere: an unread count, a highlighted mention, a private window.
            await bob.send("#general", "anyone seen the build?")
            await term.wait_until(lambda: "1 #general (1)" in _column(term), "unread count")
            await bob.send("#general", "ada: are you there?")
            await term.wait_until(lambda: "1 #general [2]" in _column(term), "mention")
            cell = term.screen.buffer[_row(term, "1 #general [2]")][1]
            assert cell.bold and cell.fg == "brown"  # highlighted, not just counted
            await carol.send("#rust", "borrow checker says no")
            await term.wait_for_text("<carol> borrow checker says no")
            await bob.send("ada", "psst, a private word")
            await term.wait_until(lambda: "3 bob (1)" in _column(term), "private window")

            # Alt+1 goes back: the count is cleared, the mention is there.
            term.type("\x1b1")
            await term.wait_for_text("<bob> ada: are you there?")
            await term.wait_until(lambda: _column(term)[0] == "1 #general", "count cleared")
            # The README's picture is this screen (ANYCHAT_WRITE_SCREENSHOT=1 rewrites it).
            if os.environ.get("ANYCHAT_WRITE_SCREENSHOT"):
                SCREENSHOT.write_text(svg_of(term.screen), encoding="utf-8")
            svg = ET.fromstring(svg_of(term.screen))
            assert any("release on friday" in (t.text or "") for t in svg.iter())
            # Ctrl+N / Ctrl+P walk the list.
            term.type("\x0e")
            await term.wait_for_text("#rust: fearless concurrency")
            term.type("\x10")
            await term.wait_for_text("#general: release on friday")
            # The private window: plain lines go to that nick.
            term.type("\x1b3")
            await term.wait_for_text("private chat with bob")
            await term.wait_until(lambda: "psst, a private word" in _scrollback(term), "pm")
            term.type("hello bob\r")
            with anyio.fail_after(DEADLINE):
                said = await bob.wait_for(m.Message, lambda e: e.sender == "ada")
            assert (said.target, said.text) == ("bob", "hello bob")

            # Scrollback: more lines than the window holds; PgUp, PgDn, and earlier history
            # fetched when scrolling past the top.
            term.type("\x1b1")
            await term.wait_for_text("#general: release on friday")
            for i in range(40):
                await bob.send("#general", f"line {i}")
            await term.wait_for_text("<bob> line 39")
            await term.wait_until(lambda: "line 5" not in _scrollback(term), "scrolled")
            term.type("\x1b[5~")  # PgUp
            await term.wait_for_text("more below (PgDn)")
            # Keep paging up, as a person would, until the fetched history shows (how many
            # presses reach the top depends on how the keys and redraws interleave).
            for _ in range(10):
                if "old 2" in _scrollback(term):
                    break
                term.type("\x1b[5~")
                with anyio.move_on_after(2):
                    await term.wait_until(lambda: "old 2" in _scrollback(term), "earlier history")
            assert "old 2" in _scrollback(term), term.text()
            term.type("\x1b[6~\x1b[6~\x1b[6~\x1b[6~")  # PgDn back to the bottom
            await term.wait_until(
                lambda: "line 39" in _scrollback(term) and "more below" not in term.text(),
                "bottom again",
            )

            # /part closes the window; /quit leaves and restores the terminal.
            term.type("/part #rust\r")
            await term.wait_until(lambda: "#rust" not in " ".join(_column(term)), "parted")
            term.type("/quit\r")
            assert await term.wait_exit() == 0
            assert b"\x1b[?1049l" in term.raw  # the alternate screen is left
