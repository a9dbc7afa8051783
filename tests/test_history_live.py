"""Replayed history versus live chat for API users, and text made safe to print."""

from __future__ import annotations

import anyio
import pytest
from hypothesis import given
from hypothesis import strategies as st

import anychat
from anychat import model as m
from anychat.codecs.text import TextCodec
from anychat.safetext import UNSAFE_CODEPOINTS, safe_text
from anychat.terminal.render import safe


async def test_the_iterator_yields_live_messages_unless_history_is_asked_for() -> None:
    async with (
        anychat.serve(port=0, history_length=10) as server,
        anychat.connect(*server.address, nick="ada") as ada,
    ):
        for i in range(3):
            await ada.send("#general", f"old {i}")
        async with (
            anychat.connect(*server.address, nick="bot") as bot,
            anychat.connect(*server.address, nick="rec", history=True) as recorder,
        ):
            await ada.send("#general", "live")
            with anyio.fail_after(10):
                first = await bot.wait_for(m.Message)
                replayed = [await recorder.wait_for(m.Message) for _ in range(4)]
            assert (first.text, first.history) == ("live", False)
            assert [(e.text, e.history) for e in replayed] == [
                ("old 0", True),
                ("old 1", True),
                ("old 2", True),
                ("live", False),
            ]
            # Earlier messages are one explicit call away.
            assert [e.text for e in await bot.history("#general")] == [
                "old 0",
                "old 1",
                "old 2",
                "live",
            ]


@pytest.mark.parametrize(
    "hostile",
    [
        "\x1b[2J\x1b]0;pwned\x07",
        "\x9b31m C1 CSI",
        "\u202eevil\u202c reversed",
        "\u2066isolate\u2069",
        "fake\u2028<root> second line\u2029",
        "\x00\x7f\x85",
    ],
)
def test_safe_text_neutralises_what_drives_a_terminal(hostile: str) -> None:
    msg = m.Message(id=1, time=0.0, sender="ada", target="#general", text=hostile)
    assert msg.text == hostile  # the raw text is kept as sent
    cleaned = msg.safe_text
    assert not any(ord(ch) in UNSAFE_CODEPOINTS for ch in cleaned)
    assert "\ufffd" in cleaned and len(cleaned) == len(hostile)
    # One sanitiser: the nc user, the terminal user and the API user see the same text.
    assert safe(hostile) == cleaned
    assert TextCodec().encode(msg).decode().rstrip("\r\n").endswith(cleaned)


@given(st.text())
def test_safe_text_keeps_every_other_character(text: str) -> None:
    cleaned = safe_text(text)
    assert len(cleaned) == len(text)
    for before, after in zip(text, cleaned, strict=True):
        assert after == ("\ufffd" if ord(before) in UNSAFE_CODEPOINTS else before)
