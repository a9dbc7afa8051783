"""Opt-in smoke session: a real weechat (``weechat-headless``, no terminal) chats with a JSON
client, and an operator's MODE reaches it.

Run with ``ANYCHAT_WEECHAT_SMOKE=1 python -m pytest tests/test_weechat_smoke.py`` on a machine
with ``weechat-headless`` (Debian: ``apt-get install weechat-headless``). Skipped otherwise.
weechat runs its commands from the server's ``command`` option once registered, in order, so
every wait here is for an event the JSON client sees, under a deadline.
"""

from __future__ import annotations

import os
import shutil
from pathlib import Path

import anyio
import pytest

import anychat
from anychat import model as m

pytestmark = [
    pytest.mark.skipif(
        not os.environ.get("ANYCHAT_WEECHAT_SMOKE") or not shutil.which("weechat-headless"),
        reason="opt-in: set ANYCHAT_WEECHAT_SMOKE=1 and install weechat-headless",
    ),
    pytest.mark.timeout(120),
]

STEP_SECONDS = 30


async def _log_shows(log: anyio.Path, text: str) -> str:
    seen = ""
    try:
        with anyio.fail_after(STEP_SECONDS):
            while text not in seen:
                await anyio.sleep(0.2)  # polling: a log file offers no event to wait on
                seen = await log.read_text(errors="replace") if await log.exists() else ""
    except TimeoutError:
        raise AssertionError(f"weechat never logged {text!r}; its log:\n{seen}") from None
    return seen


async def test_weechat_chats_with_a_json_client(tmp_path: Path) -> None:
    async with (
        anychat.serve(port=0) as server,
        anychat.connect("127.0.0.1", server.port, nick="bob") as bob,
    ):
        await bob.join("#w")  # bob creates the room: bob is its operator
        setup = ";".join(
            [
                "/set logger.file.flush_delay 0",
                f"/server add anychat 127.0.0.1/{server.port} -notls -nicks=wee -username=weeu"
                " -autojoin=#w",
                "/set irc.server.anychat.realname Wee Chat",
                "/connect anychat",
            ]
        )
        async with await anyio.open_process(
            ["weechat-headless", "--dir", str(tmp_path), "--run-command", setup]
        ) as weechat:
            try:
                with anyio.fail_after(STEP_SECONDS):
                    joined = await bob.wait_for(m.Joined, lambda e: e.nick == "wee")
                assert joined.room == "#w"
                changed = await bob.set_modes("#w", m.ModeChange(mode="o", arg="wee"))
                assert changed.changes == (m.ModeChange(mode="o", arg="wee"),)
                await bob.send("#w", "hello weechat")
                log = anyio.Path(tmp_path / "logs" / "irc.anychat.#w.weechatlog")
                text = await _log_shows(log, "hello weechat")
                assert "bob" in text
                assert "+o wee" in text
            finally:
                weechat.terminate()
