"""The broker's rules for room operators: modes, kicks, invites, and the server's counts.

A mixin of :class:`~anychat.broker.Broker` (as :mod:`anychat.broker_slow` is), kept apart so each
module stays small; it uses only the broker state declared below. What each mode means lives in
:mod:`anychat.rooms`; this module decides who may change it and who hears about it.
"""

from __future__ import annotations

import dataclasses
import re
from collections.abc import Callable
from typing import Final, TypeVar

from . import model as m
from .broker_base import BrokerPart
from .bus import Bus, unavailable
from .bus.directory import BusEvent, RemoteUser
from .effects import Deliver, Effect
from .rooms import hostmask
from .sessions import Room, Session

__all__ = ["OperatorRules"]

P = TypeVar("P")

# Line breaks and NUL cannot cross line-based protocols (RFC 2812 §2.3.1), so no codec may let
# them into a message that another codec will have to render. Lone surrogates are no text at all
# (the codecs refuse them; this is the second line of defence for embedders and future codecs).
UNSENDABLE: Final = re.compile("[\x00\r\n\ud800-\udfff]")


def kick_reason_problem(reason: str) -> str:
    """Why a kick's reason cannot be sent (``""``: it can)."""
    if len(reason) > m.MAX_TOPIC_LENGTH or UNSENDABLE.search(reason):
        return f"a kick reason is at most {m.MAX_TOPIC_LENGTH} characters on one line"
    return ""


class OperatorRules(BrokerPart[P]):
    """Operator commands (mixed into the broker)."""

    server_name: str
    bus: Bus
    _clock: Callable[[], float]
    _max_users: int

    def _leave(self, session: Session[P], room: Room[P]) -> None:
        raise NotImplementedError

    def _tell(self, event: BusEvent, room: str = "") -> list[Effect[P]]:
        raise NotImplementedError

    def _elsewhere(self, key: str) -> dict[str, RemoteUser]:
        raise NotImplementedError

    def _remote_user(self, nick: str) -> RemoteUser | None:
        raise NotImplementedError

    def _save_room(self, room: Room[P]) -> None:
        raise NotImplementedError

    def _kick_remote(self, session: Session[P], room: Room[P], cmd: m.Kick) -> list[Effect[P]]:
        raise NotImplementedError

    def _cut_off(self, room: Room[P]) -> bool:
        raise NotImplementedError

    @staticmethod
    def _deliver_error(session: Session[P], cmd: m.Command, error: m.Error) -> list[Effect[P]]:
        return [Deliver(dataclasses.replace(error, ref=cmd.ref), (session.peer,))]

    def _host(self, session: Session[P]) -> str:
        return hostmask(session.nick, session.user, self.server_name)

    def _visible_room(self, session: Session[P], name: str) -> Room[P] | None:
        """The room ``name`` unless it is secret (+s) and ``session`` is not in it."""
        room = self._rooms.get(m.casefold(name))
        if room is None or (room.channel.secret and session.peer not in room.members):
            return None
        return room

    def _stats_of(self, ref: m.Ref) -> m.ServerStats:
        return m.ServerStats(
            users=len(self._nicks),
            unregistered=len(self._sessions) - len(self._nicks),
            rooms=len(self._rooms),
            max_users=self._max_users,
            ref=ref,
        )

    def _stats(self, session: Session[P], cmd: m.Stats) -> list[Effect[P]]:
        return [Deliver(self._stats_of(cmd.ref), (session.peer,))]

    def _op_room(self, session: Session[P], cmd: m.Mode | m.Kick, name: str) -> Room[P] | m.Error:
        """The room an operator command is about; refusals in IRC's order (403, 442, 482)."""
        room = self._rooms.get(m.casefold(name))
        if room is None:
            return m.Error(code=m.ErrorCode.NO_SUCH_ROOM, text=f"no such room {name}", ref=cmd.ref)
        if session.peer not in room.members:
            return m.Error(
                code=m.ErrorCode.NOT_MEMBER, text=f"you are not in {room.name}", ref=cmd.ref
            )
        if not room.channel.is_op(session.peer):
            return m.Error(
                code=m.ErrorCode.NOT_OPERATOR,
                text=f"you are not an operator of {room.name}",
                ref=cmd.ref,
            )
        if self._cut_off(room):
            return dataclasses.replace(unavailable("change rooms shared with them"), ref=cmd.ref)
        return room

    def _mode(self, session: Session[P], cmd: m.Mode) -> list[Effect[P]]:
        room = self._visible_room(session, cmd.room)
        peer = session.peer
        if room is None:
            return self._refuse(session, cmd, m.ErrorCode.NO_SUCH_ROOM, f"no such room {cmd.room}")
        chan = room.channel
        banlist = m.BanList(room=room.name, bans=tuple(chan.bans), ref=cmd.ref)
        if not cmd.changes:
            modes, args = chan.mode_string(peer in room.members)
            event = m.RoomModes(
                room=room.name, modes=modes, args=args, created=chan.created, ref=cmd.ref
            )
            return [Deliver(event, (peer,))]
        if all(c.mode in m.LIST_MODES and not c.arg for c in cmd.changes):
            return [Deliver(banlist, (peer,))]  # anyone may look at the ban list
        checked = self._op_room(session, cmd, cmd.room)
        if isinstance(checked, m.Error):
            return [Deliver(checked, (peer,))]

        elsewhere = self._elsewhere(m.casefold(room.name))

        def find(nick: str) -> tuple[P | None, str] | None:
            other = self._nicks.get(m.casefold(nick))
            if other is not None:
                return other.peer, other.nick
            remote = self._remote_user(nick)
            return None if remote is None else (None, remote.nick)

        applied, answers = chan.apply(
            cmd.changes,
            setter=session.nick,
            now=self._clock(),
            find=find,
            members=room.members,
            remote_members=elsewhere.keys(),
        )
        effects: list[Effect[P]] = [
            Deliver(banlist if a is None else dataclasses.replace(a, ref=cmd.ref), (peer,))
            for a in answers
        ]
        if applied:
            room.listing = None  # an operator or voice may have changed
            changed = m.ModeChanged(
                room=room.name, by=session.nick, changes=tuple(applied), user=session.user
            )
            effects.append(Deliver(changed, room.members, skip=peer))
            effects.append(Deliver(dataclasses.replace(changed, ref=cmd.ref), (peer,)))
            if self.bus.shared:
                self._save_room(room)
                effects += self._tell(changed, m.casefold(room.name))
        elif not answers:  # nothing to change: the setter still gets its answer
            changed = m.ModeChanged(room=room.name, by=session.nick, changes=(), ref=cmd.ref)
            effects.append(Deliver(changed, (peer,)))
        return effects

    def _kick(self, session: Session[P], cmd: m.Kick) -> list[Effect[P]]:
        room = self._op_room(session, cmd, cmd.room)
        if isinstance(room, m.Error):
            return [Deliver(room, (session.peer,))]
        other = self._nicks.get(m.casefold(cmd.nick))
        if other is None and self.bus.shared:
            return self._kick_remote(session, room, cmd)
        nick = None if other is None else other.nick
        kicked = self._kick_of(
            session, cmd, room, nick, other is not None and other.peer in room.members
        )
        if not isinstance(kicked, m.Kicked):
            return kicked
        assert other is not None
        # Everyone hears it, the kicked member included, before it leaves the member list.
        # The kicked member hears it on its own, so its codec may learn that it left.
        others = [p for p in room.members if p is not session.peer and p is not other.peer]
        effects: list[Effect[P]] = [
            Deliver(kicked, others),
            Deliver(dataclasses.replace(kicked, ref=cmd.ref), (session.peer,)),
        ]
        if other is not session:
            effects.append(Deliver(kicked, (other.peer,)))
        self._leave(other, room)
        return effects + self._tell(kicked)

    def _kick_of(
        self, session: Session[P], cmd: m.Kick, room: Room[P], nick: str | None, member: bool
    ) -> m.Kicked | list[Effect[P]]:
        """The kick of ``nick`` (as shown; ``None``: nobody has it) out of ``room``, or why
        not (IRC's order: 401, 441, then the reason)."""
        if nick is None:
            return self._refuse(session, cmd, m.ErrorCode.NO_SUCH_NICK, f"no such nick {cmd.nick}")
        if not member:
            return self._refuse(
                session, cmd, m.ErrorCode.TARGET_NOT_MEMBER, f"{nick} is not in {room.name}"
            )
        if problem := kick_reason_problem(cmd.reason):
            return self._refuse(session, cmd, m.ErrorCode.BAD_COMMAND, problem)
        return m.Kicked(
            room=room.name,
            nick=nick,
            by=session.nick,
            reason=cmd.reason or session.nick,
            user=session.user,
        )

    def _invite(self, session: Session[P], cmd: m.Invite) -> list[Effect[P]]:
        other = self._nicks.get(m.casefold(cmd.nick))
        remote = self._remote_user(cmd.nick) if other is None else None
        if other is None and remote is None:
            return self._refuse(session, cmd, m.ErrorCode.NO_SUCH_NICK, f"no such nick {cmd.nick}")
        nick = other.nick if other is not None else remote.nick if remote is not None else ""
        room = self._rooms.get(m.casefold(cmd.room))
        name = cmd.room
        if room is None and self._elsewhere(m.casefold(cmd.room)):
            return self._refuse(session, cmd, m.ErrorCode.NOT_MEMBER, f"you are not in {name}")
        if room is not None and self._cut_off(room):
            return self._deliver_error(
                session, cmd, unavailable("invite to rooms shared with them")
            )
        if room is not None:
            name = room.name
            if session.peer not in room.members:
                return self._refuse(session, cmd, m.ErrorCode.NOT_MEMBER, f"you are not in {name}")
            if (other is not None and other.peer in room.members) or (
                remote is not None and m.casefold(name) in remote.rooms
            ):
                return self._refuse(
                    session, cmd, m.ErrorCode.ALREADY_MEMBER, f"{nick} is already in {name}"
                )
            if "i" in room.channel.modes and not room.channel.is_op(session.peer):
                return self._refuse(
                    session, cmd, m.ErrorCode.NOT_OPERATOR, f"only operators invite to {name} (+i)"
                )
            room.channel.invited.add(m.casefold(nick))
            self._save_room(room)
        elif not m.valid_room(cmd.room):
            return self._refuse(session, cmd, m.ErrorCode.NO_SUCH_ROOM, f"no such room {cmd.room}")
        invited = m.Invited(room=name, nick=nick, by=session.nick, user=session.user)
        effects: list[Effect[P]] = [
            Deliver(dataclasses.replace(invited, ref=cmd.ref), (session.peer,)),
        ]
        if other is not None:
            effects.insert(0, Deliver(invited, (other.peer,)))
        if room is not None or other is None:
            # Every node: the invited user's hears of it, and those with the room open let
            # the invited nick in (they check that the inviter may invite).
            effects += self._tell(invited)
        if room is not None and len(room.members) > 1:
            # The other members may hear of it (IRC invite-notify); the inviter was answered.
            notice = dataclasses.replace(invited, notice=True)
            effects.append(Deliver(notice, room.members, skip=session.peer))
        return effects
