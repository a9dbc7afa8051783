"""The broker's side of a chat served by several nodes: what it tells them, what it hears.

A mixin of :class:`~anychat.broker.Broker` (as :mod:`anychat.broker_info` is), used only with a
shared bus (``bus.shared``): a single node never reaches any of it. What the other nodes say
arrives through :meth:`ClusterRules.remote`, after the bus decoded it; the users of other nodes
live in the bus's :class:`~anychat.bus.directory.Directory`, which this mixin keeps current, so
member lists, WHOIS and private messages cover the whole chat without a round trip. What needs
one (a nick another node may be claiming) becomes a request effect. A message, to a room or a
nick, becomes a :class:`~anychat.effects.Broadcast`: the bus numbers and publishes it in one
step, and :meth:`ClusterRules.numbered` delivers it here when its id is back.
"""

from __future__ import annotations

import dataclasses
import logging
from collections.abc import Callable, Iterable
from typing import TYPE_CHECKING, TypeVar

from . import model as m
from . import roomstate
from .broker_base import BrokerPart
from .bus import Bus, unavailable
from .bus.directory import BusEvent, Present, RemoteUser, RoomState, TakeOver
from .effects import Broadcast, ClaimNick, Deliver, Disconnect, Effect, Persist, Publish
from .replay import RecentHistory
from .resend import SentMessages
from .sessions import Room, Session, SessionState

__all__ = ["ClusterRules"]

P = TypeVar("P")

logger = logging.getLogger("anychat.cluster")


class ClusterRules(BrokerPart[P]):
    """Remote events, remote members, and the requests only a shared bus makes."""

    bus: Bus
    recent: RecentHistory
    sent: SentMessages
    _lobbies: frozenset[str]
    _clock: Callable[[], float]
    server_name: str
    #: Rooms (folded) whose settings are being read a second time for a join (see
    #: :meth:`_open_shared`).
    _read_again: set[str]

    if TYPE_CHECKING:  # (InfoRules has it, after this class in the broker's bases)

        def _topic_of(self, room: Room[P], ref: m.Ref) -> m.RoomTopic: ...

    def disconnect(self, peer: P, reason: str = "") -> list[Effect[P]]:
        raise NotImplementedError

    def _leave(self, session: Session[P], room: Room[P]) -> None:
        raise NotImplementedError

    if TYPE_CHECKING:  # (OperatorRules has it, after this class in the broker's bases)

        def _kick_of(
            self, session: Session[P], cmd: m.Kick, room: Room[P], nick: str | None, member: bool
        ) -> m.Kicked | list[Effect[P]]: ...

    # ------------------------------------------------------------------ asking first

    def _claim_first(self, session: Session[P], cmd: m.Command, nick: str) -> list[Effect[P]]:
        """A ``ClaimNick`` request when only the bus can tell whether ``nick`` is free.

        Empty when the local rules answer (the nick is held here, invalid, or registered to
        someone else) or the bus already knows (this node holds it, or another node does). A
        session of another node logged in to this session's account holds it: that one is
        taken over (the request asks its node to close it first).
        """
        key = m.casefold(nick)
        if key in self._nicks or not m.valid_nick(nick):
            return []
        if self.bus.is_registered(key) and session.account != key:
            return []
        holder = self.bus.directory.users.get(key)
        if holder is not None:
            if session.account == key and holder.account == key:
                return [ClaimNick(session.peer, key, cmd, take_from=holder.node)]
            return []
        if not self.bus.must_ask(key):
            return []
        return [ClaimNick(session.peer, key, cmd)]

    def _claimed(self, peer: P, nick: str, effects: list[Effect[P]]) -> list[Effect[P]]:
        """After a won claim ran its command: give the nick back if nobody here uses it."""
        if nick not in self._nicks:  # (another session of this node may hold it: still ours)
            self.bus.release_nick(nick)
        return effects

    # ------------------------------------------------------------------ telling others

    def _tell(self, event: BusEvent, room: str = "") -> list[Effect[P]]:
        return [Publish(room, event)] if self.bus.shared else []

    @staticmethod
    def _present(session: Session[P]) -> Present:
        return Present(
            nick=session.nick,
            user=session.user,
            realname=session.realname,
            account=session.account,
            since=session.since,
        )

    def _tell_account(self, peer: P) -> list[Effect[P]]:
        """The other nodes' directories learn an active session's account, now changed (a
        login there may take its nick over: only from a session of the same account)."""
        session = self._sessions[peer]
        if not self.bus.shared or session.state is not SessionState.ACTIVE:
            return []
        return self._tell(self._present(session))

    def numbered(self, sent: Broadcast[P], msg_id: int) -> list[Effect[P]]:
        """A message of this node has its id (and the other nodes have it): deliver it to the
        members here (a private one to its recipient, if here), store it, ack it. It was
        accepted already, so it goes to whoever is in the room now, even if its sender left
        meanwhile (the others heard it too)."""
        msg = dataclasses.replace(sent.message, id=msg_id)
        msg = self.sent.said(sent.peer, sent.then, msg)
        ack = m.Ack(id=msg_id, time=msg.time, target=msg.target, ref=sent.then.ref)
        persist: Persist[P] = Persist(msg, sent.peer, ack)
        if not sent.room:
            other = None if sent.node else self._nicks.get(m.casefold(msg.target))
            return [persist] if other is None else [Deliver(msg, (other.peer,)), persist]
        self.recent.remember(msg)
        room = self._rooms.get(sent.room)
        if room is None:
            return [persist]
        return [Deliver(msg, room.members, skip=sent.peer), persist]

    def not_numbered(self, sent: Broadcast[P], why: m.Error) -> list[Effect[P]]:
        """The bus could not number (and publish) a room message: its sender is told."""
        if sent.peer not in self._sessions:
            return []
        return [Deliver(dataclasses.replace(why, ref=sent.then.ref), (sent.peer,))]

    # ------------------------------------------------------------------ one room, many nodes

    def _elsewhere(self, key: str) -> dict[str, RemoteUser]:
        """The members of room ``key`` (folded) on other nodes, by folded nick."""
        if not self.bus.shared:
            return {}
        return self.bus.directory.rooms.get(key, {})

    def _open_shared(self, room: Room[P], key: str) -> bool | m.Error | None:
        """This node opens ``room``: whether it has members on other nodes (then it is not
        new: nobody here becomes its operator), and if so its settings, as Redis had them
        when this node began to listen to it (:mod:`anychat.roomstate`). Without them (Redis
        out of reach, or it lost them) the join is refused: a room's rules are not guessed.

        ``None``: read them once more first. The read may have come before the room's creator
        on another node wrote them, and the directory heard of its members after the read (the
        creator writes the settings before it announces a member, so a read made after the
        announcement finds them)."""
        state = self.bus.take_room_state(key)  # (read for this join only: used up either way)
        elsewhere = self._elsewhere(key)
        again = key in self._read_again
        self._read_again.discard(key)
        if not elsewhere:
            return False
        try:
            if self.bus.reachable and roomstate.load(room, state, elsewhere.keys()):
                return True
        except ValueError as exc:
            logger.warning("room %s: %s", room.name, exc)
        else:
            if not state and not again and self.bus.reachable:
                self._read_again.add(key)
                return None
        logger.warning(
            "room %s has members elsewhere but no settings here: join refused", room.name
        )
        return unavailable("join rooms of other nodes")

    def _cut_off(self, room: Room[P]) -> bool:
        """Whether ``room`` has members on other nodes that cannot hear of a change now."""
        return (
            self.bus.shared
            and not self.bus.reachable
            and bool(self._elsewhere(m.casefold(room.name)))
        )

    def _save_room(self, room: Room[P]) -> None:
        """The settings of ``room`` changed here: the copy other nodes open it from, too."""
        if self.bus.shared:
            self.bus.save_room(m.casefold(room.name), roomstate.dump(room, self._nick_of))

    def _nick_of(self, peer: P) -> str:
        return self._sessions[peer].nick

    def restate_rooms(self) -> list[Effect[P]]:
        """The bus (re)connected. A room open here that has members elsewhere settles with the
        settings Redis has for it: if the room there was made later than this node's (the
        others made it anew while they could not see this node: Redis restarted empty, or a
        partition longer than the lease), this node's win, go to Redis and to the other nodes
        (``RoomState``), as on IRC the older channel wins a netsplit; otherwise the cluster's
        win here (this node refused changes while cut off, but may have opened the room
        meanwhile knowing no better). Members hear what changed. Every other room's settings
        go to Redis (this node's are the room's; for a room with members elsewhere only if
        Redis lost them)."""
        read = self.bus.take_connect_states()
        effects: list[Effect[P]] = []
        for key, room in self._rooms.items():
            elsewhere = self._elsewhere(key)
            state = read.get(key, "")
            mine = roomstate.dump(room, self._nick_of)
            if not (elsewhere and state):
                self.bus.save_room(key, mine, only_if_missing=bool(elsewhere))
                continue
            try:
                older = room.channel.created < roomstate.created(state)
            except ValueError as exc:
                logger.warning("room %s: %s", room.name, exc)
                older = True
            if older:
                self.bus.save_room(key, mine)
                effects += self._tell(RoomState(room=room.name, state=mine), key)
            else:
                effects += self._adopt(room, state)
        return effects

    def _adopt(self, room: Room[P], state: str) -> list[Effect[P]]:
        """``room`` takes ``state`` as its settings; its members here hear what changed."""
        topic = room.topic, room.topic_setter
        elsewhere = self._elsewhere(m.casefold(room.name))
        try:
            changes = roomstate.adopt(room, state, elsewhere.keys(), self._nick_of)
        except (ValueError, KeyError) as exc:
            logger.warning("room %s: %s", room.name, exc)
            return []
        room.listing = None
        effects: list[Effect[P]] = []
        if changes:
            changed = m.ModeChanged(room=room.name, by=self.server_name, changes=tuple(changes))
            effects.append(Deliver(changed, room.members))
        if (room.topic, room.topic_setter) != topic:
            effects.append(Deliver(self._topic_of(room, None), room.members))
        return effects

    def _older_room_heard(self, event: RoomState) -> list[Effect[P]]:
        """A node that had ``event.room`` before this one made it anew tells its settings: they
        win here too, if that room really is the older one."""
        room = self._rooms.get(m.casefold(event.room))
        if room is None:
            return []
        try:
            if roomstate.created(event.state) >= room.channel.created:
                return []
        except ValueError as exc:
            logger.warning("room %s: %s", room.name, exc)
            return []
        return self._adopt(room, event.state)

    def _kick_remote(self, session: Session[P], room: Room[P], cmd: m.Kick) -> list[Effect[P]]:
        """An operator here kicks a member of another node: everyone here hears it, then that
        node (which removes the member) and every other one."""
        user = self._remote_user(cmd.nick)
        member = user is not None and m.casefold(room.name) in user.rooms
        kicked = self._kick_of(session, cmd, room, None if user is None else user.nick, member)
        if not isinstance(kicked, m.Kicked):
            return kicked
        assert user is not None
        self.bus.directory.apply(user.node, kicked)
        if room.channel.forget_remote(m.casefold(user.nick)):
            self._save_room(room)
        room.listing = None
        return [
            Deliver(kicked, room.members, skip=session.peer),
            Deliver(dataclasses.replace(kicked, ref=cmd.ref), (session.peer,)),
            *self._tell(kicked),
        ]

    # ------------------------------------------------------------------ what others see

    def _remote_members(self, room: Room[P]) -> tuple[m.Member, ...]:
        if not self.bus.shared:
            return ()
        local = self._nicks
        chan = room.channel
        return tuple(
            m.Member(
                nick=u.nick,
                status=chan.remote_status(key),
                user=u.user,
                realname=u.realname,
                account=u.account,
            )
            for key, u in self.bus.directory.rooms.get(m.casefold(room.name), {}).items()
            if key not in local
        )

    def _remote_user(self, nick: str) -> RemoteUser | None:
        if not self.bus.shared:
            return None
        return self.bus.directory.users.get(m.casefold(nick))

    # ------------------------------------------------------------------ hearing others

    def remote(self, node: str, event: BusEvent) -> list[Effect[P]]:
        """What another node said: keep the directory current, tell the local members."""
        directory = self.bus.directory
        effects: list[Effect[P]] = []
        match event:
            case m.Message():
                if m.is_room(event.target):
                    room = self._rooms.get(m.casefold(event.target))
                    self.recent.remember(event)
                    if room is not None:
                        effects.append(Deliver(event, room.members))
                else:
                    session = self._nicks.get(m.casefold(event.target))
                    if session is not None:
                        effects.append(Deliver(event, (session.peer,)))
            case m.RoomTopic():
                room = self._rooms.get(m.casefold(event.room))
                if room is not None and self._may_change(room, event.setter, "t"):
                    room.topic, room.topic_setter, room.topic_time = (
                        event.text,
                        event.setter,
                        event.time,
                    )
                    effects.append(Deliver(event, room.members))
            case m.Kicked() if m.casefold(event.nick) in self._nicks:
                effects += self._kicked_here(event)
            case m.Joined() | m.Parted() | m.Kicked():
                key = m.casefold(event.nick)
                if key not in self._nicks:  # a stale event about a nick now ours: ignored
                    room = self._rooms.get(m.casefold(event.room))
                    if room is not None:
                        effects.append(Deliver(event, room.members))
                        if isinstance(event, m.Joined):
                            room.channel.invited.discard(key)  # used up there
                        else:
                            room.channel.forget_remote(key)
                    directory.apply(node, event)
                    if room is not None and not isinstance(event, m.Joined):
                        self._kept_here(room)
            case m.Quitted() | m.NickChanged():
                key = m.casefold(event.nick if isinstance(event, m.Quitted) else event.old)
                user = directory.users.get(key)
                if user is not None and user.node == node:
                    audience = self._local_audience(user.rooms)
                    if audience:
                        effects.append(Deliver(event, audience))
                    self._remote_statuses(user.rooms, key, event)
                    rooms = list(user.rooms)
                    directory.apply(node, event)
                    for name in rooms if isinstance(event, m.Quitted) else ():
                        if (room := self._rooms.get(name)) is not None:
                            self._kept_here(room)
            case m.ModeChanged():
                effects += self._modes_heard(event)
            case RoomState():
                effects += self._older_room_heard(event)
            case m.Invited():
                effects += self._invite_heard(event)
            case Present():
                if m.casefold(event.nick) not in self._nicks:
                    directory.apply(node, event)
            case TakeOver():
                session = self._nicks.get(m.casefold(event.nick))
                if session is not None and session.account and session.account == event.account:
                    bye = m.Bye(
                        code=m.ErrorCode.LOGGED_IN_ELSEWHERE, reason="logged in from elsewhere"
                    )
                    effects += [
                        *self.disconnect(session.peer, bye.reason),
                        Disconnect(session.peer, bye),
                    ]
            case _:
                pass
        return effects

    def _kept_here(self, room: Room[P]) -> None:
        """Another node's last member of ``room`` left: this node's are the room now. Its
        copy goes to Redis again if it is missing (that node may have deleted it, not knowing
        of the members here yet)."""
        key = m.casefold(room.name)
        if not self._elsewhere(key):
            self.bus.save_room(key, roomstate.dump(room, self._nick_of), only_if_missing=True)

    def _kicked_here(self, kicked: m.Kicked) -> list[Effect[P]]:
        """An operator on another node kicked a member of this one: the room's members here,
        the kicked one included, hear it before it leaves."""
        session = self._nicks[m.casefold(kicked.nick)]
        room = session.rooms.get(m.casefold(kicked.room))
        if room is None or not self._may_change(room, kicked.by):
            return []  # it left meanwhile (or the kicker is no operator as this node knows)
        # The kicked member hears it on its own (so its codec learns that it left, as in
        # OperatorRules._kick).
        effects: list[Effect[P]] = [
            Deliver(kicked, room.members, skip=session.peer),
            Deliver(kicked, (session.peer,)),
        ]
        self._leave(session, room)
        return effects

    def _remote_statuses(self, rooms: Iterable[str], key: str, event: m.Event) -> None:
        """A member of another node quit or changed nick: its statuses go, or go with it."""
        for name in rooms:
            room = self._rooms.get(name)
            if room is None:
                continue
            if isinstance(event, m.NickChanged):
                room.channel.rename_remote(key, m.casefold(event.new))
            else:
                room.channel.forget_remote(key)
            room.listing = None

    def _modes_heard(self, changed: m.ModeChanged) -> list[Effect[P]]:
        """An operator on another node changed a room's modes: the same here, in the order
        Redis published the changes (the setter was checked there)."""
        room = self._rooms.get(m.casefold(changed.room))
        if room is None or not self._may_change(room, changed.by):
            return []
        changes = []
        elsewhere = self._elsewhere(m.casefold(changed.room))
        for change in changed.changes:
            if change.mode in m.STATUS_MODES:
                key = m.casefold(change.arg)
                here = self._nicks.get(key)
                if (here is None and key not in elsewhere) or (
                    here is not None and here.peer not in room.members
                ):
                    continue  # no member (any more): a status is for members only
            changes.append(change)

        def find(nick: str) -> P | None:
            here = self._nicks.get(m.casefold(nick))
            return None if here is None else here.peer

        room.channel.apply_heard(changes, setter=changed.by, now=self._clock(), find=find)
        room.listing = None
        return [Deliver(changed, room.members)]

    def _invite_heard(self, invited: m.Invited) -> list[Effect[P]]:
        """Someone on another node invited a user of this one (or of a third): the room here
        lets them in, and the invited user hears of it."""
        room = self._rooms.get(m.casefold(invited.room))
        if room is not None:
            if m.casefold(invited.by) not in self._elsewhere(m.casefold(invited.room)):
                return []  # only a member invites (its node checked; this one checks too)
            if "i" not in room.channel.modes or self._may_change(room, invited.by):
                room.channel.invited.add(m.casefold(invited.nick))
        session = self._nicks.get(m.casefold(invited.nick))
        return [] if session is None else [Deliver(invited, (session.peer,))]

    def _may_change(self, room: Room[P], nick: str, lock: str = "") -> bool:
        """Whether ``nick``, of another node, may change ``room`` (an operator there, as this
        node knows; with ``lock``, anyone while the room lacks that mode). Its node checked
        already: this keeps a node that disagrees from taking what it would not allow."""
        if lock and lock not in room.channel.modes:
            return True
        if m.casefold(nick) in room.channel.remote_ops:
            return True
        logger.warning("room %s: ignored a change by %s, no operator of it here", room.name, nick)
        return False

    def users_gone(self, users: Iterable[RemoteUser], reason: str = "node lost") -> list[Effect[P]]:
        """Users of other nodes are gone (their node stopped renewing its lease, or was not in
        the directory read after an outage): they quit, for everyone here who saw them."""
        effects: list[Effect[P]] = []
        directory = self.bus.directory
        touched: set[str] = set()
        for user in list(users):
            quitted = m.Quitted(nick=user.nick, reason=reason, user=user.user)
            audience = self._local_audience(user.rooms)
            if audience:
                effects.append(Deliver(quitted, audience))
            self._remote_statuses(user.rooms, m.casefold(user.nick), quitted)
            touched.update(user.rooms)
            directory.apply(user.node, quitted)
        # Their node cannot update the rooms' copies in Redis any more: the nodes left do.
        for key in touched:
            room = self._rooms.get(key)
            if room is not None:
                self._save_room(room)
        return effects

    def nick_lost(self, nick: str) -> list[Effect[P]]:
        """The bus found ``nick`` (folded) owned by another node (after an outage long enough
        for its lease to lapse): the local holder must go, so only one holds it."""
        session = self._nicks.get(nick)
        if session is None:
            return []
        bye = m.Bye(
            code=m.ErrorCode.NICK_IN_USE,
            reason=f"nick {session.nick} was taken on another node while this one was cut off",
        )
        return [*self.disconnect(session.peer, bye.reason), Disconnect(session.peer, bye)]

    def _local_audience(self, rooms: Iterable[str]) -> set[P]:
        audience: set[P] = set()
        for key in rooms:
            room = self._rooms.get(key)
            if room is not None:
                audience.update(room.members)
        return audience
