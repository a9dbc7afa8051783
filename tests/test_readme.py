"""The README a new user follows: commands that work after the two-command start, and an API
example that neither replays history as news nor prints raw text."""

from __future__ import annotations

import re
from pathlib import Path

README = (Path(__file__).parent.parent / "README.md").read_text(encoding="utf-8")


def _shell_lines() -> list[str]:
    blocks = re.findall(r"```sh\n(.*?)```", README, re.DOTALL)
    return [line.strip() for block in blocks for line in block.splitlines() if line.strip()]


def test_the_start_is_two_commands_and_anychat_is_on_path_before_it_is_used_bare() -> None:
    lines = _shell_lines()
    assert lines[0].startswith("python3 -m venv .venv && .venv/bin/pip install . && ")
    assert lines[0].endswith(".venv/bin/anychat serve   # 1. the server")
    assert lines[1].startswith("./scripts/test")
    bare = next(i for i, line in enumerate(lines) if line.startswith("anychat "))
    activate = lines.index(next(line for line in lines if line.startswith(". .venv/bin/activate")))
    assert activate < bare, "a bare `anychat` command comes before the virtualenv is activated"


def test_the_api_example_prints_safe_text_and_explains_history() -> None:
    example = re.search(r"```python\n(.*?)```", README, re.DOTALL)
    assert example is not None
    code = example.group(1)
    assert "event.safe_text" in code and "event.text" not in code
    assert "history=True" in README and "event.history" in README


def test_every_serve_option_is_in_the_configuration_table() -> None:
    from typer.main import get_command

    from anychat.cli import app

    serve = get_command(app).get_command(None, "serve")  # type: ignore[attr-defined]
    table = README[README.index("## Configuration") : README.index("## Limits")]
    for param in serve.params:
        flag = max(param.opts, key=len)
        if flag != "--help":
            assert f"`{flag}" in table, f"{flag} is not in the README's configuration table"
