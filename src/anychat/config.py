"""Server settings: one frozen dataclass, the only place defaults live.

The CLI builds a :class:`ServerConfig` from flags and environment variables; the Python API takes
the same fields as keyword arguments. Every limit is named with its unit.
"""

from __future__ import annotations

import dataclasses
from dataclasses import dataclass
from typing import Any

from .codecs import DEFAULT_MAX_LINE_BYTES
from .errors import ConfigError
from .model import valid_room

__all__ = ["DEFAULT_PORT", "ServerConfig"]

DEFAULT_PORT = 3000


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
    max_rooms_per_session: int = 50
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
    #: Clients that can be pinged (IRC) get a PING after this long without input...
    idle_ping_seconds: float = 120.0
    #: ...and are dropped if still silent this long after it.
    idle_timeout_seconds: float = 60.0
    #: A connection that has not registered (chosen a nick) by then is dropped.
    registration_timeout_seconds: float = 60.0

    def __post_init__(self) -> None:
        if not 0 <= self.port <= 65535:
            raise ConfigError(f"port must be between 0 and 65535, not {self.port}")
        if self.irc_port is not None and not 0 <= self.irc_port <= 65535:
            raise ConfigError(f"irc_port must be between 0 and 65535, not {self.irc_port}")
        for name in ("idle_ping_seconds", "idle_timeout_seconds", "registration_timeout_seconds"):
            if getattr(self, name) <= 0:
                raise ConfigError(f"{name} must be positive, not {getattr(self, name)}")
        for name in ("max_line_bytes", "max_queue_bytes", "max_connections", "flood_burst"):
            if getattr(self, name) <= 0:
                raise ConfigError(f"{name} must be positive, not {getattr(self, name)}")
        if self.max_queue_bytes < self.max_line_bytes:
            raise ConfigError("max_queue_bytes must be at least max_line_bytes")
        if self.flood_rate < 0:
            raise ConfigError("flood_rate must be 0 (unlimited) or positive")
        bad = [room for room in self.default_rooms if not valid_room(room)]
        if bad:
            raise ConfigError(f"invalid default room name(s): {', '.join(bad)}")

    def merged(self, **overrides: Any) -> ServerConfig:
        """A copy with every override that is not ``None`` applied."""
        fields = {f.name for f in dataclasses.fields(self)}
        unknown = set(overrides) - fields
        if unknown:
            raise ConfigError(f"unknown setting(s): {', '.join(sorted(unknown))}")
        return dataclasses.replace(self, **{k: v for k, v in overrides.items() if v is not None})
