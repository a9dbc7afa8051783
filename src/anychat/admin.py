"""Admin commands: ``anychat users add|list|delete|passwd`` and ``anychat history export``.

They open the store the server uses (``--database-url`` / ``ANYCHAT_DATABASE_URL``) directly.
SQLite's WAL mode lets them run beside a live server (PostgreSQL is made for that); a running server learns of an account added
here when it is first used to log in (until then a guest could still hold that nick).

Passwords are prompted without echo (twice, to catch typos) or, when stdin is not a terminal,
read from its first line, so scripts can pipe them in; they are never taken as arguments, which
would leave them in shell history and in ``ps`` output.
"""

from __future__ import annotations

import json
import sys
import time
from collections.abc import Awaitable, Callable
from pathlib import Path
from typing import Annotated, TypeVar

import anyio
import typer

from . import model as m
from .auth import hash_password_async, password_problem
from .codecs.jsonl import event_to_json
from .config import DEFAULT_DATABASE_URL
from .errors import ChatError
from .store import MAX_HISTORY_LIMIT, Account, open_store

__all__ = ["history_app", "users_app"]

T = TypeVar("T")

users_app = typer.Typer(no_args_is_help=True, help="Manage accounts.")
history_app = typer.Typer(no_args_is_help=True, help="Read stored history.")

DatabaseOption = Annotated[
    str,
    typer.Option(
        envvar="ANYCHAT_DATABASE_URL",
        help="sqlite:///path/file.db, postgresql://user@host/db (or memory://).",
    ),
]


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
    database_url: DatabaseOption = DEFAULT_DATABASE_URL,
) -> None:
    """Register NICK (password prompted, or read from stdin)."""
    if not m.valid_nick(nick):
        raise _fail(f"invalid nick {nick!r}", 2)
    password = _new_password()

    async def go() -> bool:
        password_hash = await hash_password_async(password)
        async with open_store(database_url) as store:
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
    database_url: DatabaseOption = DEFAULT_DATABASE_URL,
) -> None:
    """Set a new password for NICK."""
    password = _new_password()

    async def go() -> bool:
        password_hash = await hash_password_async(password)
        async with open_store(database_url) as store:
            return await store.set_password(nick, password_hash)

    if not _run(go):
        raise _fail(f"no account {nick}")
    typer.echo(f"password of {nick} changed")


@users_app.command("delete")
def delete_user(
    nick: Annotated[str, typer.Argument(help="The account.")],
    database_url: DatabaseOption = DEFAULT_DATABASE_URL,
) -> None:
    """Delete the account NICK (its messages stay in the history)."""

    async def go() -> bool:
        async with open_store(database_url) as store:
            return await store.delete_account(nick)

    if not _run(go):
        raise _fail(f"no account {nick}")
    typer.echo(f"deleted {nick}")


@users_app.command("list")
def list_users(database_url: DatabaseOption = DEFAULT_DATABASE_URL) -> None:
    """List the accounts with their creation time (UTC)."""

    async def go() -> list[Account]:
        async with open_store(database_url) as store:
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
    database_url: DatabaseOption = DEFAULT_DATABASE_URL,
) -> None:
    """Write every stored message of a room as JSON lines, oldest first (for backups)."""
    if not m.valid_room(room):
        raise _fail(f"invalid room name {room!r}", 2)

    async def go() -> int:
        out = sys.stdout if output is None else output.open("w", encoding="utf-8")
        count = 0
        try:
            async with open_store(database_url) as store:
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
