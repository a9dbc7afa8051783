"""Which web pages may open a WebSocket to this server (the check against cross-site hijacking).

A browser sends an ``Origin`` header with every WebSocket handshake, and a page on another site
can make a visitor's browser connect to any server it can reach, including one on their loopback
or intranet. So the handshake is refused (403) unless the origin is the server's own, meaning
the page was served by the same host and port the request is addressed to (its ``Host`` header),
or is on the configured list (``--allowed-origin``; ``*`` admits every origin, which is only
wise for a server with no private rooms or accounts).

A handshake without ``Origin`` is allowed: it does not come from a web page (browsers always
send one), so no visitor's browser is being borrowed, and a non-browser client could send any
header it liked anyway. ``Origin: null`` (sandboxed frames, ``file:`` pages) is refused unless
``null`` is listed explicitly.
"""

from __future__ import annotations

from collections.abc import Iterable
from typing import Final
from urllib.parse import urlsplit

__all__ = ["OriginPolicy", "normalize_origin"]

_DEFAULT_PORTS: Final = {"http": 80, "https": 443, "ws": 80, "wss": 443}


def _host_port(netloc: str, scheme: str) -> tuple[str, int] | None:
    try:
        parts = urlsplit(f"{scheme}://{netloc}")
        port = parts.port
    except ValueError:
        return None
    if not parts.hostname or parts.username is not None or parts.path:
        return None
    return parts.hostname.lower(), port if port is not None else _DEFAULT_PORTS[scheme]


def normalize_origin(origin: str) -> str | None:
    """``scheme://host:port`` in lower case with the port spelled out, or None if malformed."""
    text = origin.strip()
    if text.lower() == "null":
        return "null"
    scheme, sep, rest = text.partition("://")
    scheme = scheme.lower()
    if not sep or scheme not in ("http", "https"):
        return None
    hp = _host_port(rest.rstrip("/"), scheme)
    if hp is None:
        return None
    host, port = hp
    if ":" in host:
        host = f"[{host}]"
    return f"{scheme}://{host}:{port}"


class OriginPolicy:
    """The same-origin rule plus an allow-list; decides one handshake at a time."""

    __slots__ = ("_allowed", "_any")

    def __init__(self, allowed: Iterable[str] = ()) -> None:
        allowed = list(allowed)
        self._any = "*" in allowed
        normalized = (normalize_origin(origin) for origin in allowed if origin != "*")
        self._allowed = frozenset(origin for origin in normalized if origin is not None)

    def allows(self, origin: bytes | None, host: bytes | None) -> bool:
        if origin is None:
            return True
        try:
            text = origin.decode("ascii")
        except UnicodeDecodeError:
            return False
        normalized = normalize_origin(text)
        if normalized is None:
            return False
        if self._any or normalized in self._allowed:
            return True
        if normalized == "null" or host is None:
            return False
        scheme = normalized.split("://", 1)[0]
        try:
            own = _host_port(host.decode("ascii"), scheme)
        except UnicodeDecodeError:
            return False
        if own is None:
            return False
        own_host, own_port = own
        if ":" in own_host:
            own_host = f"[{own_host}]"
        return normalized == f"{scheme}://{own_host}:{own_port}"
