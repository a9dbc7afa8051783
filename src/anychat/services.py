"""The slow work the broker asks for: password and token checks, accounts, history reads.

The broker is synchronous and knows nothing of passwords or disks. When a command needs a
password hash (Argon2 in a worker thread), a token check or a store read, the broker returns a
request effect (:mod:`anychat.effects`); the hub awaits :meth:`Services.fulfil` with it in the
connection's own reader task (so a connection's commands still run in order, and only that
connection waits) and hands the outcome back to :meth:`Broker.resume`, which decides the rest.

The services know the store, the token issuer, the login throttle and the committer, and
nothing of connections, codecs or chat rules.
"""

from __future__ import annotations

import logging
import secrets
import time
from typing import TYPE_CHECKING, Any, Final

import anyio

from . import model as m
from .auth import (
    AccountGate,
    LoginThrottle,
    TokenError,
    TokenIssuer,
    hash_password_async,
    password_problem,
    verify_password_async,
)
from .effects import (
    Authenticate,
    CreateAccount,
    LoginGrant,
    Outcome,
    ReadConversations,
    ReadHistory,
    Request,
    WarmRooms,
)
from .errors import StoreError
from .login_queue import LoginQueue
from .store import Account, Store

if TYPE_CHECKING:
    from .committer import Committer
    from .config import ServerConfig

__all__ = ["Services"]

logger = logging.getLogger("anychat.server")

_LOGIN_FAILED: Final = "login failed: wrong nick or password"


def _unavailable(what: str, ref: m.Ref) -> m.Error:
    return m.Error(
        code=m.ErrorCode.STORE_UNAVAILABLE,
        text=f"cannot {what} right now; try again later",
        ref=ref,
    )


class Services:
    """Executes request effects against the store and auth; owned by the hub."""

    def __init__(self, config: ServerConfig, store: Store, committer: Committer[Any]) -> None:
        self.store = store
        self.committer = committer
        self.history_length = config.history_length
        secret = config.secret
        if not secret:
            secret = secrets.token_urlsafe(48)
            logger.warning(
                "ANYCHAT_SECRET is not set: signing login tokens with a random secret, so "
                "tokens will not survive a restart (set it; production requires it)"
            )
        self.tokens = TokenIssuer(secret, ttl_seconds=config.token_ttl_seconds)
        self.throttle = LoginThrottle(
            base_seconds=config.login_delay_seconds, cap_seconds=config.login_delay_cap_seconds
        )
        self.login_queue = LoginQueue(
            AccountGate(interval_seconds=config.login_interval_seconds), self.throttle
        )

    async def fulfil(self, request: Request[Any]) -> Outcome:
        """Do the slow part of ``request``; never raises for a client's mistake."""
        match request:
            case Authenticate():
                return await self._authenticate(request)
            case CreateAccount():
                return await self._create_account(request)
            case ReadHistory():
                return await self._read_history(request)
            case ReadConversations():
                return await self._read_conversations(request)
            case WarmRooms():
                return await self._warm(request)
            case _:  # the bus's requests are the bus's to fulfil
                raise TypeError(f"not a service request: {type(request).__name__}")

    # -------------------------------------------------------------- accounts

    def _grant(self, nick: str) -> LoginGrant:
        token, expires = self.tokens.issue(nick)
        return LoginGrant(nick=nick, token=token, expires=expires)

    async def _authenticate(self, req: Authenticate[Any]) -> LoginGrant | m.Error:
        """The account's grant if the password or token is right; else why not.

        Guessing is slowed twice: an address with failures waits longer each time (its own
        fault, whatever account it tries), and each account gets at most one password check per
        ``login_interval_seconds`` however many connections or addresses ask (so parallel
        guessing gains nothing). A valid token is never delayed: it proves what a password would.
        """
        nick, address, ref = req.nick, req.address, req.ref
        host = address.rpartition(":")[0] or address
        if req.token is not None:
            try:
                token_nick = self.tokens.check(req.token)
            except TokenError as exc:
                self.throttle.failed(host)
                return m.Error(code=exc.code, text=exc.text, ref=ref)
            if nick is not None and m.casefold(nick) != m.casefold(token_nick):
                return m.Error(
                    code=m.ErrorCode.TOKEN_INVALID,
                    text=f"token rejected: it is for {token_nick}, not {nick}",
                    ref=ref,
                )
            nick = token_nick
        failed = m.Error(code=m.ErrorCode.LOGIN_FAILED, text=_LOGIN_FAILED, ref=ref)
        if not nick or not m.valid_nick(nick):
            self.throttle.failed(host)
            return failed
        if req.token is None:
            refusal = await self._wait_for_turn(nick, host, ref)
            if refusal is not None:
                return refusal
        try:
            account = await self.store.get_account(nick)
        except StoreError as exc:
            logger.error("cannot read accounts: %s", exc)
            return _unavailable("check accounts", ref)
        if req.token is not None:
            if account is None:
                return m.Error(
                    code=m.ErrorCode.TOKEN_INVALID,
                    text="token rejected: the account no longer exists",
                    ref=ref,
                )
        elif not await verify_password_async(
            account.password_hash if account else None, req.password or ""
        ):
            self.throttle.failed(host)
            logger.info("failed login for %s from %s", nick, address)
            return failed
        assert account is not None
        self.throttle.succeeded(host)
        return self._grant(account.nick)

    async def _wait_for_turn(self, nick: str, host: str, ref: m.Ref) -> m.Error | None:
        """Sleep out this address's delay, then wait for the account's next check slot."""
        delay = self.throttle.delay(host)
        if delay:
            logger.info("delaying login for %s from %s by %.2f s after failures", nick, host, delay)
            await anyio.sleep(delay)
        if await self.login_queue.turn(nick, host):
            return None
        logger.info("turning away a login for %s from %s: too many in line", nick, host)
        return m.Error(
            code=m.ErrorCode.LOGIN_FAILED,
            text="too many login attempts for this account right now; try again in a minute",
            ref=ref,
        )

    async def _create_account(self, req: CreateAccount[Any]) -> LoginGrant | m.Error:
        problem = password_problem(req.password)
        if problem:
            return m.Error(code=m.ErrorCode.WEAK_PASSWORD, text=problem, ref=req.ref)
        password_hash = await hash_password_async(req.password)
        account = Account(
            nick=req.nick, password_hash=password_hash, created=time.time(), since_id=req.since_id
        )
        try:
            created = await self.store.create_account(account)
        except StoreError as exc:
            logger.error("cannot create account %s: %s", req.nick, exc)
            return _unavailable("create accounts", req.ref)
        if not created:
            return m.Error(
                code=m.ErrorCode.ACCOUNT_EXISTS,
                text=f"{req.nick} is already registered",
                ref=req.ref,
            )
        logger.info("registered account %s from %s", req.nick, req.address)
        return self._grant(req.nick)

    # -------------------------------------------------------------- history

    async def _private_since(self, viewer: str, settled_upto: int) -> int:
        """The first id of ``viewer``'s private history: messages to its nick from before the
        account existed belonged to guests (and without an account, none is its own)."""
        account = await self.store.get_account(viewer)
        return account.since_id if account else settled_upto + 1

    async def _read_history(self, req: ReadHistory[Any]) -> m.HistoryPage | m.Error:
        await self.committer.wait_settled(req.settled_upto)
        try:
            after = req.after
            since_id = 0
            if req.viewer is not None:
                since_id = await self._private_since(req.viewer, req.settled_upto)
                if after is not None:
                    after = max(after, since_id - 1)
            if after is None and req.after_time is not None and since_id:
                after = since_id - 1  # a lower bound by time pages upwards: from the account on
            page = await self.store.history(
                req.target,
                viewer=req.viewer,
                before=req.before,
                after=after,
                limit=req.limit,
                before_time=req.before_time,
                after_time=req.after_time,
            )
        except StoreError as exc:
            logger.error("cannot read history: %s", exc)
            return _unavailable("read history", req.ref)
        messages = tuple(msg for msg in page if msg.id >= since_id)
        return m.HistoryPage(target=req.target, messages=messages, ref=req.ref)

    async def _read_conversations(
        self, req: ReadConversations[Any]
    ) -> m.ConversationList | m.Error:
        await self.committer.wait_settled(req.settled_upto)
        try:
            since_id = 0
            if req.viewer is not None:
                since_id = await self._private_since(req.viewer, req.settled_upto)
            found = await self.store.conversations(
                rooms=req.rooms,
                viewer=req.viewer,
                start=req.start,
                end=req.end,
                limit=req.limit,
                private_since=since_id,
            )
        except StoreError as exc:
            logger.error("cannot read conversations: %s", exc)
            return _unavailable("read history", req.ref)
        return m.ConversationList(conversations=tuple(found), ref=req.ref)

    async def _warm(self, req: WarmRooms[Any]) -> dict[str, list[m.Message]]:
        """Each room's recent stored messages below ``req.below`` (one store read per room)."""
        # Every id below the mark is assigned: wait until it is stored so the read sees it.
        await self.committer.wait_settled(req.below - 1)
        loaded: dict[str, list[m.Message]] = {}
        for room in req.rooms:
            try:
                loaded[room] = await self.store.history(
                    room, before=req.below, limit=self.history_length
                )
            except StoreError as exc:
                logger.error("cannot read history of %s: %s", room, exc)
                loaded[room] = []
        return loaded
