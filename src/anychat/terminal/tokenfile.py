"""Where the terminal client keeps login tokens between runs: a file only its owner can read.

``$XDG_CONFIG_HOME/anychat/tokens.json`` (``~/.config/anychat/tokens.json`` by default), one token
per server and nick. The file is created with mode 0600 inside a 0700 directory and replaced
atomically, so no other user can read a token, and a crash never leaves a half-written file.
"""

from __future__ import annotations

import json
import os
from pathlib import Path

from .. import model as m

__all__ = ["forget_token", "load_token", "save_token", "token_path"]


def token_path() -> Path:
    base = os.environ.get("XDG_CONFIG_HOME") or str(Path.home() / ".config")
    return Path(base) / "anychat" / "tokens.json"


def _key(host: str, port: int, nick: str) -> str:
    return f"{host}:{port}/{m.casefold(nick)}"


def _read(path: Path) -> dict[str, str]:
    try:
        data = json.loads(path.read_text(encoding="utf-8"))
    except (OSError, ValueError):
        return {}
    if not isinstance(data, dict):
        return {}
    return {k: v for k, v in data.items() if isinstance(k, str) and isinstance(v, str)}


def _write(path: Path, tokens: dict[str, str]) -> None:
    path.parent.mkdir(mode=0o700, parents=True, exist_ok=True)
    tmp = path.with_suffix(".tmp")
    fd = os.open(tmp, os.O_WRONLY | os.O_CREAT | os.O_TRUNC, 0o600)
    with os.fdopen(fd, "w", encoding="utf-8") as out:
        json.dump(tokens, out)
    os.chmod(tmp, 0o600)  # in case the file pre-existed with looser permissions
    os.replace(tmp, path)


def load_token(host: str, port: int, nick: str, *, path: Path | None = None) -> str | None:
    return _read(path or token_path()).get(_key(host, port, nick))


def save_token(host: str, port: int, nick: str, token: str, *, path: Path | None = None) -> None:
    path = path or token_path()
    tokens = _read(path)
    tokens[_key(host, port, nick)] = token
    _write(path, tokens)


def forget_token(host: str, port: int, nick: str, *, path: Path | None = None) -> None:
    """Drop a token the server refused (expired, or signed with an old secret)."""
    path = path or token_path()
    tokens = _read(path)
    if tokens.pop(_key(host, port, nick), None) is not None:
        _write(path, tokens)
