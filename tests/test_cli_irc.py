"""``anychat serve --irc-port``: the flag reaches the server config (runner patched out)."""

from __future__ import annotations

import logging
from typing import Any

import pytest
from typer.testing import CliRunner

from anychat import runner
from anychat.cli import app
from anychat.config import ServerConfig


def test_irc_port_flag_reaches_the_config(monkeypatch: pytest.MonkeyPatch) -> None:
    seen: list[ServerConfig] = []

    def fake_run_server(config: ServerConfig, **kwargs: Any) -> None:
        seen.append(config)

    monkeypatch.setattr(runner, "run_server", fake_run_server)
    monkeypatch.setattr(logging, "basicConfig", lambda **kwargs: None)  # keep pytest's logging
    result = CliRunner().invoke(app, ["serve", "--irc-port", "6667", "--server-name", "irc.x"])
    assert result.exit_code == 0, result.output
    assert (seen[0].irc_port, seen[0].server_name) == (6667, "irc.x")
    result = CliRunner().invoke(app, ["serve"])
    assert seen[1].irc_port is None


def test_irc_port_out_of_range_is_a_usage_error() -> None:
    result = CliRunner().invoke(app, ["serve", "--irc-port", "70000"])
    assert result.exit_code == 2
