"""The broker's rules for commands that need slow work: logins, accounts, history, replays.

These handlers decide who may do what and ask for the slow part with a request effect
(:mod:`anychat.effects`); :meth:`SlowWork.resume` decides what follows from the outcome. They
are a mixin of :class:`~anychat.broker.Broker`, kept apart so each module stays small enough
to hold in mind; they use only the broker state declared below.
"""

from __future__ import annotations

import dataclasses
import math
from typing import Any, TypeVar

from . import model as m
from .broker_base import BrokerPart
from .bus import Bus
from .effects import (
    Authenticate,
    BusGrant,
    ClaimNick,
    CreateAccount,
    Deliver,
    Effect,
    ListenRoom,
    LoginGrant,
    Outcome,
    ReadConversations,
    ReadHistory,
    Request,
    WarmRooms,
)
from .replay import RecentHistory
from .sessions import Session, SessionState

__all__ = ["SlowWork"]

P = TypeVar("P")


class SlowWork(BrokerPart[P]):
    """Request-making handlers and their continuation (mixed into the broker)."""

    bus: Bus
    recent: RecentHistory

    def handle(self, peer: P, command: m.Command) -> list[Effect[P]]:
        raise NotImplementedError

    def log_in(self, peer: P, nick: str, ref: m.Ref = None) -> list[Effect[P]]:
        raise NotImplementedError

    def is_registered(self, nick: str) -> bool:
        raise NotImplementedError

    def add_registered(self, nick: str) -> None:
        raise NotImplementedError

    def _login(self, session: Session[P], cmd: m.Login) -> list[Effect[P]]:
        return [
            Authenticate(
                session.peer, cmd.nick, cmd.password, cmd.token, cmd.ref, address=session.address
            )
        ]

    def _register_account(self, session: Session[P], cmd: m.Register) -> list[Effect[P]]:
        nick = session.nick
        if session.account or self.is_registered(nick):
            return self._refuse(
                session, cmd, m.ErrorCode.ACCOUNT_EXISTS, f"{nick} is already registered"
            )
        return [
            CreateAccount(
                session.peer,
                nick,
                cmd.password,
                since_id=self.bus.next_id,
                ref=cmd.ref,
                address=session.address,
            )
        ]

    def _history(self, session: Session[P], cmd: m.History) -> list[Effect[P]]:
        """Who may read what: a room's members its history, an account its private chats."""
        target = cmd.target
        viewer = None
        if target is None:
            if session.current is None:
                return self._refuse(session, cmd, m.ErrorCode.NO_ROOM, "you are not in a room")
            target = session.current.name
        elif m.is_room(target):
            room = session.rooms.get(m.casefold(target))
            if room is None:
                return self._refuse(
                    session, cmd, m.ErrorCode.NOT_MEMBER, f"join {target} to read its history"
                )
            target = room.name
        else:
            if not session.account:
                return self._refuse(
                    session, cmd, m.ErrorCode.LOGIN_REQUIRED, "log in to read private messages"
                )
            viewer = session.nick
        if cmd.limit < 0:
            return self._refuse(session, cmd, m.ErrorCode.BAD_COMMAND, "limit may not be negative")
        return [
            ReadHistory(
                session.peer,
                target,
                viewer,
                cmd.before,
                cmd.after,
                cmd.limit,
                settled_upto=self.bus.next_id - 1,
                ref=cmd.ref,
                before_time=cmd.before_time,
                after_time=cmd.after_time,
            )
        ]

    def _conversations(self, session: Session[P], cmd: m.Conversations) -> list[Effect[P]]:
        """The conversations whose history the session may read: the rooms it is in, and its
        private ones once logged in (as :meth:`_history` allows)."""
        if not (math.isfinite(cmd.start) and math.isfinite(cmd.end)):
            return self._refuse(session, cmd, m.ErrorCode.BAD_COMMAND, "times must be finite")
        if cmd.limit < 0:
            return self._refuse(session, cmd, m.ErrorCode.BAD_COMMAND, "limit may not be negative")
        return [
            ReadConversations(
                session.peer,
                tuple(room.name for room in session.rooms.values()),
                session.nick if session.account else None,
                cmd.start,
                cmd.end,
                cmd.limit,
                settled_upto=self.bus.next_id - 1,
                ref=cmd.ref,
            )
        ]

    def _warm(self, session: Session[P], rooms: tuple[str, ...], then: m.Command) -> WarmRooms[P]:
        # A cluster's other nodes number messages too: no id marks where the store read ends,
        # so it reads up to the newest, and what is also heard live meanwhile counts once.
        below = self.recent.start_loading(rooms, 0 if self.bus.shared else self.bus.next_id)
        return WarmRooms(session.peer, rooms, below, then)

    def resume(self, request: Request[P], outcome: Outcome) -> list[Effect[P]]:
        """The slow part of ``request`` is done: decide what follows from its ``outcome``.

        The peer may have left (or, for a login, been replaced) while it waited; then only
        what outlives it is kept (loaded history, a created account).
        """
        if isinstance(request, WarmRooms):
            if isinstance(outcome, dict):
                self.recent.loaded(outcome)
            return self._continue(request.peer, request.then)
        if isinstance(request, ListenRoom):
            return self._continue(request.peer, request.then)  # listening or not: join
        if isinstance(request, ClaimNick):
            return self._bus_answered(request, outcome)
        session = self._sessions.get(request.peer)
        if isinstance(outcome, m.Error):
            if session is None or session.state is SessionState.GONE:
                return []
            return [Deliver(outcome, (session.peer,))]
        if isinstance(request, ReadHistory | ReadConversations):
            if session is None or not isinstance(outcome, m.HistoryPage | m.ConversationList):
                return []
            return [Deliver(outcome, (session.peer,))]
        assert isinstance(outcome, LoginGrant)
        if isinstance(request, CreateAccount):
            self.add_registered(request.nick)
            if session is None or session.nick != request.nick:
                return []  # the account exists; its owner logs in to it next time
        if session is None or session.state is SessionState.GONE:
            return []
        news = m.LoggedIn(
            nick=outcome.nick, token=outcome.token, expires=outcome.expires, ref=request.ref
        )
        logged_in = Deliver(news, (session.peer,))
        if isinstance(request, Authenticate) and request.then is not None:
            if session.state is not SessionState.NEW:
                return []
            effects = self.log_in(session.peer, outcome.nick)
            hello = dataclasses.replace(request.then, nick=outcome.nick, password=None, token=None)
            after = self.handle(session.peer, hello)
            if _is_active(session):  # the hello may still be refused (nick in use...)
                effects.append(logged_in)
            elif any(isinstance(effect, ClaimNick) for effect in after):
                session.logged_in = news  # sent once the bus granted the nick
            return effects + after
        return [logged_in, *self.log_in(session.peer, outcome.nick, request.ref)]

    def _bus_answered(self, request: ClaimNick[P], outcome: Outcome) -> list[Effect[P]]:
        """A claimed nick came back: go on with the command that asked."""
        session = self._sessions.get(request.peer)
        alive = session is not None and session.state is not SessionState.GONE
        if not isinstance(outcome, BusGrant):
            if session is not None:
                session.logged_in = None  # the hello is refused: no news of a login with it
            if not alive or not isinstance(outcome, m.Error):
                return []
            return [Deliver(dataclasses.replace(outcome, ref=request.then.ref), (request.peer,))]
        effects = self._continue(request.peer, request.then) if alive else []
        if session is not None and session.logged_in is not None and _is_active(session):
            # Before the welcome, as on a single node (a client has its token once welcomed).
            effects.insert(0, Deliver(session.logged_in, (session.peer,)))
            session.logged_in = None
        return self._claimed(request.peer, request.nick, effects)

    def _claimed(self, peer: P, nick: str, effects: list[Effect[P]]) -> list[Effect[P]]:
        raise NotImplementedError

    def _continue(self, peer: P, command: m.Command) -> list[Effect[P]]:
        if peer not in self._sessions:
            return []
        return self.handle(peer, command)


def _is_active(session: Session[Any]) -> bool:
    return session.state is SessionState.ACTIVE
