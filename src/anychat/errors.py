"""The exception hierarchy: one base, :class:`ChatError`, to catch everything deliberate.

Refusals travel over the wire as :class:`~anychat.model.Error` events; only the client turns them
into exceptions (:func:`error_for`), so the server never raises because a peer asked for something
it may not have.
"""

from __future__ import annotations

from typing import Final

from .model import ErrorCode, Ref

__all__ = [
    "ChatError",
    "ConfigError",
    "ConnectError",
    "ConnectionClosed",
    "InvalidNick",
    "InvalidRoom",
    "LoginFailed",
    "LoginRequired",
    "NickInUse",
    "NickRegistered",
    "NoSuchNick",
    "NoSuchRoom",
    "NotMember",
    "ProtocolError",
    "Refused",
    "StoreError",
    "StoreUnavailable",
    "TlsRequired",
    "TokenExpired",
    "TokenInvalid",
    "WeakPassword",
    "error_for",
]


class ChatError(Exception):
    """Base class of every error anychat raises on purpose."""


class ConfigError(ChatError, ValueError):
    """A setting is missing or has a value that cannot work."""


class StoreError(ChatError):
    """The message or account store failed (disk full, file unreadable, database corrupt...)."""


class ConnectError(ChatError, OSError):
    """The client could not reach the server."""

    def __init__(self, host: str, port: int, reason: str) -> None:
        super().__init__(f"cannot connect to {host}:{port}: {reason}")
        self.host = host
        self.port = port
        self.reason = reason


class ConnectionClosed(ChatError):
    """The connection ended (the server said goodbye, or the socket broke)."""

    def __init__(self, reason: str, code: ErrorCode | None = None) -> None:
        super().__init__(reason)
        self.reason = reason
        self.code = code


class ProtocolError(ChatError):
    """The peer sent something that does not follow the protocol."""


class Refused(ChatError):
    """The server refused a request; ``code`` is the stable machine code."""

    code: ErrorCode | None = None

    def __init__(self, text: str, code: ErrorCode | None = None, ref: Ref = None) -> None:
        super().__init__(text)
        self.text = text
        if code is not None:
            self.code = code
        self.ref = ref


class NickInUse(Refused):
    code = ErrorCode.NICK_IN_USE


class InvalidNick(Refused):
    code = ErrorCode.INVALID_NICK


class InvalidRoom(Refused):
    code = ErrorCode.INVALID_ROOM


class NoSuchNick(Refused):
    code = ErrorCode.NO_SUCH_NICK


class NoSuchRoom(Refused):
    code = ErrorCode.NO_SUCH_ROOM


class NotMember(Refused):
    code = ErrorCode.NOT_MEMBER


class NickRegistered(Refused):
    """The nick belongs to an account: log in (``password=``) or pick another nick."""

    code = ErrorCode.NICK_REGISTERED


class LoginRequired(Refused):
    code = ErrorCode.LOGIN_REQUIRED


class LoginFailed(Refused):
    """Wrong nick or password; the server does not say which."""

    code = ErrorCode.LOGIN_FAILED


class TokenExpired(LoginFailed):
    code = ErrorCode.TOKEN_EXPIRED


class TokenInvalid(LoginFailed):
    """The token was tampered with, signed by another server, or is not a token at all."""

    code = ErrorCode.TOKEN_INVALID


class WeakPassword(Refused):
    code = ErrorCode.WEAK_PASSWORD


class StoreUnavailable(Refused):
    """The server relayed the message live but could not store it (its disk failed)."""

    code = ErrorCode.STORE_UNAVAILABLE


class TlsRequired(Refused):
    """The server refused plaintext: reconnect with TLS (``connect(..., tls=True)``)."""

    code = ErrorCode.TLS_REQUIRED


_BY_CODE: Final[dict[ErrorCode, type[Refused]]] = {
    cls.code: cls
    for cls in (
        NickInUse,
        InvalidNick,
        InvalidRoom,
        NoSuchNick,
        NoSuchRoom,
        NotMember,
        NickRegistered,
        LoginRequired,
        LoginFailed,
        TokenExpired,
        TokenInvalid,
        WeakPassword,
        StoreUnavailable,
        TlsRequired,
    )
    if cls.code is not None
}


def error_for(code: ErrorCode, text: str, ref: Ref = None) -> Refused:
    """The most specific :class:`Refused` subclass for a server error code."""
    return _BY_CODE.get(code, Refused)(text, code, ref)
