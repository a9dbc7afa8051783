"""The ``anychat`` command: a thin Typer layer that parses, builds a config, and runs.

Every failure a user can cause (port in use, unknown host, unreachable server) ends in one clear
line on stderr and a non-zero exit status, never a traceback.
"""

from __future__ import annotations

import enum
import logging
import sys
from pathlib import Path
from typing import TYPE_CHECKING, Annotated

import anyio
import typer

from ._version import __version__
from .config import DEFAULT_PORT, ServerConfig, load_env_file
from .datadir import (
    DATA_DIR_VARIABLE,
    SECRET_FILE,
    database_url_in,
    load_or_create_secret,
    resolve_data_dir,
    sqlite_path,
)
from .errors import ChatError

if TYPE_CHECKING:
    import ssl

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


TlsOption = Annotated[
    bool, typer.Option("--tls", help="Encrypt the connection; verify the server's certificate.")
]
TlsCaOption = Annotated[
    Path | None,
    typer.Option(
        "--tls-ca",
        envvar="ANYCHAT_TLS_CA",
        dir_okay=False,
        help="Trust only this CA (PEM) for the server's certificate; implies --tls.",
    ),
]
TlsInsecureOption = Annotated[
    bool,
    typer.Option(
        "--tls-insecure",
        help="Encrypt but do NOT verify the server's certificate (anyone in between can read "
        "everything); implies --tls.",
    ),
]

#: What --tls-insecure gives up, said every time it is used.
INSECURE_WARNING = (
    "anychat: WARNING: --tls-insecure: the server's certificate is not checked. The connection "
    "is encrypted, but anyone between you and the server can pose as the server and read and "
    "change everything, your password and login token included."
)


def _fail(message: str, code: int = 1) -> typer.Exit:
    typer.echo(f"anychat: {message}", err=True)
    return typer.Exit(code)


def _client_tls(tls: bool, ca_file: Path | None, insecure: bool) -> ssl.SSLContext | None:
    """The client's TLS context from the flags (``None``: plaintext)."""
    if not (tls or ca_file or insecure):
        return None
    from .tlsconfig import client_context

    if insecure:
        if ca_file is not None:
            raise _fail("--tls-insecure and --tls-ca contradict each other: choose one", 2)
        typer.echo(INSECURE_WARNING, err=True)
    try:
        return client_context(ca_file=ca_file, insecure=insecure)
    except ChatError as exc:
        raise _fail(str(exc), 2) from None


def _origins(given: list[str] | None) -> tuple[str, ...]:
    """Repeated flags, or one variable holding a comma- or space-separated list."""
    return tuple(part for item in given or () for part in item.replace(",", " ").split())


def _url_host(host: str) -> str:
    if host in ("0.0.0.0", "::", ""):
        return "127.0.0.1"
    return f"[{host}]" if ":" in host else host


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
        int,
        typer.Option(
            envvar="ANYCHAT_MAX_CONNECTIONS",
            min=1,
            help="Clients connected at once; the next one is told the server is full.",
        ),
    ] = _DEFAULTS.max_connections,
    max_connections_per_address: Annotated[
        int,
        typer.Option(
            envvar="ANYCHAT_MAX_CONNECTIONS_PER_ADDRESS",
            min=0,
            help="Clients one address (other than this machine's) may connect at once, and "
            "it may open 5 a second at most; 0 = no limit.",
        ),
    ] = _DEFAULTS.max_connections_per_address,
    quiet_room_size: Annotated[
        int,
        typer.Option(
            envvar="ANYCHAT_QUIET_ROOM_SIZE",
            min=0,
            help="In a room with this many members, guests join and leave unannounced; "
            "0 = announce everyone.",
        ),
    ] = _DEFAULTS.quiet_room_size,
    silent_timeout: Annotated[
        float,
        typer.Option(
            envvar="ANYCHAT_SILENT_TIMEOUT",
            min=1,
            help="Seconds after which a connection that never sent a byte is closed.",
        ),
    ] = _DEFAULTS.silent_timeout_seconds,
    park_after: Annotated[
        float,
        typer.Option(
            envvar="ANYCHAT_PARK_AFTER",
            min=0,
            help="Seconds of quiet after which a connection gives up its reader task until "
            "it sends again (saves memory); 0 = never.",
        ),
    ] = _DEFAULTS.park_after_seconds,
    max_line_bytes: Annotated[
        int,
        typer.Option(
            envvar="ANYCHAT_MAX_LINE_BYTES",
            min=64,
            help="Longest input line; a longer one is dropped with an error (the client stays).",
        ),
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
    data_dir: Annotated[
        Path | None,
        typer.Option(
            "--data-dir",
            envvar=DATA_DIR_VARIABLE,
            file_okay=False,
            show_default=False,
            help="Where the database and the development token secret live "
            "(default: $XDG_DATA_HOME/anychat, i.e. ~/.local/share/anychat).",
        ),
    ] = None,
    http_port: Annotated[
        int | None,
        typer.Option(
            envvar="ANYCHAT_HTTP_PORT",
            min=0,
            max=65535,
            help="Also serve the web page and its WebSocket (only) on this port, e.g. 8080.",
        ),
    ] = None,
    allowed_origin: Annotated[
        list[str] | None,
        typer.Option(
            envvar="ANYCHAT_ALLOWED_ORIGINS",
            help="Another web origin whose pages may open a WebSocket here, such as "
            "https://chat.example.com (repeatable; the variable takes a comma-separated list). "
            "The server's own origin is always allowed.",
        ),
    ] = None,
    database_url: Annotated[
        str | None,
        typer.Option(
            envvar="ANYCHAT_DATABASE_URL",
            show_default=False,
            help="Accounts and history: sqlite:///path/file.db, postgresql://user@host/db "
            "(needs anychat[cluster]) or memory:// (default: anychat.db in the data directory).",
        ),
    ] = None,
    cluster_url: Annotated[
        str | None,
        typer.Option(
            envvar="ANYCHAT_CLUSTER_URL",
            show_default=False,
            help="Serve one chat with other nodes over this Redis (redis://host:port/db; needs "
            "anychat[cluster]); pair it with a shared --database-url postgresql://...",
        ),
    ] = None,
    cluster_lease: Annotated[
        float,
        typer.Option(
            envvar="ANYCHAT_CLUSTER_LEASE_SECONDS",
            min=0.1,
            help="A node silent this long is dead: the others announce its users as quit.",
        ),
    ] = _DEFAULTS.cluster_lease_seconds,
    secret: Annotated[
        str | None,
        typer.Option(
            envvar=["ANYCHAT_SECRET", "JWT_SECRET"],
            show_default=False,
            help="Signs login tokens (32+ characters; prefer the variable to the flag). "
            "Development: generated once into the data directory if unset. Production: required.",
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
    tls_cert: Annotated[
        Path | None,
        typer.Option(
            envvar="ANYCHAT_TLS_CERT",
            dir_okay=False,
            help="TLS certificate chain (PEM, e.g. fullchain.pem): every port then accepts TLS.",
        ),
    ] = None,
    tls_key: Annotated[
        Path | None,
        typer.Option(
            envvar="ANYCHAT_TLS_KEY",
            dir_okay=False,
            help="The certificate's key (PEM, unencrypted).",
        ),
    ] = None,
    tls_self_signed: Annotated[
        bool,
        typer.Option(
            "--tls-self-signed",
            help="Development: make (or reuse) a self-signed certificate for --host, this "
            "machine's name and localhost in the data directory, and serve TLS with it.",
        ),
    ] = False,
    tls_required: Annotated[
        bool,
        typer.Option(
            envvar="ANYCHAT_TLS_REQUIRED", help="Refuse plaintext connections: TLS or nothing."
        ),
    ] = False,
    tls_port: Annotated[
        int | None,
        typer.Option(
            envvar="ANYCHAT_TLS_PORT",
            min=0,
            max=65535,
            help="Also listen on this port with TLS from the first byte (e.g. 6697 for IRC).",
        ),
    ] = None,
    allow_plaintext_login: Annotated[
        bool,
        typer.Option(
            envvar="ANYCHAT_ALLOW_PLAINTEXT_LOGIN",
            help="Production: accept passwords and tokens over plaintext from other machines.",
        ),
    ] = False,
) -> None:
    """Run a chat server until interrupted (Ctrl-C or SIGTERM; SIGHUP reloads TLS files)."""
    from .runner import run_server

    logging.basicConfig(
        level=log_level.value.upper(),
        format="%(asctime)s %(levelname)s %(name)s: %(message)s",
        stream=sys.stderr,
    )
    # coredis logs its routine retries (a Lua script loaded on first use) at INFO: that is not
    # news for whoever runs the server; its warnings and errors still show.
    logging.getLogger("coredis").setLevel(max(logging.WARNING, logging.root.level))
    if uvloop and backend is not Backend.asyncio:
        raise _fail("--uvloop works only with --backend asyncio", 2)
    if uvloop:
        try:
            import uvloop as _  # noqa: F401 - only checking that it is installed
        except ImportError:
            raise _fail(
                "--uvloop needs uvloop, which is not installed: pip install 'anychat[uvloop]'", 2
            ) from None
    where = resolve_data_dir(data_dir)
    secret_note = ""
    try:
        if not secret and env is Environment.development:
            secret, made = load_or_create_secret(where)
            how = "made now" if made else "kept across restarts"
            secret_note = f"anychat: login tokens signed with {where / SECRET_FILE} ({how})"
        elif database_url is None:
            where.mkdir(mode=0o700, parents=True, exist_ok=True)
    except ChatError as exc:
        raise _fail(str(exc), 2) from None
    except OSError as exc:
        raise _fail(f"cannot create data directory {where}: {exc.strerror}", 2) from None
    try:
        cert_file, key_file = _tls_files(tls_cert, tls_key, tls_self_signed, env, host, where)
        config = ServerConfig(
            host=host,
            port=port,
            server_name=server_name,
            default_rooms=tuple(room) if room else _DEFAULTS.default_rooms,
            max_connections=max_connections,
            max_connections_per_address=max_connections_per_address,
            silent_timeout_seconds=silent_timeout,
            park_after_seconds=park_after,
            quiet_room_size=quiet_room_size,
            max_line_bytes=max_line_bytes,
            max_queue_bytes=max(max_queue_bytes, max_line_bytes),
            flood_rate=flood_rate,
            irc_port=irc_port,
            database_url=database_url or database_url_in(where),
            cluster_url=cluster_url or None,
            cluster_lease_seconds=cluster_lease,
            http_port=http_port,
            allowed_origins=_origins(allowed_origin),
            secret=secret or None,
            environment=env.value,
            history_length=history_length,
            require_login=require_login,
            token_ttl_seconds=token_ttl,
            tls_required=tls_required,
            tls_port=tls_port,
            allow_plaintext_login=allow_plaintext_login,
            tls_cert=cert_file,
            tls_key=key_file,
        )
    except ChatError as exc:
        raise _fail(str(exc), 2) from None

    def started(config: ServerConfig, bound: int) -> None:
        flavour = backend.value + ("+uvloop" if uvloop else "")
        typer.echo(f"anychat {__version__} listening on {config.host}:{bound} ({flavour})")
        if config.irc_port is not None:
            typer.echo(f"anychat: IRC clients also on port {config.irc_port}")
        if config.tls_cert:
            plain = "refused" if config.tls_required else "also accepted"
            typer.echo(
                f"anychat: TLS on every port (plaintext {plain}), certificate {config.tls_cert}"
            )
        if config.tls_port is not None:
            typer.echo(f"anychat: TLS-only port {config.tls_port}")
        typer.echo(f"anychat: web chat at http://{_url_host(config.host)}:{bound}/")
        if config.http_port is not None:
            typer.echo(f"anychat: web page and WebSocket also on port {config.http_port}")
        typer.echo(f"anychat: data directory {where}")
        if secret_note:
            typer.echo(secret_note)
        from .store import describe_url

        path = sqlite_path(config.database_url)
        shown = str(path) if path is not None else describe_url(config.database_url)
        if config.database_url.startswith("memory:"):
            shown += " (lost when the server stops)"
        typer.echo(f"anychat: storing accounts and history in {shown}")

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


def _tls_files(
    cert: Path | None,
    key: Path | None,
    self_signed: bool,
    env: Environment,
    host: str,
    data_dir: Path,
) -> tuple[str | None, str | None]:
    """The certificate and key to serve: given, or self-signed (development only)."""
    if not self_signed:
        return (str(cert) if cert else None, str(key) if key else None)
    if env is Environment.production:
        raise _fail(
            "--tls-self-signed is for development: in production give a real certificate "
            "with --tls-cert and --tls-key",
            2,
        )
    if cert or key:
        raise _fail("--tls-self-signed or --tls-cert/--tls-key: choose one", 2)
    from .selfsigned import default_names, ensure_self_signed, self_signed_directory
    from .tlsconfig import fingerprint

    names = default_names(host)
    made_cert, made_key = ensure_self_signed(self_signed_directory(data_dir), names)
    typer.echo(f"anychat: self-signed TLS certificate {made_cert} for {', '.join(names)}")
    typer.echo(f"anychat: its SHA-256 fingerprint: {fingerprint(made_cert)}")
    typer.echo(f"anychat: clients trust it with: anychat chat --tls-ca {made_cert}")
    return str(made_cert), str(made_key)


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
    tls: TlsOption = False,
    tls_ca: TlsCaOption = None,
    tls_insecure: TlsInsecureOption = False,
    show: Annotated[
        bool,
        typer.Option(
            "--show",
            help="With piped input: also print the messages received (replayed history "
            "included) and command results to stdout. By default only errors are printed.",
        ),
    ] = False,
    plain: Annotated[
        bool,
        typer.Option(
            "--plain",
            help="Line mode: one stream of lines above a prompt, instead of the full-screen "
            "window per room (the default on a terminal that is not dumb).",
        ),
    ] = False,
) -> None:
    """Chat in your terminal (or send each line of a piped stdin, then exit)."""
    from .terminal import run_chat

    if login and not nick:
        raise _fail("--login needs --nick (the account to log in to)")
    context = _client_tls(tls, tls_ca, tls_insecure)
    raise typer.Exit(
        run_chat(
            host=host,
            port=port,
            nick=nick,
            room=room,
            login=login,
            show=show,
            plain=plain,
            tls=context,
        )
    )


@app.command()
def send(
    text: Annotated[str, typer.Argument(help="The message.")],
    host: HostOption = "127.0.0.1",
    port: PortOption = DEFAULT_PORT,
    room: Annotated[
        str, typer.Option("--room", "--to", help="Room or nick to send to.")
    ] = "#general",
    nick: Annotated[str | None, typer.Option(envvar="ANYCHAT_NICK", help="Your nick.")] = None,
    tls: TlsOption = False,
    tls_ca: TlsCaOption = None,
    tls_insecure: TlsInsecureOption = False,
    login: Annotated[
        bool,
        typer.Option(
            "--login",
            help="Log in to the account NICK: with the token saved by the last login, else the "
            "password in ANYCHAT_PASSWORD (setting it implies --login).",
        ),
    ] = False,
) -> None:
    """Send one message and exit (for scripts and cron); says on stderr who sent it.

    Logs in as ``anychat chat`` does: a token saved by an earlier login of NICK is used if there
    is one, else with --login (or ANYCHAT_PASSWORD set) the password from ANYCHAT_PASSWORD.
    """
    from contextlib import AsyncExitStack

    from . import model
    from .errors import NickRegistered
    from .terminal.login import Credentials, password_from_environment, wants_login

    if login and not nick:
        raise _fail("--login needs --nick (the account to log in to)")
    context = _client_tls(tls, tls_ca, tls_insecure)
    credentials = Credentials(
        host, port, login=wants_login(login), ask=password_from_environment, tls=context
    )

    async def go() -> tuple[int, str]:
        async with AsyncExitStack() as stack:
            client = await credentials.open(stack, nick, may_ask=True)
            who = credentials.identity(client)
            if model.is_room(room):
                await client.join(room)
            ack = await client.send(room, text)
            return ack.id, who

    try:
        msg_id, who = anyio.run(go)
    except NickRegistered:
        raise _fail(
            f"nick {nick} is registered: add --login (password in ANYCHAT_PASSWORD) to log in"
        ) from None
    except ChatError as exc:
        raise _fail(str(exc)) from None
    typer.echo(f"anychat: sent as {who}", err=True)
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
