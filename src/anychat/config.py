"""Server settings: one frozen dataclass, the only place defaults live.

The CLI builds a :class:`ServerConfig` from flags and environment variables; the Python API takes
the same fields as keyword arguments. Every limit is named with its unit.
"""

from __future__ import annotations

import dataclasses
import os
from dataclasses import dataclass, field
from pathlib import Path
from typing import TYPE_CHECKING, Any, Final

from .codecs import DEFAULT_MAX_LINE_BYTES
from .errors import ConfigError
from .model import valid_room

if TYPE_CHECKING:
    from .listeners import ListenerSpec

__all__ = [
    "DEFAULT_PORT",
    "MIN_SECRET_LENGTH",
    "ServerConfig",
    "load_env_file",
]

DEFAULT_PORT = 3000
MIN_SECRET_LENGTH: Final = 32
#: Secrets that appear in examples and tutorials: production refuses them.
_KNOWN_SECRETS: Final = frozenset(
    {
        "secret",
        "changeme",
        "change-me",
        "change_me",
        "development",
        "dev",
        "test",
        "password",
        "your-secret-key",
        "anychat",
    }
)


def load_env_file(path: str | os.PathLike[str] = ".env") -> bool:
    """Load ``KEY=value`` lines from a ``.env`` file into the environment without overriding
    variables already set, which gives the order: CLI flag > environment > .env > default.
    Returns whether a file was read."""
    if not Path(path).is_file():
        return False
    from dotenv import load_dotenv

    return load_dotenv(path, override=False)


@dataclass(frozen=True, slots=True, kw_only=True)
class ServerConfig:
    #: Loopback by default: exposing a chat server to a network is a decision, not an accident.
    host: str = "127.0.0.1"
    #: 0 lets the kernel choose (tests, embedding); the bound port is reported at start.
    port: int = DEFAULT_PORT
    #: Shown to clients in the welcome.
    server_name: str = "anychat"
    #: Rooms that text and JSON clients join on registering.
    default_rooms: tuple[str, ...] = ("#general",)
    #: Longest accepted input line; longer lines are dropped with an error, not a disconnect.
    max_line_bytes: int = DEFAULT_MAX_LINE_BYTES
    #: A client whose unsent output exceeds this is disconnected ("send queue exceeded").
    max_queue_bytes: int = 1 << 20
    max_connections: int = 10_000
    #: Connections one address may hold at once (0 = no limit)...
    max_connections_per_address: int = 20
    #: ...and open per second on average, in bursts of up to this many (0 = no limit).
    connection_rate_per_address: float = 5.0
    connection_burst_per_address: int = 20
    #: Addresses the per-address limits leave alone: this machine (and a local proxy).
    connection_limit_exempt: tuple[str, ...] = ("127.0.0.1", "::1", "::ffff:127.0.0.1")
    #: A connection that has never sent a byte is closed after this long (a flood of silent
    #: sockets must not pile up as guests; a person on nc who has typed anything stays).
    silent_timeout_seconds: float = 600.0
    max_rooms_per_session: int = 50
    #: In a room with this many members, guests join, leave and change nicks unannounced (a
    #: storm of guest connections must not cost every member a line per join); 0 = always
    #: announce. Accounts are always announced.
    quiet_room_size: int = 200
    #: How long a new connection may stay silent before it is treated as a person on nc/telnet.
    sniff_seconds: float = 0.25
    #: Commands per second a client may send on average (0 = unlimited); past the burst its
    #: input is read more slowly (TCP pushes back on it), so floods lose nothing and hurt no one.
    flood_rate: float = 50.0
    flood_burst: int = 200
    #: How long shutdown waits for goodbye messages to drain.
    shutdown_grace_seconds: float = 1.0
    #: A dedicated IRC listener (no sniffing) besides the main port; ``None`` = none, 0 = any.
    irc_port: int | None = None
    #: A dedicated HTTP listener (the web page and its WebSocket, no sniffing) besides the
    #: main port, which serves them too; ``None`` = none, 0 = any.
    http_port: int | None = None
    #: Web origins (``https://chat.example.com``) besides the server's own whose pages may open
    #: a WebSocket; ``*`` admits any (only for a server with nothing private on it).
    allowed_origins: tuple[str, ...] = ()
    #: Clients that can be pinged (IRC) get a PING after this long without input...
    idle_ping_seconds: float = 120.0
    #: ...and are dropped if still silent this long after it.
    idle_timeout_seconds: float = 60.0
    #: A connection that has not registered (chosen a nick) by then is dropped.
    registration_timeout_seconds: float = 60.0
    #: A reader that has heard nothing for this long hands its connection to the event loop
    #: (on trio, to one task watching all such sockets) and ends, so an idle connection holds
    #: no task of its own; 0 = never.
    park_after_seconds: float = 10.0
    #: Where accounts and history live: ``memory://`` or ``sqlite:///path/to/file.db``. The
    #: library default writes no files; ``anychat serve`` uses its data directory
    #: (:mod:`anychat.datadir`).
    database_url: str = "memory://"
    #: Several nodes as one chat: ``redis://host:port/db`` of the bus they share (needs
    #: ``anychat[cluster]``); ``None`` = a single node (no bus work at all).
    cluster_url: str | None = None
    #: A node that stops renewing its lease this long is dead: the others announce its users
    #: as quit and their nicks are free again.
    cluster_lease_seconds: float = 10.0
    #: ``development`` or ``production``; production insists on a real ``secret``.
    environment: str = "development"
    #: Signs login tokens (HS256). ``None`` in development: a random one per run (with a warning).
    secret: str | None = field(default=None, repr=False)
    #: How long a login token works.
    token_ttl_seconds: float = 7 * 24 * 3600.0
    #: Messages replayed to a client joining a room (0 = none).
    history_length: int = 50
    #: Replay that history to IRC clients without the ``batch`` and ``server-time``
    #: capabilities too; off by default, since such clients cannot tell replayed lines from
    #: live chat (bots would answer old messages again).
    irc_history_replay: bool = False
    #: Refuse guests: every connection must log in.
    require_login: bool = False
    #: First delay after a failed login; it doubles per failure up to the cap.
    login_delay_seconds: float = 0.25
    login_delay_cap_seconds: float = 30.0
    #: TLS certificate chain (leaf first) and its key, PEM files. With both, every port also
    #: accepts TLS (sniffed from the first bytes); without, the server is plaintext only.
    tls_cert: str | None = None
    tls_key: str | None = None
    #: Refuse plaintext connections (each is told, in its own protocol, to reconnect with TLS).
    tls_required: bool = False
    #: A port speaking TLS from the first byte (e.g. 6697 for IRC clients); ``None`` = none.
    tls_port: int | None = None
    #: A TLS handshake not done by then is dropped (a stalled or garbage one costs no more).
    tls_handshake_seconds: float = 10.0
    #: Production refuses passwords and tokens sent in plaintext from a non-loopback address;
    #: this allows them (e.g. behind a TLS-terminating proxy on another host).
    allow_plaintext_login: bool = False
    #: Password checks against one account start at most this often, whoever asks.
    login_interval_seconds: float = 1.0

    def __post_init__(self) -> None:
        if not 0 <= self.port <= 65535:
            raise ConfigError(f"port must be between 0 and 65535, not {self.port}")
        if self.irc_port is not None and not 0 <= self.irc_port <= 65535:
            raise ConfigError(f"irc_port must be between 0 and 65535, not {self.irc_port}")
        if self.http_port is not None and not 0 <= self.http_port <= 65535:
            raise ConfigError(f"http_port must be between 0 and 65535, not {self.http_port}")
        if self.allowed_origins:
            self._check_origins()
        for name in (
            "idle_ping_seconds",
            "idle_timeout_seconds",
            "registration_timeout_seconds",
            "silent_timeout_seconds",
        ):
            if getattr(self, name) <= 0:
                raise ConfigError(f"{name} must be positive, not {getattr(self, name)}")
        if self.park_after_seconds < 0:
            raise ConfigError(
                f"park_after_seconds must be 0 or more, not {self.park_after_seconds}"
            )
        for name in ("max_line_bytes", "max_queue_bytes", "max_connections", "flood_burst"):
            if getattr(self, name) <= 0:
                raise ConfigError(f"{name} must be positive, not {getattr(self, name)}")
        if self.max_queue_bytes < self.max_line_bytes:
            raise ConfigError("max_queue_bytes must be at least max_line_bytes")
        if (
            self.max_connections_per_address < 0
            or self.connection_rate_per_address < 0
            or self.connection_burst_per_address < 1
        ):
            raise ConfigError("per-address connection limits may not be negative")
        if self.quiet_room_size < 0:
            raise ConfigError("quiet_room_size must be 0 (always announce) or positive")
        if self.flood_rate < 0:
            raise ConfigError("flood_rate must be 0 (unlimited) or positive")
        bad = [room for room in self.default_rooms if not valid_room(room)]
        if bad:
            raise ConfigError(f"invalid default room name(s): {', '.join(bad)}")
        if self.environment not in ("development", "production"):
            raise ConfigError(
                f"ANYCHAT_ENV must be development or production, not {self.environment!r}"
            )
        if self.cluster_url is not None and not self.cluster_url.startswith(
            ("redis://", "rediss://", "unix://")
        ):
            raise ConfigError(f"cluster_url must be a redis:// URL, not {self.cluster_url!r}")
        if self.cluster_lease_seconds <= 0:
            raise ConfigError("cluster_lease_seconds must be positive")
        if self.history_length < 0 or self.token_ttl_seconds <= 0:
            raise ConfigError("history_length must be >= 0 and token_ttl_seconds positive")
        if (
            self.login_delay_seconds < 0
            or self.login_delay_cap_seconds < 0
            or self.login_interval_seconds < 0
        ):
            raise ConfigError("login delays may not be negative")
        self._check_tls()
        from .store import parse_url

        parse_url(self.database_url)
        if self.environment == "production":
            problem = self.secret_problem()
            if problem:
                raise ConfigError(
                    f"ANYCHAT_SECRET (or JWT_SECRET) {problem}: production needs a random secret "
                    f"of at least {MIN_SECRET_LENGTH} characters, e.g. from "
                    "`python -c 'import secrets; print(secrets.token_urlsafe(48))'`"
                )

    def _check_tls(self) -> None:
        if bool(self.tls_cert) != bool(self.tls_key):
            raise ConfigError("a TLS certificate needs its key: give both --tls-cert and --tls-key")
        if not self.tls_cert and (self.tls_required or self.tls_port is not None):
            flag = "--tls-required" if self.tls_required else "--tls-port"
            raise ConfigError(
                f"{flag} needs a certificate: --tls-cert and --tls-key (or --tls-self-signed)"
            )
        if self.tls_port is not None and not 0 <= self.tls_port <= 65535:
            raise ConfigError(f"tls_port must be between 0 and 65535, not {self.tls_port}")
        if self.tls_handshake_seconds <= 0:
            raise ConfigError("tls_handshake_seconds must be positive")

    @property
    def plaintext_login_allowed(self) -> bool:
        """May a password or token arrive unencrypted from a non-loopback address?"""
        return self.environment != "production" or self.allow_plaintext_login

    def _check_origins(self) -> None:
        from .codecs.web.origin import normalize_origin

        bad = [o for o in self.allowed_origins if o != "*" and normalize_origin(o) is None]
        if bad:
            raise ConfigError(
                f"allowed origin(s) {', '.join(map(repr, bad))} must look like "
                "https://host[:port] (or be * or null)"
            )

    def listener_specs(self) -> list[ListenerSpec]:
        """Every port this configuration listens on, the main (sniffing) one first."""
        from .codecs.sniff import Protocol
        from .listeners import ListenerSpec

        specs = [ListenerSpec(name="main", host=self.host, port=self.port)]
        if self.irc_port is not None:
            specs.append(
                ListenerSpec(name="irc", host=self.host, port=self.irc_port, protocol=Protocol.IRC)
            )
        if self.tls_port is not None:
            specs.append(ListenerSpec(name="tls", host=self.host, port=self.tls_port, tls=True))
        if self.http_port is not None:
            specs.append(
                ListenerSpec(
                    name="http", host=self.host, port=self.http_port, protocol=Protocol.HTTP
                )
            )
        return specs

    def secret_problem(self) -> str | None:
        """What is wrong with the configured secret for production use, if anything."""
        if not self.secret:
            return "is not set"
        if self.secret.lower() in _KNOWN_SECRETS:
            return "is a well-known default"
        if len(self.secret) < MIN_SECRET_LENGTH:
            return f"is too short ({len(self.secret)} characters)"
        return None

    def merged(self, **overrides: Any) -> ServerConfig:
        """A copy with every override that is not ``None`` applied."""
        fields = {f.name for f in dataclasses.fields(self)}
        unknown = set(overrides) - fields
        if unknown:
            raise ConfigError(f"unknown setting(s): {', '.join(sorted(unknown))}")
        return dataclasses.replace(self, **{k: v for k, v in overrides.items() if v is not None})
