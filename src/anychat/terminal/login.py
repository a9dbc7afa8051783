"""How the terminal client logs in: a saved token first, then a password asked for.

A token from an earlier login (kept by :mod:`anychat.terminal.tokenfile`, owner-only) is tried
first, so a returning user is not asked for anything. A token the server no longer accepts (expired, or signed
with another secret) is forgotten; with ``--login`` the password is then asked for (without echo
on a terminal, from ``ANYCHAT_PASSWORD`` in pipe mode, never from the command line where ``ps``
would show it). Every token the server hands out is saved again, which keeps it fresh.

Only the first connection may ask: once the prompt is up, a reconnect that cannot log in with the
token falls back to a guest and says how to log in again.
"""

from __future__ import annotations

import logging
import os
from collections.abc import Awaitable, Callable
from contextlib import AsyncExitStack
from typing import Final

from ..client import Client, connect
from ..errors import ChatError, LoginFailed
from . import tokenfile

__all__ = [
    "PASSWORD_VARIABLE",
    "Credentials",
    "LoginCancelled",
    "password_from_environment",
    "wants_login",
]

logger = logging.getLogger(__name__)

#: Where pipe mode reads the password (a command-line argument would show in ``ps``).
PASSWORD_VARIABLE: Final = "ANYCHAT_PASSWORD"

#: Asks the user for the password of a nick.
PasswordAsker = Callable[[str], Awaitable[str]]


class LoginCancelled(ChatError):
    """No password was given (end of input at the password prompt)."""


def wants_login(login: bool) -> bool:
    """``--login`` given, or a password waiting in ``$ANYCHAT_PASSWORD`` (which asks for it)."""
    return login or bool(os.environ.get(PASSWORD_VARIABLE))


async def password_from_environment(nick: str) -> str:
    """Pipe mode's password: ``$ANYCHAT_PASSWORD``, or a clear error if it is not set."""
    password = os.environ.get(PASSWORD_VARIABLE)
    if not password:
        raise LoginCancelled(f"set {PASSWORD_VARIABLE} to log in as {nick} without a terminal")
    return password


class Credentials:
    """The login of one terminal session: which token to use, and how to get a password."""

    def __init__(
        self, host: str, port: int, *, login: bool = False, ask: PasswordAsker | None = None
    ) -> None:
        self.host = host
        self.port = port
        #: Ask for a password when no token works (``--login``).
        self.login = login
        self._ask = ask
        #: The token of the account we are logged in to, once we are.
        self.token: str | None = None
        #: How the last :meth:`open` logged in: "saved login token", "password" or "" (not).
        self.method = ""

    async def open(self, stack: AsyncExitStack, nick: str | None, *, may_ask: bool) -> Client:
        """Connect (registered, not yet in any room) with the best credentials we have.

        ``may_ask``: the password may be asked for (only before the chat prompt is up).

        Raises:
            LoginFailed: The password was wrong (a refused token is not an error: it is dropped).
            ChatError: As :func:`anychat.connect`, or no password could be had.
        """
        token = self.token or (self.saved(nick) if nick else None)
        if token is not None and nick is not None:
            try:
                client = await stack.enter_async_context(
                    connect(
                        self.host, self.port, nick=nick, token=token, autojoin=False, history=True
                    )
                )
            except LoginFailed as exc:
                logger.info("saved login for %s refused: %s", nick, exc)
                self.forget(nick)
            else:
                self.keep(client)
                self.method = "saved login token"
                return client
        if self.login and may_ask and nick is not None and self._ask is not None:
            password = await self._ask(nick)
            client = await stack.enter_async_context(
                connect(
                    self.host, self.port, nick=nick, password=password, autojoin=False, history=True
                )
            )
            self.keep(client)
            self.method = "password"
            return client
        self.method = ""
        return await stack.enter_async_context(
            connect(self.host, self.port, nick=nick, autojoin=False, history=True)
        )

    def identity(self, client: Client) -> str:
        """Who ``client`` is, for a line on stderr: ``carol (logged in with the password)``."""
        if self.method:
            return f"{client.nick} (logged in with the {self.method})"
        return f"{client.nick} (guest, not logged in)"

    def saved(self, nick: str) -> str | None:
        return tokenfile.load_token(self.host, self.port, nick)

    def keep(self, client: Client, token: str | None = None) -> None:
        """Remember (and save) the token the server just gave ``client``."""
        token = token or client.token
        if token is None:
            return
        self.token = token
        try:
            tokenfile.save_token(self.host, self.port, client.nick, token)
        except OSError as exc:  # a read-only home must not stop the chat
            logger.warning("cannot save the login token: %s", exc)

    def forget(self, nick: str) -> None:
        self.token = None
        try:
            tokenfile.forget_token(self.host, self.port, nick)
        except OSError as exc:
            logger.warning("cannot forget the login token: %s", exc)
