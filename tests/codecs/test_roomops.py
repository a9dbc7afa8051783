"""Room operator commands and events in the JSON and text protocols (no sockets)."""

from __future__ import annotations

import json

import pytest

from anychat import model as m
from anychat.codecs.jsonl import JsonClientCodec, JsonServerCodec, command_to_json
from anychat.codecs.text import TextCodec


@pytest.mark.parametrize(
    ("line", "command"),
    [
        ("/op #a bob", m.Mode(room="#a", changes=(m.ModeChange(mode="o", arg="bob"),))),
        (
            "/devoice #a bob",
            m.Mode(room="#a", changes=(m.ModeChange(mode="v", on=False, arg="bob"),)),
        ),
        (
            "/mode #a +kl-t sesame 5",
            m.Mode(
                room="#a",
                changes=(
                    m.ModeChange(mode="k", arg="sesame"),
                    m.ModeChange(mode="l", arg="5"),
                    m.ModeChange(mode="t", on=False),
                ),
            ),
        ),
        ("/mode #a +b", m.Mode(room="#a", changes=(m.ModeChange(mode="b"),))),
        ("/mode #a", m.Mode(room="#a")),
        ("/kick #a bob too loud", m.Kick(room="#a", nick="bob", reason="too loud")),
        ("/invite bob #a", m.Invite(nick="bob", room="#a")),
        ("/stats", m.Stats()),
    ],
)
def test_text_operator_commands(line: str, command: m.Command) -> None:
    assert TextCodec().feed(line.encode() + b"\r\n") == [command]


@pytest.mark.parametrize("line", ["/op bob", "/kick #a", "/invite bob", "/mode #a +k", "/mode"])
def test_text_operator_usage_errors(line: str) -> None:
    (invalid,) = TextCodec().feed(line.encode() + b"\r\n")
    assert isinstance(invalid, m.Invalid)
    assert invalid.code is m.ErrorCode.BAD_COMMAND


def test_text_renders_operator_events() -> None:
    codec = TextCodec()
    changed = m.ModeChanged(room="#a", by="ada", changes=(m.ModeChange(mode="o", arg="bob"),))
    assert codec.encode(changed) == b"* ada sets #a +o bob\r\n"
    kicked = m.Kicked(room="#a", nick="bob", by="ada", reason="bye\x1b[2J")
    assert b"\x1b" not in codec.encode(kicked)


COMMANDS: list[m.Command] = [
    m.Mode(room="#a", changes=(m.ModeChange(mode="k", arg="x"), m.ModeChange(mode="m", on=False))),
    m.Kick(room="#a", nick="bob", reason="r"),
    m.Invite(nick="bob", room="#a"),
    m.Stats(),
    m.Join(room="#a", key="sesame"),
]


@pytest.mark.parametrize("command", COMMANDS)
def test_json_operator_commands_round_trip(command: m.Command) -> None:
    line = json.dumps(command_to_json(command)).encode() + b"\n"
    assert JsonServerCodec().feed(line) == [command]


EVENTS: list[m.Event] = [
    m.ServerStats(users=2, unregistered=1, rooms=3, max_users=4, ref=1),
    m.RoomModes(room="#a", modes="+kn", args=("x",), created=5.0),
    m.ModeChanged(room="#a", by="ada", changes=(m.ModeChange(mode="o", arg="bob"),)),
    m.BanList(room="#a", bans=(m.Ban(mask="b!*@*", setter="ada", time=1.0),)),
    m.Kicked(room="#a", nick="bob", by="ada", reason="r"),
    m.Invited(room="#a", nick="bob", by="ada", ref="x"),
]


@pytest.mark.parametrize("event", EVENTS)
def test_json_operator_events_round_trip(event: m.Event) -> None:
    assert JsonClientCodec().feed(JsonServerCodec().encode(event)) == [event]


@pytest.mark.parametrize(
    "line",
    [
        b'{"type":"mode","room":"#a","changes":[{"mode":"oo"}]}',
        b'{"type":"mode","room":"#a","changes":"+o"}',
        b'{"type":"mode","room":"#a","changes":[{"mode":"o","on":"yes"}]}',
        b'{"type":"kick","room":"#a"}',
    ],
)
def test_bad_json_operator_commands_are_bad_command(line: bytes) -> None:
    (invalid,) = JsonServerCodec().feed(line + b"\n")
    assert isinstance(invalid, m.Invalid)
    assert invalid.code is m.ErrorCode.BAD_COMMAND
