"""Scripts and cron: ``anychat send`` and piped ``anychat chat`` log in the same way as the
interactive client, say on stderr who they posted as, and print nothing else unless asked."""

from __future__ import annotations

import os
import sys

import anyio

import anychat
from anychat.terminal import tokenfile

SECRET = "s" * 40
PASSWORD = "carol's long password"
DEADLINE = 20


def _env(**extra: str) -> dict[str, str]:
    env = {k: v for k, v in os.environ.items() if k != "ANYCHAT_PASSWORD"}
    env.update(extra)
    return env


async def _run(*args: str, stdin: bytes = b"", **env: str) -> tuple[int, str, str]:
    result = await anyio.run_process(
        [sys.executable, "-m", "anychat", *args], input=stdin, env=_env(**env), check=False
    )
    return result.returncode, result.stdout.decode(), result.stderr.decode()


async def test_send_logs_in_like_the_terminal_client_and_says_as_whom() -> None:
    async with (
        anychat.serve(port=0, secret=SECRET) as server,
        anychat.connect(*server.address, nick="carol") as first,
    ):
        await first.register(PASSWORD)
        await first.aclose()
        port = str(server.port)
        async with anychat.connect(*server.address, nick="listener") as listener:
            # A registered nick without a login: refused, with how to log in.
            code, out, err = await _run("send", "--port", port, "--nick", "carol", "x")
            assert (code, out) == (1, "")
            assert err == (
                "anychat: nick carol is registered: add --login (password in ANYCHAT_PASSWORD) "
                "to log in\n"
            )
            # The password from the environment (setting it is enough).
            code, out, err = await _run(
                "send", "--port", port, "--nick", "carol", "one", ANYCHAT_PASSWORD=PASSWORD
            )
            assert code == 0, err
            assert err == "anychat: sent as carol (logged in with the password)\n"
            assert out.startswith("sent message ")
            # ...which saved a token, as an interactive login does: the next run needs nothing.
            assert tokenfile.load_token("127.0.0.1", server.port, "carol")
            code, _, err = await _run("send", "--port", port, "--nick", "carol", "two")
            assert code == 0, err
            assert err == "anychat: sent as carol (logged in with the saved login token)\n"
            code, _, err = await _run("send", "--port", port, "three")
            assert code == 0, err
            assert err.startswith("anychat: sent as guest") and "(guest, not logged in)" in err
            with anyio.fail_after(DEADLINE):
                got = [await listener.wait_for(anychat.Message) for _ in range(3)]
            assert [(msg.sender, msg.text) for msg in got][:2] == [
                ("carol", "one"),
                ("carol", "two"),
            ]


async def test_pipe_mode_is_quiet_unless_asked_and_says_as_whom() -> None:
    async with anychat.serve(port=0, secret=SECRET, history_length=30) as server:
        async with anychat.connect(*server.address, nick="carol") as carol:
            await carol.register(PASSWORD)
            for i in range(5):
                await carol.send("#general", f"earlier {i}")
        port = str(server.port)
        code, out, err = await _run(
            "chat", "--port", port, "--nick", "carol", stdin=b"nightly ok\n",
            ANYCHAT_PASSWORD=PASSWORD,
        )  # fmt: skip
        assert code == 0, err
        assert out == ""  # no replayed history in the cron mail
        assert err == (
            f"anychat: connected to 127.0.0.1:{port} as carol (logged in with the password)\n"
        )
        code, out, err = await _run(
            "chat", "--port", port, "--nick", "carol", "--show", stdin=b"again\n"
        )
        assert code == 0, err
        assert "as carol (logged in with the saved login token)" in err
        assert "[earlier] <carol> earlier 4" in out and "<carol> nightly ok" in out
