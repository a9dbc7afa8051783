"""Nicks, rooms, presence and fan-out decisions: the rules of the chat, with no I/O at all.

The broker is synchronous. The server glue calls :meth:`Broker.handle` with a session and a
command and gets back a list of effects (:class:`Deliver`, :class:`Disconnect`) describing what
should happen; the glue carries them out. Because the broker never awaits, a slow client can never
slow it down, and every rule here is testable with plain function calls.

A session's ``peer`` is an opaque handle chosen by the glue (the server uses its connection
object). :class:`Deliver` hands the glue a collection of peers, not nicks, so fan-out needs no
lookups: a room keeps its members keyed by peer and the glue iterates that mapping directly.
"""

from __future__ import annotations

import dataclasses
import random
import time
from collections.abc import Callable, Collection, Iterable
from functools import partial
from typing import Any, ClassVar, TypeAlias, TypeVar

from . import model as m
from . import roomstate
from .broker_cluster import ClusterRules
from .broker_info import InfoRules, with_ref
from .broker_ops import UNSENDABLE, OperatorRules
from .broker_presence import PresenceRules, clean_realname, tags_problem
from .broker_slow import SlowWork
from .bus import Bus
from .bus.local import LocalBus
from .effects import (
    Authenticate,
    Broadcast,
    Deliver,
    Disconnect,
    Effect,
    ListenRoom,
    Persist,
    Request,
)
from .replay import RecentHistory
from .resend import SentMessages
from .sessions import Room, Session, SessionState

__all__ = [
    "Broker",
    "Deliver",
    "Disconnect",
    "Effect",
    "Persist",
    "Request",
    "Room",
    "Session",
    "SessionState",
]

P = TypeVar("P")


# Handlers are looked up by command type, so each one's exact command type is erased here.
_Handler: TypeAlias = "Callable[[Broker[Any], Session[Any], Any], list[Effect[Any]]]"


class Broker(ClusterRules[P], SlowWork[P], InfoRules[P], PresenceRules[P]):
    """Registration, nicks, rooms and who hears what.

    Args:
        server_name: Shown to clients in the welcome event.
        version: Server version, shown in the welcome event.
        default_rooms: Rooms a client joins on registering (unless it opts out).
        max_rooms_per_session: Join refusals start past this many rooms.
        clock: Seconds since the epoch; injectable so tests control message time.
        first_message_id: Message ids count up from here (a store seeds it past its last id).
        registered: Nicks that belong to accounts: only a session logged in to one may use it.
        require_login: Refuse guests.
        history_length: Recent messages replayed to whoever joins a room (0 = none).
        quiet_room_size: In a room with this many members, guests come and go unannounced
            (0 = every join is announced); see :meth:`_quiet`.
        bus: What this node shares with others (default: a single node's ``LocalBus``,
            seeded with ``first_message_id`` and ``registered``).
    """

    def __init__(
        self,
        *,
        server_name: str = "anychat",
        version: str = "0",
        default_rooms: Iterable[str] = ("#general",),
        max_rooms_per_session: int = 50,
        clock: Callable[[], float] = time.time,
        first_message_id: int = 1,
        registered: Iterable[str] = (),
        require_login: bool = False,
        history_length: int = 0,
        quiet_room_size: int = 0,
        bus: Bus | None = None,
    ) -> None:
        self.server_name = server_name
        self.version = version
        self.default_rooms = tuple(default_rooms)
        self.max_rooms_per_session = max_rooms_per_session
        self._clock = clock
        self.bus: Bus = bus or LocalBus(
            first_message_id=first_message_id, registered=(m.casefold(n) for n in registered)
        )
        self._nicks: dict[str, Session[P]] = {}
        self._rooms: dict[str, Room[P]] = {}
        self._sessions: dict[P, Session[P]] = {}
        self._watchers: dict[str, set[P]] = {}
        self._read_again: set[str] = set()
        self._random = random.Random()
        self._max_users = 0
        self.listing_entries = 0
        self.require_login = require_login
        self.recent = RecentHistory(history_length)
        self.quiet_room_size = quiet_room_size
        self._lobbies = frozenset(m.casefold(room) for room in self.default_rooms)
        self.sent = SentMessages()  # idempotency keys of recent messages
        bad = [r for r in self.default_rooms if not m.valid_room(r)]
        if bad:
            raise ValueError(f"invalid default room names: {', '.join(bad)}")

    # ----------------------------------------------------------------- inspection

    def session(self, peer: P) -> Session[P]:
        return self._sessions[peer]

    def find_nick(self, nick: str) -> Session[P] | None:
        return self._nicks.get(m.casefold(nick))

    def find_room(self, name: str) -> Room[P] | None:
        return self._rooms.get(m.casefold(name))

    def room_count(self) -> int:
        return len(self._rooms)

    def rooms(self) -> list[Room[P]]:
        return sorted(self._rooms.values(), key=lambda r: m.casefold(r.name))

    def peers(self) -> Collection[P]:
        return self._sessions.keys()

    @property
    def next_message_id(self) -> int:
        """The id the next message will get: every lower id is already assigned."""
        return self.bus.next_id

    # ----------------------------------------------------------------- accounts

    def is_registered(self, nick: str) -> bool:
        return self.bus.is_registered(m.casefold(nick))

    def add_registered(self, nick: str) -> None:
        self.bus.set_registered((m.casefold(nick),))

    def remove_registered(self, nick: str) -> None:
        self.bus.set_registered((m.casefold(nick),), registered=False)

    def account_deleted(self, nick: str) -> list[Effect[P]]:
        """The account ``nick`` is gone: free the nick and log out its sessions (they stay
        connected, as guests under the same nick, and are told)."""
        key = m.casefold(nick)
        self.bus.set_registered((key,), registered=False)
        logged_out = [s.peer for s in self._sessions.values() if s.account == key]
        news: list[Effect[P]] = []
        for peer in logged_out:
            self._sessions[peer].account = ""
            self._sessions[peer].relist()
            news += self._account_news(self._sessions[peer]) + self._tell_account(peer)
        if not logged_out:
            return []
        notice = m.Error(
            code=m.ErrorCode.ACCOUNT_DELETED, text=f"account {nick} was deleted: you are logged out"
        )
        return [Deliver(notice, logged_out), *news]

    def log_in(self, peer: P, nick: str, ref: m.Ref = None) -> list[Effect[P]]:
        """Mark ``peer`` as logged in to account ``nick`` (the glue checked the password).

        A registered session takes the account's nick (an older session holding it, a ghost of
        a dropped connection, is disconnected). A new session still has to say hello.
        """
        session = self._sessions[peer]
        key = m.casefold(nick)
        self.bus.set_registered((key,))
        changed = session.account != key
        session.account = key
        session.relist()
        if session.state is not SessionState.ACTIVE:
            return []
        effects = []
        if session.nick != nick:
            effects = self._take_over(session, nick) + self._nick(
                session, m.Nick(nick=nick, ref=ref)
            )
        if not changed:
            return effects
        return effects + self._account_news(session) + self._tell_account(peer)

    def _take_over(self, session: Session[P], nick: str) -> list[Effect[P]]:
        """Disconnect another session holding ``nick`` if it is logged in to the same account."""
        holder = self._nicks.get(m.casefold(nick))
        if holder is None or holder is session or not session.account:
            return []  # guests never take a nick over: only the account's owner can
        if holder.account != session.account:
            return []
        bye = m.Bye(code=m.ErrorCode.LOGGED_IN_ELSEWHERE, reason="logged in from elsewhere")
        return [*self.disconnect(holder.peer, bye.reason), Disconnect(holder.peer, bye)]

    # ----------------------------------------------------------------- lifecycle

    def connect(self, peer: P, address: str = "") -> Session[P]:
        """Start tracking a connection; it must register (``Hello``) before chatting."""
        session = Session(peer=peer, address=address)
        self._sessions[peer] = session
        return session

    def disconnect(self, peer: P, reason: str = "") -> list[Effect[P]]:
        """Forget a connection; tells everyone who shared a room with it. Idempotent."""
        session = self._sessions.pop(peer, None)
        if session is None or session.state is SessionState.GONE:
            return []
        was_active = session.state is SessionState.ACTIVE
        audience = self._audience(session) if was_active else set()
        audience.discard(peer)
        for room in list(session.rooms.values()):
            self._leave(session, room)
        if was_active:
            key = m.casefold(session.nick)
            del self._nicks[key]
            self.bus.release_nick(key)
        session.state = SessionState.GONE
        self._forget_watches(session)
        watched = self._went(session.nick) if was_active else []
        quitted = m.Quitted(nick=session.nick, reason=reason, user=session.user)
        told = self._tell(quitted) if was_active else []
        if not audience:
            return [*watched, *told]
        return [Deliver(quitted, audience), *watched, *told]

    # ----------------------------------------------------------------- commands

    def handle(self, peer: P, command: m.Command) -> list[Effect[P]]:
        """Apply one command from ``peer``; returns what the glue must do about it."""
        session = self._sessions[peer]
        if type(command) is m.Login and command.hello and session.state is SessionState.NEW:
            command = m.Hello(
                nick=command.nick,
                password=command.password or "",
                token=command.token,
                ref=command.ref,
            )
        if session.state is SessionState.ACTIVE:
            handler = self._active_handlers.get(type(command))
        else:
            handler = self._new_handlers.get(type(command))
        if handler is None:
            if isinstance(command, m.Hello):
                return self._refuse(
                    session, command, m.ErrorCode.ALREADY_REGISTERED, "already registered"
                )
            return self._refuse(
                session, command, m.ErrorCode.HELLO_REQUIRED, "say hello with a nick first"
            )
        return handler(self, session, command)

    def _hello(self, session: Session[P], cmd: m.Hello) -> list[Effect[P]]:
        if cmd.autojoin:
            cold = self.recent.cold(self.default_rooms)
            if cold:
                return [self._warm(session, cold, cmd)]
        if cmd.password is not None or cmd.token:
            return [
                Authenticate(
                    session.peer,
                    cmd.nick,
                    cmd.password,
                    cmd.token,
                    cmd.ref,
                    then=cmd,
                    address=session.address,
                )
            ]
        return self._register(session, cmd)

    def _register(self, session: Session[P], cmd: m.Hello) -> list[Effect[P]]:
        effects: list[Effect[P]] = []
        if self.require_login and (cmd.nick is None or session.account != m.casefold(cmd.nick)):
            return self._refuse(
                session,
                cmd,
                m.ErrorCode.LOGIN_REQUIRED,
                "this server requires an account: log in first",
            )
        if cmd.nick is None:
            nick = self._guest_nick()
            if self.bus.shared and self.bus.must_ask(m.casefold(nick)):
                return self._claim_first(session, dataclasses.replace(cmd, nick=nick), nick)
        else:
            effects += self._take_over(session, cmd.nick)
            if self.bus.shared and (ask := self._claim_first(session, cmd, cmd.nick)):
                return effects + ask
            problem = self._nick_problem(cmd.nick, session)
            if problem:
                return self._refuse(session, cmd, *problem)
            nick = cmd.nick
        session.nick = nick
        session.state = SessionState.ACTIVE
        session.since = self._clock()
        session.user = m.clean_username(cmd.user, nick)
        session.realname = clean_realname(cmd.realname) or nick
        self._nicks[m.casefold(nick)] = session
        self._max_users = max(self._max_users, len(self._nicks))
        peer = session.peer
        welcome = m.Welcome(
            nick=nick,
            server=self.server_name,
            version=self.version,
            ref=cmd.ref,
            stats=self._stats_of(None),
        )
        effects.append(Deliver(welcome, (peer,)))
        effects += self._came(session)
        if self.bus.shared:
            effects += self._tell(self._present(session))
        if cmd.autojoin:
            for name in self.default_rooms:
                effects += self._join(session, m.Join(room=name))
        return effects

    def _nick(self, session: Session[P], cmd: m.Nick) -> list[Effect[P]]:
        if session.account and m.casefold(cmd.nick) != session.account:
            return self._refuse(
                session,
                cmd,
                m.ErrorCode.NICK_REGISTERED,
                "you are logged in: your nick is your account's",
            )
        if self.bus.shared and (ask := self._claim_first(session, cmd, cmd.nick)):
            return ask
        problem = self._nick_problem(cmd.nick, session)
        if problem:
            return self._refuse(session, cmd, *problem)
        old = session.nick
        old_key, new_key = m.casefold(old), m.casefold(cmd.nick)
        del self._nicks[old_key]
        self._nicks[new_key] = session
        if old_key != new_key:
            self.bus.release_nick(old_key)
        session.nick = cmd.nick
        session.relist()
        for room in session.rooms.values():
            if room.channel.status(session.peer):
                self._save_room(room)  # statuses are kept by nick in the cluster's copy
        audience = self._audience(session)
        audience.discard(session.peer)
        user = session.user
        watched = self._went(old) + self._came(session) if old_key != new_key else []
        changed = m.NickChanged(old=old, new=cmd.nick, user=user)
        return [
            Deliver(m.NickChanged(old=old, new=cmd.nick, ref=cmd.ref, user=user), (session.peer,)),
            Deliver(changed, audience),
            *watched,
            *self._tell(changed),
        ]

    def _join(self, session: Session[P], cmd: m.Join) -> list[Effect[P]]:
        if not m.valid_room(cmd.room):
            return self._refuse(
                session,
                cmd,
                m.ErrorCode.INVALID_ROOM,
                f"invalid room name {cmd.room!r}: '#' then up to {m.MAX_ROOM_LENGTH - 1} "
                "characters without spaces, commas or colons",
            )
        key = m.casefold(cmd.room)
        room = session.rooms.get(key)
        if room is not None:  # already there: just make it current
            session.current = room
            return [Deliver(self._members(room, cmd.ref), (session.peer,))]
        if len(session.rooms) >= self.max_rooms_per_session:
            return self._refuse(
                session,
                cmd,
                m.ErrorCode.TOO_MANY_ROOMS,
                f"you are in {len(session.rooms)} rooms, the most allowed",
            )
        room = self._rooms.get(key)
        peer = session.peer
        if room is None and self.bus.shared and self.bus.must_listen(key):
            # Listen first: what the store read (below) misses is then heard live.
            return [ListenRoom(peer, key, cmd)]
        if self.recent.cold((cmd.room,)):
            if room is None and self.bus.shared:
                # Its settings are read again after the store read (they may change meanwhile).
                self.bus.take_room_state(key)
            return [self._warm(session, (cmd.room,), cmd)]
        opening = room is None
        created = False
        if room is None:
            room = Room(name=cmd.room)
            opened = self.bus.shared and self._open_shared(room, key)
            if opened is None:  # its settings are read again, then the join runs again
                return [ListenRoom(peer, key, cmd)]
            if isinstance(opened, m.Error):
                self.bus.room_closed(key)  # the next try listens (and reads) afresh
                return [Deliver(with_ref(opened, cmd.ref), (peer,))]
            created = not opened
        if created:
            room.channel.created = self._clock()
            if key in self._lobbies:
                # The server's own rooms (everyone is put in them) belong to nobody: no
                # operator, and anyone may set the topic, as before operators existed.
                room.channel.modes.discard("t")
            else:
                room.channel.ops.add(peer)  # whoever creates a room is its operator
        else:
            key = m.casefold(room.name)  # the room's own string (for a lower-case name), not
            # this command's copy: every member's ``rooms`` then shares one key
            chan = room.channel
            members = len(room.members) + len(self._elsewhere(key))
            problem = chan.join_problem(session.nick, self._host(session), cmd.key, members)
            if problem:
                if opening and self.bus.shared:
                    self.bus.room_closed(key)  # the next try listens (and reads) afresh
                return self._refuse(session, cmd, *problem)
            if m.casefold(session.nick) in chan.invited:
                chan.invited.discard(m.casefold(session.nick))  # an invite is used once
                self._save_room(room)
        if opening:
            self._rooms[key] = room
            self.bus.room_opened(key)
            if created:
                self._save_room(room)
        effects: list[Effect[P]] = []
        joined = m.Joined(
            room=room.name,
            nick=session.nick,
            user=session.user,
            realname=session.realname,
            account=session.account,
            away=session.away,
        )
        if self._quiet(session, room):
            room.quiet.add(peer)
        elif room.members:
            effects.append(Deliver(joined, room.members, skip=peer))
        room.members[peer] = session
        self._listed(room, session)
        session.rooms[key] = room
        session.current = room
        effects.append(Deliver(dataclasses.replace(joined, ref=cmd.ref), (peer,)))
        if room.topic:
            effects.append(Deliver(self._topic_of(room, cmd.ref), (peer,)))
        effects.append(Deliver(self._members(room, cmd.ref), (peer,)))
        effects.extend(Deliver(msg, (peer,)) for msg in self.recent.replay(room.name))
        if self.bus.shared:
            effects += self._tell(joined)
        return effects

    def _part(self, session: Session[P], cmd: m.Part) -> list[Effect[P]]:
        room = self._my_room(session, cmd.room)
        if isinstance(room, m.Error):
            return [Deliver(with_ref(room, cmd.ref), (session.peer,))]
        announced = session.peer not in room.quiet
        self._leave(session, room)
        parted = m.Parted(room=room.name, nick=session.nick, reason=cmd.reason, user=session.user)
        effects: list[Effect[P]] = [
            Deliver(dataclasses.replace(parted, ref=cmd.ref), (session.peer,))
        ]
        if room.members and announced:
            effects.append(Deliver(parted, room.members))
        return effects + self._tell(parted)

    def _say(self, session: Session[P], cmd: m.Say) -> list[Effect[P]]:
        text = cmd.text
        if not text or text.isspace():
            return self._refuse(session, cmd, m.ErrorCode.EMPTY_MESSAGE, "empty message not sent")
        if len(text) > m.MAX_TEXT_LENGTH:
            return self._refuse(
                session,
                cmd,
                m.ErrorCode.TEXT_TOO_LONG,
                f"message longer than {m.MAX_TEXT_LENGTH} characters not sent",
            )
        if UNSENDABLE.search(text):
            return self._refuse(
                session,
                cmd,
                m.ErrorCode.BAD_COMMAND,
                "message may not contain line breaks or NUL",
            )
        if cmd.tags and (bad_tags := tags_problem(cmd.tags)):
            return self._refuse(session, cmd, m.ErrorCode.BAD_COMMAND, bad_tags)
        if (resend := self.sent.answer(session.nick, session.peer, cmd)) is not None:
            return resend  # a bad key, or said before: the original ack, nothing relayed
        target = cmd.target
        if target is None or m.is_room(target):
            room = self._my_room(session, target)
            if isinstance(room, m.Error):
                outside = self._rooms.get(m.casefold(target)) if target else None
                if outside is None or room.code is not m.ErrorCode.NOT_MEMBER:
                    return [Deliver(with_ref(room, cmd.ref), (session.peer,))]
                room = outside  # a member of no such room: +n decides (below)
            problem = room.channel.send_problem(
                session.peer, session.peer in room.members, partial(self._host, session)
            )
            if problem:
                return self._refuse(session, cmd, *problem)
            if self.bus.shared:  # numbered and published in one step; delivered here after
                unnumbered = self._message(session, room.name, cmd, numbered=False)
                return [Broadcast(m.casefold(room.name), unnumbered, session.peer, cmd)]
            msg = self._message(session, room.name, cmd)
            self.recent.remember(msg)
            return [
                Deliver(msg, room.members, skip=session.peer),
                Persist(
                    msg,
                    session.peer,
                    m.Ack(id=msg.id, time=msg.time, target=room.name, ref=cmd.ref),
                ),
            ]
        key = m.casefold(target)
        other = self._nicks.get(key)
        remote = self._remote_user(target) if other is None else None
        if other is None and remote is None and not self.bus.is_registered(key):
            return self._refuse(session, cmd, m.ErrorCode.NO_SUCH_NICK, f"no such nick {target}")
        # To a session here, on another node, or an account that is offline (stored for it to
        # read with history when it logs in).
        to = other.nick if other else remote.nick if remote else target
        if self.bus.shared:  # numbered and published in one step, like a room message
            unnumbered = self._message(session, to, cmd, numbered=False)
            node = remote.node if remote else ""
            return [Broadcast("", unnumbered, session.peer, cmd, node)]
        msg = self._message(session, to, cmd)
        persist = Persist(
            msg, session.peer, m.Ack(id=msg.id, time=msg.time, target=to, ref=cmd.ref)
        )
        return [Deliver(msg, (other.peer,)), persist] if other else [persist]

    def _ping(self, session: Session[P], cmd: m.Ping) -> list[Effect[P]]:
        return [Deliver(cmd.reply(), (session.peer,))]

    def _quit(self, session: Session[P], cmd: m.Quit) -> list[Effect[P]]:
        # The reason becomes the quit message everyone else sees (IRC "QUIT :reason").
        return [Disconnect(session.peer, m.Bye(code=None, reason=cmd.reason or "goodbye"))]

    def _invalid(self, session: Session[P], cmd: m.Invalid) -> list[Effect[P]]:
        return [Deliver(cmd.reply(), (session.peer,))]

    _new_handlers: ClassVar[dict[type, _Handler]] = {
        m.Hello: _hello,
        m.Login: SlowWork._login,
        m.Ping: _ping,
        m.Quit: _quit,
        m.Invalid: _invalid,
    }
    _active_handlers: ClassVar[dict[type, _Handler]] = {
        m.Nick: _nick,
        m.Join: _join,
        m.Part: _part,
        m.Say: _say,
        m.Who: InfoRules._who,
        m.ListRooms: InfoRules._list_rooms,
        m.Topic: InfoRules._topic,
        m.Away: PresenceRules._away,
        m.SetRealname: PresenceRules._set_realname,
        m.Watch: PresenceRules._watch,
        m.TagMsg: PresenceRules._tagmsg,
        m.Whois: InfoRules._whois,
        m.Mode: OperatorRules._mode,
        m.Kick: OperatorRules._kick,
        m.Invite: OperatorRules._invite,
        m.Stats: OperatorRules._stats,
        m.Login: SlowWork._login,
        m.Register: SlowWork._register_account,
        m.History: SlowWork._history,
        m.Conversations: SlowWork._conversations,
        m.Ping: _ping,
        m.Quit: _quit,
        m.Invalid: _invalid,
    }

    # ----------------------------------------------------------------- helpers

    def _message(
        self, session: Session[P], target: str, cmd: m.Say, *, numbered: bool = True
    ) -> m.Message:
        """The message ``cmd`` says, with the next id (or 0, for the bus to number)."""
        session.spoke = now = self._clock()  # for whois' idle time
        msg = m.Message(  # remembered by its key or ref, for resends
            id=self.bus.allocate_id() if numbered else 0,
            time=now,
            sender=session.nick,
            target=target,
            text=cmd.text,
            kind=cmd.kind,
            user=session.user,
            account=session.account,
            tags=cmd.tags,
        )
        return self.sent.said(session.peer, cmd, msg) if numbered else msg

    def _leave(self, session: Session[P], room: Room[P]) -> None:
        key = m.casefold(room.name)
        held = room.channel.status(session.peer)
        del room.members[session.peer]
        room.listing = None
        room.quiet.discard(session.peer)
        room.channel.forget(session.peer)
        del session.rooms[key]
        if not room.members:
            del self._rooms[key]
            self.bus.room_closed(key)
            if self.bus.shared and not self._elsewhere(key):
                # Its last member anywhere: the room is gone (its copy too, unless another
                # node made a new room of that name meanwhile).
                self.bus.drop_room(key, roomstate.identity(room))
                held = ""
        if held:
            self._save_room(room)  # an operator or voice the others must forget
        if session.current is room:
            session.current = next(reversed(session.rooms.values()), None)

    def _audience(self, session: Session[P]) -> set[P]:
        """Everyone who shares a room with ``session`` and saw it join, itself included, each
        once."""
        peer = session.peer
        audience = {peer}
        for room in session.rooms.values():
            if peer not in room.quiet:
                audience.update(room.members)
        return audience

    def _quiet(self, session: Session[P], room: Room[P]) -> bool:
        """Should ``session`` join ``room`` unannounced?

        Announcing every join to every member makes a storm of N connections cost N²/2 lines,
        most of them to people who never read them: so, as large IRC deployments do, a guest
        (no account) joining a room that already has ``quiet_room_size`` members is not
        announced, and neither are its part, quit or nick changes there (members never hear of
        someone leaving whom they did not see come). Everyone still hears what it says, and
        ``who`` lists it. Accounts are always announced: making one has a cost of its own.
        """
        return bool(
            self.quiet_room_size
            and not session.account
            and len(room.members) >= self.quiet_room_size
        )

    def _nick_problem(self, nick: str, session: Session[P]) -> tuple[m.ErrorCode, str] | None:
        if not nick:
            return m.ErrorCode.INVALID_NICK, "nick may not be empty"
        if not m.valid_nick(nick):
            return (
                m.ErrorCode.INVALID_NICK,
                f"invalid nick {nick!r}: up to {m.MAX_NICK_LENGTH} letters, digits or "
                "-_[]{}\\`^| and not starting with a digit or '-'",
            )
        if self.bus.is_registered(m.casefold(nick)) and session.account != m.casefold(nick):
            return (
                m.ErrorCode.NICK_REGISTERED,
                f"nick {nick} is registered: log in or pick another",
            )
        key = m.casefold(nick)
        holder = self._nicks.get(key)
        if holder is not None and holder is not session:
            return m.ErrorCode.NICK_IN_USE, f"nick {nick} is already in use"
        if holder is None and not self.bus.claim_nick(key):
            return m.ErrorCode.NICK_IN_USE, f"nick {nick} is already in use"
        return None

    def _guest_nick(self) -> str:
        while True:
            nick = f"guest{self._random.randrange(1000, 100000)}"
            key = m.casefold(nick)
            if key in self._nicks or self.bus.is_registered(key):
                continue
            if self.bus.claim_nick(key) or self.bus.must_ask(key):
                return nick  # a node of a cluster asks the bus before using it
