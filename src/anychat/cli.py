"""The ``anychat`` command: a thin Typer layer that parses, builds a config, and runs.

Every failure a user can cause (port in use, unknown host, unreachable server) ends in one clear
line on stderr and a non-zero exit status, never a traceback.
"""

from __future__ import annotations

import enum
import logging
import sys
from pathlib import Path
from typing import Annotated

import anyio
import typer

from ._version import __version__
from .config import DEFAULT_DATABASE_URL, DEFAULT_PORT, ServerConfig, load_env_file
from .errors import ChatError

__all__ = ["app", "main"]

_DEFAULTS = ServerConfig()

app = typer.Typer(
    no_args_is_help=True,
    add_completion=False,
    pretty_exceptions_enable=False,
    help="anychat: a real-time chat server and client.",
)


class Backend(str, enum.Enum):
    asyncio = "asyncio"
    trio = "trio"


class Environment(enum.StrEnum):
    development = "development"
    production = "production"


class LogLevel(str, enum.Enum):
    debug = "debug"
    info = "info"
    warning = "warning"
    error = "error"


HostOption = Annotated[str, typer.Option(envvar="ANYCHAT_HOST", help="Server address.")]
PortOption = Annotated[
    int, typer.Option(envvar=["ANYCHAT_PORT", "PORT"], min=0, max=65535, help="Server port.")
]


def _fail(message: str, code: int = 1) -> typer.Exit:
    typer.echo(f"anychat: {message}", err=True)
    return typer.Exit(code)


@app.command()
def serve(
    host: Annotated[
        str, typer.Option(envvar="ANYCHAT_HOST", help="Address to listen on.")
    ] = "127.0.0.1",
    port: Annotated[
        int,
        typer.Option(envvar=["ANYCHAT_PORT", "PORT"], min=0, max=65535, help="Port (0 = any)."),
    ] = DEFAULT_PORT,
    backend: Annotated[
        Backend, typer.Option(envvar="ANYCHAT_BACKEND", help="Event loop to run on.")
    ] = Backend.asyncio,
    uvloop: Annotated[bool, typer.Option(help="Use uvloop (asyncio backend only).")] = False,
    log_level: Annotated[
        LogLevel, typer.Option(envvar="ANYCHAT_LOG_LEVEL", help="Logging detail.")
    ] = LogLevel.info,
    server_name: Annotated[
        str, typer.Option(envvar="ANYCHAT_SERVER_NAME", help="Name shown to clients.")
    ] = _DEFAULTS.server_name,
    room: Annotated[
        list[str] | None,
        typer.Option(help="Room joined on connect (repeatable). Default: #general."),
    ] = None,
    max_connections: Annotated[
        int, typer.Option(envvar="ANYCHAT_MAX_CONNECTIONS", min=1)
    ] = _DEFAULTS.max_connections,
    max_line_bytes: Annotated[
        int, typer.Option(envvar="ANYCHAT_MAX_LINE_BYTES", min=64)
    ] = _DEFAULTS.max_line_bytes,
    max_queue_bytes: Annotated[
        int,
        typer.Option(
            envvar="ANYCHAT_MAX_QUEUE_BYTES",
            min=1024,
            help="Unsent bytes per client before it is cut as too slow.",
        ),
    ] = _DEFAULTS.max_queue_bytes,
    flood_rate: Annotated[
        float,
        typer.Option(
            envvar="ANYCHAT_FLOOD_RATE",
            min=0,
            help="Commands per second per client before its input is slowed (0 = off).",
        ),
    ] = _DEFAULTS.flood_rate,
    irc_port: Annotated[
        int | None,
        typer.Option(
            envvar="ANYCHAT_IRC_PORT",
            min=0,
            max=65535,
            help="Also listen for IRC clients only on this port (e.g. 6667).",
        ),
    ] = None,
    database_url: Annotated[
        str,
        typer.Option(
            envvar="ANYCHAT_DATABASE_URL",
            help="Accounts and history: sqlite:///path/file.db, postgresql://user@host/db "
            "(needs anychat[cluster]) or memory://.",
        ),
    ] = DEFAULT_DATABASE_URL,
    secret: Annotated[
        str | None,
        typer.Option(
            envvar=["ANYCHAT_SECRET", "JWT_SECRET"],
            show_default=False,
            help="Signs login tokens (32+ characters; prefer the variable to the flag). "
            "Development: random per run if unset. Production: required.",
        ),
    ] = None,
    env: Annotated[
        Environment, typer.Option(envvar="ANYCHAT_ENV", help="development or production.")
    ] = Environment.development,
    history_length: Annotated[
        int,
        typer.Option(
            envvar="ANYCHAT_HISTORY_LENGTH",
            min=0,
            help="Messages replayed to a client joining a room.",
        ),
    ] = _DEFAULTS.history_length,
    require_login: Annotated[
        bool, typer.Option(envvar="ANYCHAT_REQUIRE_LOGIN", help="Refuse guests.")
    ] = _DEFAULTS.require_login,
    token_ttl: Annotated[
        float,
        typer.Option(envvar="ANYCHAT_TOKEN_TTL", min=1, help="Seconds a login token stays valid."),
    ] = _DEFAULTS.token_ttl_seconds,
) -> None:
    """Run a chat server until interrupted (Ctrl-C or SIGTERM)."""
    from .runner import run_server

    logging.basicConfig(
        level=log_level.value.upper(),
        format="%(asctime)s %(levelname)s %(name)s: %(message)s",
        stream=sys.stderr,
    )
    if uvloop and backend is not Backend.asyncio:
        raise _fail("--uvloop works only with --backend asyncio", 2)
    try:
        config = ServerConfig(
            host=host,
            port=port,
            server_name=server_name,
            default_rooms=tuple(room) if room else _DEFAULTS.default_rooms,
            max_connections=max_connections,
            max_line_bytes=max_line_bytes,
            max_queue_bytes=max(max_queue_bytes, max_line_bytes),
            flood_rate=flood_rate,
            irc_port=irc_port,
            database_url=database_url,
            secret=secret or None,
            environment=env.value,
            history_length=history_length,
            require_login=require_login,
            token_ttl_seconds=token_ttl,
        )
    except ChatError as exc:
        raise _fail(str(exc), 2) from None

    def started(config: ServerConfig, bound: int) -> None:
        flavour = backend.value + ("+uvloop" if uvloop else "")
        typer.echo(f"anychat {__version__} listening on {config.host}:{bound} ({flavour})")
        if config.irc_port is not None:
            typer.echo(f"anychat: IRC clients also on port {config.irc_port}")
        from .store import describe_url

        where = describe_url(config.database_url)  # a PostgreSQL password stays off the screen
        if where.startswith("sqlite:///"):
            where += f" ({Path(where.removeprefix('sqlite:///')).resolve()})"
        typer.echo(f"anychat: storing accounts and history in {where}")

    try:
        run_server(config, backend=backend.value, use_uvloop=uvloop, on_started=started)
    except ImportError as exc:
        raise _fail(f"{backend.value} backend unavailable: {exc}") from None
    except OSError as exc:
        raise _fail(exc.strerror or str(exc)) from None
    except ChatError as exc:
        raise _fail(str(exc)) from None
    except BaseExceptionGroup as group:  # a store that fails to open, from inside a task group
        error = _chat_error_in(group)
        if error is None:
            raise
        raise _fail(str(error)) from None
    typer.echo("anychat: server stopped")


def _chat_error_in(exc: BaseException) -> ChatError | None:
    if isinstance(exc, ChatError):
        return exc
    if isinstance(exc, BaseExceptionGroup):
        for inner in exc.exceptions:
            found = _chat_error_in(inner)
            if found is not None:
                return found
    return None


@app.command()
def chat(
    host: HostOption = "127.0.0.1",
    port: PortOption = DEFAULT_PORT,
    nick: Annotated[str | None, typer.Option(envvar="ANYCHAT_NICK", help="Your nick.")] = None,
    room: Annotated[str, typer.Option(help="Room to talk in.")] = "#general",
    login: Annotated[
        bool,
        typer.Option(
            "--login",
            help="Log in to the account NICK: with the token saved by the last login, else ask "
            "for the password (read from ANYCHAT_PASSWORD when stdin is not a terminal).",
        ),
    ] = False,
) -> None:
    """Chat in your terminal (or send each line of a piped stdin, then exit)."""
    from .terminal import run_chat

    if login and not nick:
        raise _fail("--login needs --nick (the account to log in to)")
    raise typer.Exit(run_chat(host=host, port=port, nick=nick, room=room, login=login))


@app.command()
def send(
    text: Annotated[str, typer.Argument(help="The message.")],
    host: HostOption = "127.0.0.1",
    port: PortOption = DEFAULT_PORT,
    room: Annotated[
        str, typer.Option("--room", "--to", help="Room or nick to send to.")
    ] = "#general",
    nick: Annotated[str | None, typer.Option(envvar="ANYCHAT_NICK", help="Your nick.")] = None,
) -> None:
    """Send one message and exit (for scripts and cron)."""
    from . import model
    from .client import connect

    async def go() -> int:
        async with connect(host, port, nick=nick, autojoin=False) as client:
            if model.is_room(room):
                await client.join(room)
            ack = await client.send(room, text)
            return ack.id

    try:
        msg_id = anyio.run(go)
    except ChatError as exc:
        raise _fail(str(exc)) from None
    typer.echo(f"sent message {msg_id} to {room}")


@app.command()
def version() -> None:
    """Print the version."""
    typer.echo(__version__)


from .admin import history_app, users_app  # noqa: E402 - the subcommands attach to the app above

app.add_typer(users_app, name="users")
app.add_typer(history_app, name="history")


def main() -> None:
    load_env_file()  # .env fills in what the environment does not set; flags override both
    app(prog_name="anychat")
