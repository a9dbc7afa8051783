"""anychat: a real-time chat server and client library on AnyIO (asyncio or trio).

Three ways in::

    async with anychat.serve(port=0) as server: ...          # embed a server
    async with anychat.connect(host, port, nick="ada") as c:  # talk to one
    anychat.run_server(port=3000)                            # block and serve (scripts)
"""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

from ._version import __version__

# The public names resolve on first use (PEP 562), so ``import anychat.codecs.jsonl`` (or the
# model, or the broker) loads no client, server or I/O library: a blocking script or another
# event loop can use the sans-IO layers alone.
_EXPORTS: dict[str, str] = {
    "Client": ".client",
    "connect": ".client",
    "ServerConfig": ".config",
    "ChatError": ".errors",
    "ConfigError": ".errors",
    "ConnectError": ".errors",
    "ConnectionClosed": ".errors",
    "InvalidNick": ".errors",
    "InvalidRoom": ".errors",
    "LoginFailed": ".errors",
    "LoginRequired": ".errors",
    "NickInUse": ".errors",
    "NickRegistered": ".errors",
    "NoSuchNick": ".errors",
    "NoSuchRoom": ".errors",
    "NotMember": ".errors",
    "ProtocolError": ".errors",
    "Refused": ".errors",
    "StoreError": ".errors",
    "StoreUnavailable": ".errors",
    "TokenExpired": ".errors",
    "TokenInvalid": ".errors",
    "WeakPassword": ".errors",
    "Ack": ".model",
    "Bye": ".model",
    "Error": ".model",
    "ErrorCode": ".model",
    "Event": ".model",
    "HistoryPage": ".model",
    "Joined": ".model",
    "Kind": ".model",
    "LoggedIn": ".model",
    "Members": ".model",
    "Message": ".model",
    "NickChanged": ".model",
    "Parted": ".model",
    "Quitted": ".model",
    "RoomInfo": ".model",
    "RoomList": ".model",
    "Welcome": ".model",
    "run_server": ".runner",
    "Server": ".server",
    "serve": ".server",
}

if TYPE_CHECKING:
    from .client import Client as Client
    from .client import connect as connect
    from .config import ServerConfig as ServerConfig
    from .errors import ChatError as ChatError
    from .errors import ConfigError as ConfigError
    from .errors import ConnectError as ConnectError
    from .errors import ConnectionClosed as ConnectionClosed
    from .errors import InvalidNick as InvalidNick
    from .errors import InvalidRoom as InvalidRoom
    from .errors import LoginFailed as LoginFailed
    from .errors import LoginRequired as LoginRequired
    from .errors import NickInUse as NickInUse
    from .errors import NickRegistered as NickRegistered
    from .errors import NoSuchNick as NoSuchNick
    from .errors import NoSuchRoom as NoSuchRoom
    from .errors import NotMember as NotMember
    from .errors import ProtocolError as ProtocolError
    from .errors import Refused as Refused
    from .errors import StoreError as StoreError
    from .errors import StoreUnavailable as StoreUnavailable
    from .errors import TokenExpired as TokenExpired
    from .errors import TokenInvalid as TokenInvalid
    from .errors import WeakPassword as WeakPassword
    from .model import Ack as Ack
    from .model import Bye as Bye
    from .model import Error as Error
    from .model import ErrorCode as ErrorCode
    from .model import Event as Event
    from .model import HistoryPage as HistoryPage
    from .model import Joined as Joined
    from .model import Kind as Kind
    from .model import LoggedIn as LoggedIn
    from .model import Members as Members
    from .model import Message as Message
    from .model import NickChanged as NickChanged
    from .model import Parted as Parted
    from .model import Quitted as Quitted
    from .model import RoomInfo as RoomInfo
    from .model import RoomList as RoomList
    from .model import Welcome as Welcome
    from .runner import run_server as run_server
    from .server import Server as Server
    from .server import serve as serve


def __getattr__(name: str) -> Any:
    module = _EXPORTS.get(name)
    if module is None:
        raise AttributeError(f"module 'anychat' has no attribute {name!r}")
    from importlib import import_module

    value = getattr(import_module(module, __name__), name)
    globals()[name] = value  # later look-ups skip this function
    return value


def __dir__() -> list[str]:
    return sorted(__all__)


__all__ = (
    "Ack",
    "Bye",
    "ChatError",
    "Client",
    "ConfigError",
    "ConnectError",
    "ConnectionClosed",
    "Error",
    "ErrorCode",
    "Event",
    "HistoryPage",
    "InvalidNick",
    "InvalidRoom",
    "Joined",
    "Kind",
    "LoggedIn",
    "LoginFailed",
    "LoginRequired",
    "Members",
    "Message",
    "NickChanged",
    "NickInUse",
    "NickRegistered",
    "NoSuchNick",
    "NoSuchRoom",
    "NotMember",
    "Parted",
    "ProtocolError",
    "Quitted",
    "Refused",
    "RoomInfo",
    "RoomList",
    "Server",
    "ServerConfig",
    "StoreError",
    "StoreUnavailable",
    "TokenExpired",
    "TokenInvalid",
    "WeakPassword",
    "Welcome",
    "__version__",
    "connect",
    "run_server",
    "serve",
)
