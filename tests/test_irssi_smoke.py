"""Opt-in smoke sessions: a real irssi, driven through tmux, chats with a JSON client (as a guest
and logged in with SASL PLAIN).

Run with ``ANYCHAT_IRSSI_SMOKE=1 python -m pytest tests/test_irssi_smoke.py`` on a machine with
``irssi`` and ``tmux`` (Debian: ``apt-get install irssi tmux``). Skipped otherwise. irssi queues
its commands (``cmd_queue_speed``, 2.2 s after a burst of five), so each step may take seconds;
every wait is for a fact (an event or text on irssi's screen) under a deadline.
"""

from __future__ import annotations

import os
import shutil
import uuid
from pathlib import Path

import anyio
import pytest

import anychat
from anychat import model as m

pytestmark = [
    pytest.mark.skipif(
        not os.environ.get("ANYCHAT_IRSSI_SMOKE")
        or not (shutil.which("irssi") and shutil.which("tmux")),
        reason="opt-in: set ANYCHAT_IRSSI_SMOKE=1 and install irssi and tmux",
    ),
    pytest.mark.timeout(120),
]

STEP_SECONDS = 30


async def _tmux(*args: str) -> str:
    result = await anyio.run_process(["tmux", *args], check=True)
    return result.stdout.decode(errors="replace")


async def _screen_shows(session: str, text: str) -> None:
    screen = ""
    try:
        with anyio.fail_after(STEP_SECONDS):
            while True:
                screen = await _tmux("capture-pane", "-p", "-t", session, "-S", "-200")
                if text in screen:
                    return
                await anyio.sleep(0.2)  # polling: a screen offers no event to wait on
    except TimeoutError:
        raise AssertionError(f"irssi never showed {text!r}; its screen:\n{screen}") from None


async def test_irssi_chats_with_a_json_client(tmp_path: Path) -> None:
    session = f"anychat-smoke-{uuid.uuid4().hex[:8]}"
    async with (
        anychat.serve(port=0) as server,
        anychat.connect("127.0.0.1", server.port, nick="bob") as bob,
    ):
        command = f"TERM=xterm irssi --home={tmp_path} -n smoky -c 127.0.0.1 -p {server.port}"
        await _tmux("new-session", "-d", "-s", session, "-x", "160", "-y", "50", command)
        try:
            await _screen_shows(session, "Welcome to the anychat IRC Network")
            await _tmux("send-keys", "-t", session, "/join #general", "Enter")
            with anyio.fail_after(STEP_SECONDS):
                await bob.wait_for(m.Joined, lambda e: e.nick == "smoky")

            await bob.send("#general", "hello irssi")
            await _screen_shows(session, "hello irssi")

            await _tmux("send-keys", "-t", session, "hello from irssi", "Enter")
            with anyio.fail_after(STEP_SECONDS):
                msg = await bob.wait_for(m.Message, lambda e: e.sender == "smoky")
            assert (msg.target, msg.text) == ("#general", "hello from irssi")

            await _tmux("send-keys", "-t", session, "/nick smoky2", "Enter")
            with anyio.fail_after(STEP_SECONDS):
                changed = await bob.wait_for(m.NickChanged)
            assert (changed.old, changed.new) == ("smoky", "smoky2")

            await _tmux("send-keys", "-t", session, "/quit see you", "Enter")
            with anyio.fail_after(STEP_SECONDS):
                quitted = await bob.wait_for(m.Quitted)
            assert (quitted.nick, quitted.reason) == ("smoky2", "see you")
        finally:
            with anyio.CancelScope(shield=True):
                await anyio.run_process(["tmux", "kill-session", "-t", session], check=False)


async def test_irssi_logs_in_with_sasl(tmp_path: Path) -> None:
    session = f"anychat-smoke-{uuid.uuid4().hex[:8]}"
    password = "irssi's long password"
    async with anychat.serve(port=0, login_delay_seconds=0) as server:
        async with anychat.connect("127.0.0.1", server.port, nick="smoky") as owner:
            await owner.register(password)
        # irssi's own configuration: a network with SASL PLAIN credentials, connected at start.
        (tmp_path / "config").write_text(
            'chatnets = { anychat = { type = "IRC"; sasl_mechanism = "PLAIN"; '
            f'sasl_username = "smoky"; sasl_password = "{password}"; }}; }};\n'
            f'servers = ( {{ address = "127.0.0.1"; port = "{server.port}"; '
            'chatnet = "anychat"; autoconnect = "yes"; use_tls = "no"; } );\n'
            'settings = { core = { nick = "smoky"; user_name = "smoky"; real_name = "S"; }; };\n'
        )
        async with anychat.connect("127.0.0.1", server.port, nick="bob") as bob:
            command = f"TERM=xterm irssi --home={tmp_path}"
            await _tmux("new-session", "-d", "-s", session, "-x", "160", "-y", "50", command)
            try:
                await _screen_shows(session, "You are now logged in as smoky")
                await _screen_shows(session, "Welcome to the anychat IRC Network")
                await _tmux("send-keys", "-t", session, "/join #general", "Enter")
                with anyio.fail_after(STEP_SECONDS):
                    await bob.wait_for(m.Joined, lambda e: e.nick == "smoky")
                await bob.send("#general", "hello account holder")
                await _screen_shows(session, "hello account holder")
                await _tmux("send-keys", "-t", session, "hi from an account", "Enter")
                with anyio.fail_after(STEP_SECONDS):
                    msg = await bob.wait_for(m.Message, lambda e: e.sender == "smoky")
                assert msg.text == "hi from an account"
            finally:
                with anyio.CancelScope(shield=True):
                    await anyio.run_process(["tmux", "kill-session", "-t", session], check=False)
