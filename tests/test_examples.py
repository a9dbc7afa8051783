"""Every example runs: imported and driven against a real server, or run as a script."""

from __future__ import annotations

import importlib.util
import sys
from pathlib import Path
from types import ModuleType

import anyio
import pytest

import anychat
from anychat import model as m

EXAMPLES = Path(__file__).parent.parent / "examples"


def load(name: str) -> ModuleType:
    spec = importlib.util.spec_from_file_location(f"example_{name}", EXAMPLES / f"{name}.py")
    assert spec is not None and spec.loader is not None
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


async def test_echo_bot_echoes(server: anychat.Server, capsys: pytest.CaptureFixture[str]) -> None:
    echo_bot = load("echo_bot")
    async with anychat.connect(*server.address, nick="ada") as ada:
        await ada.send("#general", "said before the bot came")  # replayed: not echoed
        async with anyio.create_task_group() as tg:
            tg.start_soon(lambda: echo_bot.echo(server.host, server.port, max_messages=1))
            await ada.wait_for(m.Joined, lambda e: e.nick == "echobot")
            await ada.send("#general", "ping? \x1b]0;pwned\x07")
            reply = await ada.wait_for(m.Message, lambda e: e.sender == "echobot")
        assert reply.text == "ada said: ping? \x1b]0;pwned\x07"
    printed = capsys.readouterr().out
    assert printed == "ada -> #general: ping? \ufffd]0;pwned\ufffd\n"


@pytest.mark.parametrize("anyio_backend", ["trio"])
async def test_trio_bot_counts(server: anychat.Server, anyio_backend: object) -> None:
    trio_bot = load("trio_bot")
    async with anychat.connect(*server.address, nick="ada") as ada:
        await ada.send("#general", "before the bot")  # replayed to the bot on joining: not new
        async with anyio.create_task_group() as tg:
            tg.start_soon(
                lambda: trio_bot.count_bot(server.host, server.port, stop_after_reports=1)
            )
            await ada.wait_for(m.Joined, lambda e: e.nick == "countbot")
            async with anychat.connect(*server.address, nick="bob") as bob:
                await bob.send("#general", "one")
                await bob.send("#general", "two")
                await ada.send("#general", "!count")
                report = await ada.wait_for(m.Message, lambda e: e.sender == "countbot")
        assert report.text == "messages so far: bob: 2"


@pytest.mark.parametrize("anyio_backend", ["asyncio"])
async def test_embedded_server_runs_inside_an_asyncio_app(anyio_backend: object) -> None:
    embed = load("embed_server")
    port = await embed.app(0, announcements=1)
    assert port > 0


async def test_scripts_run_as_programs(server: anychat.Server) -> None:
    async with anychat.connect(*server.address, nick="ada") as ada:
        for script, args in [
            ("send_once.py", ["#general", "deploy finished", server.host, str(server.port)]),
            ("blocking_client.py", ["plain socket", server.host, str(server.port)]),
        ]:
            result = await anyio.run_process(
                [sys.executable, str(EXAMPLES / script), *args], check=False
            )
            assert result.returncode == 0, result.stderr.decode()
            assert result.stdout.startswith(b"sent message ")
        texts = {(await ada.wait_for(m.Message)).text for _ in range(2)}
        assert texts == {"deploy finished", "plain socket"}


async def test_send_once_reports_an_unreachable_server(anyio_backend: object) -> None:
    async with anychat.serve(port=0) as server:
        port = server.port
    result = await anyio.run_process(
        [sys.executable, str(EXAMPLES / "send_once.py"), "#general", "x", "127.0.0.1", str(port)],
        check=False,
    )
    assert result.returncode == 1
    assert result.stderr.decode().strip() == (
        f"send_once: cannot connect to 127.0.0.1:{port}: Connection refused"
    )
