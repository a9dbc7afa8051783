"""The slash-command grammar shared by the text codec and the terminal client, and its hints."""

from __future__ import annotations

from pathlib import Path

import pytest

from anychat import commands as c
from anychat import model as m
from anychat.broker import Broker, Deliver, Effect
from anychat.codecs.jsonl import JsonServerCodec
from anychat.codecs.text import HELP, TextCodec
from anychat.terminal import session


@pytest.mark.parametrize(
    ("line", "parsed"),
    [
        ("/topic", m.Topic(room=None, text=None)),
        ("/topic #rust", m.Topic(room="#rust", text=None)),
        ("/topic #rust all about crabs", m.Topic(room="#rust", text="all about crabs")),
        ("/topic new words here", m.Topic(room=None, text="new words here")),
        ("/topic #rust -delete", m.Topic(room="#rust", text="")),
        ("/away lunch, back at 2", m.Away(text="lunch, back at 2")),
        ("/away", m.Away(text="")),
        ("/whois bob", m.Whois(nick="bob")),
        ("/names #rust", m.Who(room="#rust")),
        ("/names", m.Who(room=None)),
        ("/list", m.ListRooms()),
        ("/query bob hi", m.Say(target="bob", text="hi")),
        ("/history", m.History(target=None, before=None, limit=c.HISTORY_PAGE)),
        ("/history bob 12", m.History(target="bob", before=12, limit=c.HISTORY_PAGE)),
        ("/login ada pass word", m.Login(nick="ada", password="pass word")),
        ("/help", c.ShowHelp()),
        ("/EXIT", m.Quit(reason="")),
        ("//etc", m.Say(target=None, text="/etc")),
    ],
)
def test_lines_mean_model_commands(line: str, parsed: c.Parsed) -> None:
    assert c.parse_line(line) == parsed


@pytest.mark.parametrize("line", ["/whois", "/whois a b", "/join a b", "/who a b", "/history x y"])
def test_wrong_arguments_name_the_usage(line: str) -> None:
    invalid = c.parse_line(line)
    assert isinstance(invalid, m.Invalid) and invalid.code is m.ErrorCode.BAD_COMMAND
    name = line.split()[0][1:]
    assert invalid.text == f"usage: {c.COMMANDS[name].usage}"


def test_the_text_codec_and_the_terminal_client_read_lines_the_same_way() -> None:
    codec = TextCodec()
    for spec in c.COMMANDS.values():
        line = f"/{spec.name} {spec.args}".rstrip()
        for inbound in codec.feed(line.encode() + b"\n"):
            parsed = c.parse_line(line)
            if isinstance(parsed, c.ShowHelp):
                continue
            assert inbound == parsed
    # /help is the same list in both, one row per command.
    rows = [row.split("  ")[0] for row in c.help_rows()[: len(c.COMMANDS)]]
    assert rows == [spec.usage for spec in c.COMMANDS.values()]
    assert all(f"/{name}" in HELP for name in c.COMMANDS)
    terminal_rows = [line[-1][1] for line in session.help_lines()[1:]]
    assert [row.removeprefix("--").strip() for row in terminal_rows] == c.help_rows()


def test_help_columns_never_run_together() -> None:
    for row, spec in zip(c.help_rows(), c.COMMANDS.values(), strict=False):
        usage, gap, _ = row.partition(spec.what)
        assert usage.startswith(spec.usage) and usage.endswith("  ") and gap == spec.what


def test_secret_lines_are_recognised_with_aliases_and_case() -> None:
    assert c.is_secret("/login ada pw") and c.is_secret("/REGISTER pw")
    assert not c.is_secret("login ada pw") and not c.is_secret("/msg ada /login")


# -------------------------------------------------------------- hints per codec


class Peer:
    def __init__(self, name: str) -> None:
        self.name = name


def _errors(effects: list[Effect[Peer]]) -> list[m.Error]:
    return [e.event for e in effects if isinstance(e, Deliver) and isinstance(e.event, m.Error)]


def test_broker_errors_say_what_is_wrong_and_text_clients_add_how_to_fix_it() -> None:
    broker: Broker[Peer] = Broker(default_rooms=(), registered=["bob"])
    peer = Peer("ada")
    broker.connect(peer)
    broker.handle(peer, m.Hello(nick="ada", autojoin=False))
    (no_room,) = _errors(broker.handle(peer, m.Say(target=None, text="hi")))
    (taken,) = _errors(broker.handle(peer, m.Nick(nick="bob")))
    for error in (no_room, taken):
        assert "/" not in error.text  # IRC and JSON users get no slash commands to type
        assert b"/join" not in JsonServerCodec().encode(error)
    assert TextCodec().encode(no_room) == b"! you are not in a room; /join #room first\r\n"
    assert TextCodec().encode(taken) == (
        b"! nick bob is registered: log in or pick another; /login NICK PASSWORD, or /nick ANOTHER"
        b"\r\n"
    )
    plain = m.Error(code=m.ErrorCode.NO_SUCH_NICK, text="no such nick bob")
    assert TextCodec().encode(plain) == b"! no such nick bob\r\n"


def test_broker_texts_carry_no_slash_hints() -> None:
    text = (Path(c.__file__).parent / "broker.py").read_text(encoding="utf-8")
    for hint in ("/login", "/join", "/nick", "/register"):
        assert hint not in text
