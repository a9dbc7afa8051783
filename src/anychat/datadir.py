"""Where ``anychat serve`` and the admin commands keep their files: one data directory.

``--data-dir``, else ``$ANYCHAT_DATA_DIR``, else ``$XDG_DATA_HOME/anychat`` (by default
``~/.local/share/anychat``). It holds the database (``anychat.db``) and, in development, the
secret that signs login tokens (``secret``), so that a server started from any directory, and
an admin command run from any other, use the same files, and a restart keeps everyone logged in.
The directory is created owner-only (0700) and the secret file owner-only (0600): the secret
lets whoever reads it sign a token for any account.

Production never reads a generated secret: it requires ``ANYCHAT_SECRET`` (see
:class:`~anychat.config.ServerConfig`), so a secret is a deliberate, managed setting there.
"""

from __future__ import annotations

import os
import secrets
from pathlib import Path
from typing import Final

from .errors import ConfigError

__all__ = [
    "DATABASE_FILE",
    "DATA_DIR_VARIABLE",
    "SECRET_FILE",
    "database_url_in",
    "default_data_dir",
    "load_or_create_secret",
    "resolve_data_dir",
    "sqlite_path",
]

DATA_DIR_VARIABLE: Final = "ANYCHAT_DATA_DIR"
DATABASE_FILE: Final = "anychat.db"
SECRET_FILE: Final = "secret"


def default_data_dir() -> Path:
    """``$XDG_DATA_HOME/anychat``, by default ``~/.local/share/anychat``."""
    base = os.environ.get("XDG_DATA_HOME") or str(Path.home() / ".local" / "share")
    return Path(base) / "anychat"


def resolve_data_dir(given: Path | None = None) -> Path:
    """The data directory: ``given`` (the flag), else ``$ANYCHAT_DATA_DIR``, else the default.

    Absolute, so what is printed is where the files are whatever the working directory.
    """
    if given is None:
        env = os.environ.get(DATA_DIR_VARIABLE)
        given = Path(env) if env else default_data_dir()
    return given.expanduser().absolute()


def database_url_in(data_dir: Path) -> str:
    return f"sqlite:///{data_dir / DATABASE_FILE}"


def sqlite_path(url: str) -> Path | None:
    """The file a ``sqlite:///`` URL names (absolute), or ``None`` for other stores."""
    if not url.startswith("sqlite:///"):
        return None
    return Path(url.removeprefix("sqlite:///")).absolute()


def _make_dir(data_dir: Path) -> None:
    try:
        data_dir.mkdir(mode=0o700, parents=True, exist_ok=True)
    except OSError as exc:
        raise ConfigError(f"cannot create data directory {data_dir}: {exc.strerror}") from None


def load_or_create_secret(data_dir: Path) -> tuple[str, bool]:
    """The development token secret kept in ``data_dir``, and whether it was just made.

    Made once (48 random bytes, URL-safe) with ``O_EXCL``, so two servers starting at once
    agree on one; an existing file that is readable by others is refused rather than used.
    """
    _make_dir(data_dir)
    path = data_dir / SECRET_FILE
    created = False
    try:
        fd = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o600)
    except FileExistsError:
        pass
    except OSError as exc:
        raise ConfigError(f"cannot create {path}: {exc.strerror}") from None
    else:
        with os.fdopen(fd, "w", encoding="ascii") as out:
            out.write(secrets.token_urlsafe(48) + "\n")
        created = True
    try:
        mode = path.stat().st_mode
        secret = path.read_text(encoding="ascii").strip()
    except (OSError, UnicodeDecodeError) as exc:
        raise ConfigError(f"cannot read the token secret {path}: {exc}") from None
    if mode & 0o077:
        raise ConfigError(
            f"{path} is readable by other users: `chmod 600 {path}` (or delete it to make a new "
            "one, which logs everyone out)"
        )
    if len(secret) < 32:
        raise ConfigError(f"{path} holds no usable secret: delete it to make a new one")
    return secret, created
