"""Admin commands: ``anychat users add|list|delete|passwd`` and ``anychat history export``.

They open the store the server uses directly: the database in the data directory (``--data-dir``,
``ANYCHAT_DATA_DIR``, by default ``~/.local/share/anychat``; see :mod:`anychat.datadir`) or the
one ``--database-url`` / ``ANYCHAT_DATABASE_URL`` names. Each says on stderr which database it
uses, and none creates one: a database that does not exist is a one-line error, not a new empty
file that the server never sees. SQLite's WAL mode lets them run beside a live server, which
follows their changes within a second (:mod:`anychat.accountsync`): an added account protects its
nick at once, and a deleted one's user is logged out.

Passwords are prompted without echo (twice, to catch typos) or, when stdin is not a terminal,
read from its first line, so scripts can pipe them in; they are never taken as arguments, which
would leave them in shell history and in ``ps`` output.
"""

from __future__ import annotations

import json
import sys
import time
from collections.abc import AsyncIterator, Awaitable, Callable
from contextlib import asynccontextmanager
from pathlib import Path
from typing import Annotated, TypeVar

import anyio
import typer

from . import model as m
from .auth import hash_password_async, password_problem
from .codecs.jsonl import event_to_json
from .datadir import DATA_DIR_VARIABLE, database_url_in, resolve_data_dir, sqlite_path
from .errors import ChatError, StoreError
from .store import MAX_HISTORY_LIMIT, Account, Store, describe_url, open_store

__all__ = ["history_app", "users_app"]

T = TypeVar("T")

users_app = typer.Typer(no_args_is_help=True, help="Manage accounts.")
history_app = typer.Typer(no_args_is_help=True, help="Read stored history.")

DatabaseOption = Annotated[
    str | None,
    typer.Option(
        envvar="ANYCHAT_DATABASE_URL",
        show_default=False,
        help="sqlite:///path/file.db or postgresql://user@host/db (default: anychat.db in the data directory).",
    ),
]
DataDirOption = Annotated[
    Path | None,
    typer.Option(
        "--data-dir",
        envvar=DATA_DIR_VARIABLE,
        file_okay=False,
        show_default=False,
        help="The server's data directory (default: ~/.local/share/anychat).",
    ),
]


def _database(database_url: str | None, data_dir: Path | None) -> str:
    """The store URL an admin command uses, said on stderr (stdout may be an export)."""
    url = database_url or database_url_in(resolve_data_dir(data_dir))
    path = sqlite_path(url)
    shown = path if path is not None else describe_url(url)  # no password on the screen
    typer.echo(f"anychat: using database {shown}", err=True)
    return url


@asynccontextmanager
async def _existing_store(url: str) -> AsyncIterator[Store]:
    try:
        async with open_store(url, create=False) as store:
            yield store
    except StoreError as exc:
        if str(exc).startswith("no database at"):
            raise ChatError(
                f"{exc} (start `anychat serve` once to create it, or pass --data-dir or "
                "--database-url)"
            ) from None
        raise


def _fail(message: str, code: int = 1) -> typer.Exit:
    typer.echo(f"anychat: {message}", err=True)
    return typer.Exit(code)


def _read_password() -> str:
    if sys.stdin.isatty():
        password: str = typer.prompt("Password", hide_input=True, confirmation_prompt=True)
        return password
    return sys.stdin.readline().rstrip("\r\n")


def _new_password() -> str:
    password = _read_password()
    problem = password_problem(password)
    if problem:
        raise _fail(problem, 2)
    return password


@users_app.command("add")
def add_user(
    nick: Annotated[str, typer.Argument(help="The nick to register.")],
    database_url: DatabaseOption = None,
    data_dir: DataDirOption = None,
) -> None:
    """Register NICK (password prompted, or read from stdin)."""
    url = _database(database_url, data_dir)
    if not m.valid_nick(nick):
        raise _fail(f"invalid nick {nick!r}", 2)
    password = _new_password()

    async def go() -> bool:
        password_hash = await hash_password_async(password)
        async with _existing_store(url) as store:
            since_id = await store.last_message_id() + 1
            return await store.create_account(
                Account(
                    nick=nick, password_hash=password_hash, created=time.time(), since_id=since_id
                )
            )

    if not _run(go):
        raise _fail(f"{nick} is already registered")
    typer.echo(f"registered {nick}")


@users_app.command("passwd")
def change_password(
    nick: Annotated[str, typer.Argument(help="The account.")],
    database_url: DatabaseOption = None,
    data_dir: DataDirOption = None,
) -> None:
    """Set a new password for NICK."""
    url = _database(database_url, data_dir)
    password = _new_password()

    async def go() -> bool:
        password_hash = await hash_password_async(password)
        async with _existing_store(url) as store:
            return await store.set_password(nick, password_hash)

    if not _run(go):
        raise _fail(f"no account {nick}")
    typer.echo(f"password of {nick} changed")


@users_app.command("delete")
def delete_user(
    nick: Annotated[str, typer.Argument(help="The account.")],
    database_url: DatabaseOption = None,
    data_dir: DataDirOption = None,
) -> None:
    """Delete the account NICK (its messages stay in the history)."""
    url = _database(database_url, data_dir)

    async def go() -> bool:
        async with _existing_store(url) as store:
            return await store.delete_account(nick)

    if not _run(go):
        raise _fail(f"no account {nick}")
    typer.echo(f"deleted {nick}")


@users_app.command("list")
def list_users(database_url: DatabaseOption = None, data_dir: DataDirOption = None) -> None:
    """List the accounts with their creation time (UTC)."""
    url = _database(database_url, data_dir)

    async def go() -> list[Account]:
        async with _existing_store(url) as store:
            return await store.list_accounts()

    for account in _run(go):
        created = time.strftime("%Y-%m-%d %H:%M:%S", time.gmtime(account.created))
        typer.echo(f"{account.nick}\t{created}")


@history_app.command("export")
def export_history(
    room: Annotated[str, typer.Option(help="The room to export, e.g. '#general'.")],
    output: Annotated[
        Path | None, typer.Option("--output", "-o", help="File to write (default: stdout).")
    ] = None,
    database_url: DatabaseOption = None,
    data_dir: DataDirOption = None,
) -> None:
    """Write every stored message of a room as JSON lines, oldest first (for backups)."""
    url = _database(database_url, data_dir)
    if not m.valid_room(room):
        raise _fail(f"invalid room name {room!r}", 2)

    async def go() -> int:
        count = 0
        async with _existing_store(url) as store:
            # Opened only once the database is known to exist: a failed export leaves no file.
            out = sys.stdout if output is None else output.open("w", encoding="utf-8")
            try:
                after = 0
                while True:
                    page = await store.history(room, after=after, limit=MAX_HISTORY_LIMIT)
                    for msg in page:
                        out.write(json.dumps(event_to_json(msg), ensure_ascii=False) + "\n")
                    count += len(page)
                    if len(page) < MAX_HISTORY_LIMIT:
                        return count
                    after = page[-1].id
            finally:
                if output is not None:
                    out.close()

    count = _run(go)
    if output is not None:
        typer.echo(f"exported {count} messages of {room} to {output}", err=True)


def _run(func: Callable[[], Awaitable[T]]) -> T:
    """Run an async admin action; store and config problems end in one line on stderr."""
    try:
        return anyio.run(func)
    except ChatError as exc:
        raise _fail(str(exc)) from None
