"""The commands that must wait for something slow: logins, registrations, history, joins.

The broker is synchronous and knows nothing of passwords or disks. Commands that need a password
check (Argon2 in a worker thread), a token check, or a store read come here instead; the server's
reader task awaits them one at a time, so a connection's commands still run in order, and only that
connection waits. Once the slow part is done, the broker is told the outcome ("this session is
logged in as alice") and decides everything else as usual.

Room history: each room that has been joined keeps its last ``history_length`` messages in memory
(loaded once from the store, then kept up to date as messages are persisted), so a join replays
history without touching the disk, and nothing falls between the replay and live delivery: both
happen in the same synchronous step after the broker adds the member.
"""

from __future__ import annotations

import dataclasses
import logging
import secrets
import time
from collections import deque
from collections.abc import Awaitable, Callable, Iterable
from typing import TYPE_CHECKING, Final

import anyio

from . import model as m
from .auth import (
    LoginThrottle,
    TokenError,
    TokenIssuer,
    hash_password_async,
    password_problem,
    verify_password_async,
)
from .broker import Persist, SessionState
from .committer import Committer
from .errors import StoreError
from .store import Account, Store

if TYPE_CHECKING:
    from .connection import Connection
    from .server import _Hub

__all__ = ["Services"]

logger = logging.getLogger("anychat.server")

_LOGIN_FAILED: Final = "login failed: wrong nick or password"


class Services:
    """Slow-command handlers for one server; owned by the hub."""

    def __init__(self, hub: _Hub, store: Store, *, first_message_id: int) -> None:
        config = hub.config
        self.hub = hub
        self.store = store
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
        self.committer: Committer[Connection] = Committer(
            store,
            self._settle,
            settled_id=first_message_id - 1,
            unstored=lambda failed: hub.broker.forget_unstored(failed),
        )
        self.history_length = config.history_length
        self._recent: dict[str, deque[m.Message]] = {}
        self._loading: dict[str, tuple[list[m.Message], anyio.Event]] = {}
        self.handlers: dict[type, Callable[[Connection, m.Command], Awaitable[None]]] = {
            m.Hello: self.hello,  # type: ignore[dict-item]
            m.Login: self.login,  # type: ignore[dict-item]
            m.Register: self.register,  # type: ignore[dict-item]
            m.History: self.history,  # type: ignore[dict-item]
            m.Join: self.join,  # type: ignore[dict-item]
        }

    # -------------------------------------------------------------- persisting

    def persist(self, effect: Persist[Connection]) -> None:
        """Hot path: remember the message for room replays and queue it for the disk."""
        if effect.resent:  # its original is in the replay cache already
            self.committer.persist(effect)
            return
        key = m.casefold(effect.message.target)
        recent = self._recent.get(key)
        if recent is not None:
            recent.append(effect.message)
        else:
            loading = self._loading.get(key)
            if loading is not None:
                loading[0].append(effect.message)
        self.committer.persist(effect)

    def _settle(self, results: list[tuple[Connection, m.Event]]) -> None:
        for conn, event in results:
            conn.push(conn.codec.encode(event))
        self.hub.flush()

    # -------------------------------------------------------------- helpers

    def _reply(self, conn: Connection, event: m.Event) -> None:
        conn.push(conn.codec.encode(event))

    def _error(self, conn: Connection, code: m.ErrorCode, text: str, ref: m.Ref) -> None:
        self._reply(conn, m.Error(code=code, text=text, ref=ref))

    async def _authenticate(
        self,
        conn: Connection,
        nick: str | None,
        password: str | None,
        token: str | None,
        ref: m.Ref,
    ) -> str | None:
        """The account's nick if the password or token is right; else reply with why."""
        address = conn.address
        delay = self.throttle.delay(nick, address)
        if delay:
            logger.info(
                "delaying login for %s from %s by %.2f s after failures", nick, address, delay
            )
            await anyio.sleep(delay)
        if token is not None:
            try:
                token_nick = self.tokens.check(token)
            except TokenError as exc:
                self.throttle.failed(None, address)
                self._error(conn, exc.code, exc.text, ref)
                return None
            if nick is not None and m.casefold(nick) != m.casefold(token_nick):
                self._error(
                    conn,
                    m.ErrorCode.TOKEN_INVALID,
                    f"token rejected: it is for {token_nick}, not {nick}",
                    ref,
                )
                return None
            nick = token_nick
        if not nick or not m.valid_nick(nick):
            self.throttle.failed(None, address)
            self._error(conn, m.ErrorCode.LOGIN_FAILED, _LOGIN_FAILED, ref)
            return None
        try:
            account = await self.store.get_account(nick)
        except StoreError as exc:
            logger.error("cannot read accounts: %s", exc)
            self._error(
                conn,
                m.ErrorCode.STORE_UNAVAILABLE,
                "cannot check accounts right now; try again later",
                ref,
            )
            return None
        if token is not None:
            if account is None:
                self._error(
                    conn,
                    m.ErrorCode.TOKEN_INVALID,
                    "token rejected: the account no longer exists",
                    ref,
                )
                return None
        elif not await verify_password_async(
            account.password_hash if account else None, password or ""
        ):
            self.throttle.failed(nick, address)
            logger.info("failed login for %s from %s", nick, address)
            self._error(conn, m.ErrorCode.LOGIN_FAILED, _LOGIN_FAILED, ref)
            return None
        assert account is not None
        self.throttle.succeeded(nick, address)
        return account.nick

    def _gone(self, conn: Connection) -> bool:
        """True once the connection left (or was replaced) while we awaited."""
        return conn.closed or conn not in self.hub.broker.peers()

    def _logged_in(self, conn: Connection, nick: str, ref: m.Ref) -> None:
        token, expires = self.tokens.issue(nick)
        self._reply(conn, m.LoggedIn(nick=nick, token=token, expires=expires, ref=ref))

    # -------------------------------------------------------------- commands

    async def hello(self, conn: Connection, cmd: m.Hello) -> None:
        await self._hello(conn, cmd)
        # Some protocols end the connection on a refused registration (IRC closes after a wrong
        # server password, as IRC servers do); their codec says so with a goodbye.
        bye: m.Bye | None = getattr(conn.codec, "hangup", None)
        if bye is not None and not conn.closed:
            conn.close(bye)

    async def _hello(self, conn: Connection, cmd: m.Hello) -> None:
        broker = self.hub.broker
        session = broker.session(conn)
        account = None
        if session.state is SessionState.NEW and (cmd.password is not None or cmd.token):
            account = await self._authenticate(conn, cmd.nick, cmd.password, cmd.token, cmd.ref)
            if account is None or self._gone(conn):
                return
            self.hub.apply(broker.log_in(conn, account))
            cmd = dataclasses.replace(cmd, nick=account, password=None, token=None)
        rooms = self.hub.config.default_rooms if cmd.autojoin else ()
        await self._load_recent(rooms)
        if self._gone(conn):
            return
        before = set(session.rooms)
        effects = broker.handle(conn, cmd)
        if account is not None and session.state is SessionState.ACTIVE:
            self._logged_in(conn, account, cmd.ref)
        self.hub.apply(effects)
        self._replay_new_rooms(conn, before)

    async def login(self, conn: Connection, cmd: m.Login) -> None:
        broker = self.hub.broker
        session = broker.session(conn)
        if session.state is SessionState.NEW and cmd.hello:
            await self.hello(
                conn,
                m.Hello(nick=cmd.nick, password=cmd.password or "", token=cmd.token, ref=cmd.ref),
            )
            return
        account = await self._authenticate(conn, cmd.nick, cmd.password, cmd.token, cmd.ref)
        if account is None or self._gone(conn):
            return
        self._logged_in(conn, account, cmd.ref)
        self.hub.apply(broker.log_in(conn, account, cmd.ref))

    async def register(self, conn: Connection, cmd: m.Register) -> None:
        broker = self.hub.broker
        session = broker.session(conn)
        if session.state is not SessionState.ACTIVE:
            self._error(conn, m.ErrorCode.HELLO_REQUIRED, "say hello with a nick first", cmd.ref)
            return
        nick = session.nick
        if session.account or broker.is_registered(nick):
            self._error(conn, m.ErrorCode.ACCOUNT_EXISTS, f"{nick} is already registered", cmd.ref)
            return
        problem = password_problem(cmd.password)
        if problem:
            self._error(conn, m.ErrorCode.WEAK_PASSWORD, problem, cmd.ref)
            return
        password_hash = await hash_password_async(cmd.password)
        try:
            created = await self.store.create_account(
                Account(
                    nick=nick,
                    password_hash=password_hash,
                    created=time.time(),
                    since_id=broker.next_message_id,
                )
            )
        except StoreError as exc:
            logger.error("cannot create account %s: %s", nick, exc)
            self._error(
                conn,
                m.ErrorCode.STORE_UNAVAILABLE,
                "cannot create accounts right now; try again later",
                cmd.ref,
            )
            return
        if not created:
            self._error(conn, m.ErrorCode.ACCOUNT_EXISTS, f"{nick} is already registered", cmd.ref)
            return
        logger.info("registered account %s from %s", nick, conn.address)
        if self._gone(conn) or session.nick != nick:
            broker.add_registered(nick)
            return
        self._logged_in(conn, nick, cmd.ref)
        self.hub.apply(broker.log_in(conn, nick, cmd.ref))

    async def join(self, conn: Connection, cmd: m.Join) -> None:
        broker = self.hub.broker
        session = broker.session(conn)
        if session.state is SessionState.ACTIVE and m.valid_room(cmd.room):
            await self._load_recent((cmd.room,))
        if self._gone(conn):
            return
        before = set(session.rooms)
        self.hub.apply(broker.handle(conn, cmd))
        self._replay_new_rooms(conn, before)

    async def history(self, conn: Connection, cmd: m.History) -> None:
        broker = self.hub.broker
        session = broker.session(conn)
        if session.state is not SessionState.ACTIVE:
            self._error(conn, m.ErrorCode.HELLO_REQUIRED, "say hello with a nick first", cmd.ref)
            return
        target = cmd.target
        viewer = None
        if target is None:
            if session.current is None:
                self._error(conn, m.ErrorCode.NO_ROOM, "you are not in a room", cmd.ref)
                return
            target = session.current.name
        elif m.is_room(target):
            room = session.rooms.get(m.casefold(target))
            if room is None:
                self._error(
                    conn, m.ErrorCode.NOT_MEMBER, f"join {target} to read its history", cmd.ref
                )
                return
            target = room.name
        else:
            if not session.account:
                self._error(
                    conn, m.ErrorCode.LOGIN_REQUIRED, "log in to read private messages", cmd.ref
                )
                return
            viewer = session.nick
        if cmd.limit < 0:
            self._error(conn, m.ErrorCode.BAD_COMMAND, "limit may not be negative", cmd.ref)
            return
        await self.committer.wait_settled(broker.next_message_id - 1)
        try:
            after = cmd.after
            since_id = 0
            if viewer is not None:
                # Private messages from before the account existed belonged to guests.
                account = await self.store.get_account(viewer)
                since_id = account.since_id if account else broker.next_message_id
                if after is not None:
                    after = max(after, since_id - 1)
            page = await self.store.history(
                target, viewer=viewer, before=cmd.before, after=after, limit=cmd.limit
            )
            page = [msg for msg in page if msg.id >= since_id]
        except StoreError as exc:
            logger.error("cannot read history: %s", exc)
            self._error(
                conn,
                m.ErrorCode.STORE_UNAVAILABLE,
                "cannot read history right now; try again later",
                cmd.ref,
            )
            return
        self._reply(conn, m.HistoryPage(target=target, messages=tuple(page), ref=cmd.ref))

    # -------------------------------------------------------------- room replay

    async def _load_recent(self, rooms: Iterable[str]) -> None:
        """Make sure each room's recent messages are in memory (one store read per room)."""
        if not self.history_length:
            return
        for room in rooms:
            key = m.casefold(room)
            if key in self._recent:
                continue
            loading = self._loading.get(key)
            if loading is not None:
                await loading[1].wait()
                continue
            newer: list[m.Message] = []
            done = anyio.Event()
            self._loading[key] = (newer, done)
            try:
                # Every id below the watermark is assigned; wait until it is stored so the
                # read sees it. Later messages land in ``newer`` through persist().
                watermark = self.hub.broker.next_message_id
                await self.committer.wait_settled(watermark - 1)
                try:
                    stored = await self.store.history(
                        room, before=watermark, limit=self.history_length
                    )
                except StoreError as exc:
                    logger.error("cannot read history of %s: %s", room, exc)
                    stored = []
                self._recent[key] = deque(stored + newer, maxlen=self.history_length)
            finally:
                del self._loading[key]
                done.set()

    def _replay_new_rooms(self, conn: Connection, before: set[str]) -> None:
        if not self.history_length or conn.closed:
            return
        session = self.hub.broker.session(conn)
        for key in session.rooms.keys() - before:
            for msg in self._recent.get(key, ()):
                history = msg if msg.history else dataclasses.replace(msg, history=True)
                self._reply(conn, history)
