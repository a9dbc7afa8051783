"""A link cut between a message and its ack: the Python client and the terminal client resend
after reconnecting, with the same idempotency key, and the message is posted exactly once.

The server stays up; a relay (:mod:`tests.linkcut`) drops the link once, either as the ``say``
goes in (the server never saw it: the resend must store it) or as its ``ack`` comes out (the
server stored it: the resend must not store it again).
"""

from __future__ import annotations

import anyio
import pytest

import anychat

from .linkcut import Direction, link_cutter
from .test_terminal import Terminal, _chat_command, _env, _prompt_ready

pytestmark = pytest.mark.timeout(60)

DEADLINE = 20

#: Where the link is cut: the say on its way in, or its ack on its way out.
CUTS = [
    pytest.param(b'"type":"say"', "in", id="say-lost"),
    pytest.param(b'"type":"ack"', "out", id="ack-lost"),
]


async def _texts_after(listener: anychat.Client, last: str) -> list[str]:
    """The texts of the messages ``listener`` receives, up to and including ``last``."""
    texts: list[str] = []
    with anyio.fail_after(DEADLINE):
        while not texts or texts[-1] != last:
            texts.append((await listener.wait_for(anychat.Message)).text)
    return texts


@pytest.mark.parametrize(("needle", "direction"), CUTS)
async def test_python_client_resends_once_over_a_cut_link(
    needle: bytes, direction: Direction
) -> None:
    async with (
        anychat.serve(port=0) as server,
        link_cutter(server.port, needle, direction) as cutter,
        anychat.connect(*server.address, nick="listener") as listener,
        anychat.connect(
            "127.0.0.1", cutter.port, nick="ada", reconnect=True, reconnect_delay=0.05
        ) as ada,
    ):
        with anyio.fail_after(DEADLINE):
            ack = await ada.send("#general", "exactly once")
        assert cutter.cuts == 1 and cutter.connections == 2  # cut, then reconnected
        with anyio.fail_after(DEADLINE):
            await ada.send("#general", "after")
        assert await _texts_after(listener, "after") == ["exactly once", "after"]
        page = await listener.history("#general")
        assert [(msg.id, msg.text) for msg in page] == [
            (ack.id, "exactly once"),
            (ack.id + 1, "after"),
        ]


@pytest.mark.parametrize(("needle", "direction"), CUTS)
async def test_terminal_pipe_resends_once_over_a_cut_link(
    needle: bytes, direction: Direction
) -> None:
    async with (
        anychat.serve(port=0) as server,
        link_cutter(server.port, needle, direction) as cutter,
        anychat.connect(*server.address, nick="listener") as listener,
    ):
        with anyio.fail_after(DEADLINE):
            result = await anyio.run_process(
                _chat_command(cutter.port, "--nick", "bot"),
                input=b"exactly once\nafter\n",
                env=_env(),
                check=False,
            )
        assert result.returncode == 0, result.stderr
        assert cutter.cuts == 1 and cutter.connections == 2
        assert b"sent again on reconnect" in result.stderr
        assert await _texts_after(listener, "after") == ["exactly once", "after"]
        page = await listener.history("#general")
        assert [msg.text for msg in page] == ["exactly once", "after"]


@pytest.mark.parametrize(("needle", "direction"), CUTS)
async def test_terminal_shows_a_resent_message_once(needle: bytes, direction: Direction) -> None:
    """On screen too: a message the server had is shown by the catch-up after the reconnect
    and not again for its resend; one it never saw is shown when the resend is acked."""
    term = Terminal()
    try:
        async with (
            anychat.serve(port=0) as server,
            link_cutter(server.port, needle, direction) as cutter,
            anychat.connect(*server.address, nick="listener") as listener,
        ):
            await term.start(cutter.port, "--nick", "bot")
            await term.wait_until(_prompt_ready(term, "bot"), "prompt")
            term.type("exactly once\r")
            await term.wait_for_text("reconnected as bot")
            term.type("after\r")
            await term.wait_for_text("<bot> after")
            assert cutter.cuts == 1
            assert await _texts_after(listener, "after") == ["exactly once", "after"]
            shown = [line for line in term.lines if line.endswith("<bot> exactly once")]
            assert len(shown) == 1, term.text()
            term.type("/quit\r")
            assert await term.wait_exit() == 0
    finally:
        await term.aclose()
