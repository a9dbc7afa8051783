"""The broker's answers about rooms and people, and what a session says about itself.

WHO, LIST, WHOIS and TOPIC (asking and setting): a mixin of
:class:`~anychat.broker.Broker` (as :mod:`anychat.broker_ops` is), kept apart so each module stays
small; it uses only the broker state declared below. Secret rooms (+s) are hidden here from
whoever is not in them.
"""

from __future__ import annotations

import dataclasses
from typing import TypeVar

from . import model as m
from .broker_ops import UNSENDABLE, OperatorRules
from .bus import Bus, unavailable
from .effects import Deliver, Effect
from .sessions import Room, Session

__all__ = ["InfoRules", "free_text_problem", "with_ref"]

P = TypeVar("P")


class InfoRules(OperatorRules[P]):
    """Queries and topics (mixed into the broker)."""

    bus: Bus
    #: Member-list entries built so far: a room's size when its list is built afresh, one per
    #: join while it is kept (:attr:`Room.listing`). Tests read it to show that the work of a
    #: join storm grows with the number of joins, not with its square.
    listing_entries: int

    def rooms(self) -> list[Room[P]]:
        raise NotImplementedError

    def _remote_members(self, room: Room[P]) -> tuple[m.Member, ...]:
        raise NotImplementedError

    def _who(self, session: Session[P], cmd: m.Who) -> list[Effect[P]]:
        if cmd.room is None:
            room = self._my_room(session, None)
            if isinstance(room, m.Error):
                return [Deliver(with_ref(room, cmd.ref), (session.peer,))]
        else:
            found = self._visible_room(session, cmd.room)
            if found is None:
                return self._refuse(
                    session, cmd, m.ErrorCode.NO_SUCH_ROOM, f"no such room {cmd.room}"
                )
            room = found
        return [Deliver(self._members(room, cmd.ref), (session.peer,))]

    def _list_rooms(self, session: Session[P], cmd: m.ListRooms) -> list[Effect[P]]:
        rooms = tuple(
            m.RoomInfo(name=r.name, members=len(r.members), topic=r.topic)
            for r in self.rooms()
            if not r.channel.secret or session.peer in r.members
        )
        return [Deliver(m.RoomList(rooms=rooms, ref=cmd.ref), (session.peer,))]

    def _topic(self, session: Session[P], cmd: m.Topic) -> list[Effect[P]]:
        if cmd.text is None and cmd.room is not None:
            found = self._rooms.get(m.casefold(cmd.room))
            if found is None:
                return self._refuse(
                    session, cmd, m.ErrorCode.NO_SUCH_ROOM, f"no such room {cmd.room}"
                )
            return [Deliver(self._topic_of(found, cmd.ref), (session.peer,))]
        room = self._my_room(session, cmd.room)
        if isinstance(room, m.Error):
            return [Deliver(with_ref(room, cmd.ref), (session.peer,))]
        if cmd.text is None:  # the current room's topic
            return [Deliver(self._topic_of(room, cmd.ref), (session.peer,))]
        if "t" in room.channel.modes and not room.channel.is_op(session.peer):
            return self._refuse(
                session,
                cmd,
                m.ErrorCode.NOT_OPERATOR,
                f"only operators of {room.name} may set its topic (+t)",
            )
        problem = free_text_problem(cmd.text, "topic")
        if problem:
            return self._refuse(session, cmd, m.ErrorCode.BAD_COMMAND, problem)
        if self._cut_off(room):
            return self._deliver_error(session, cmd, unavailable("change rooms shared with them"))
        room.topic, room.topic_setter, room.topic_time = cmd.text, session.nick, self._clock()
        self._save_room(room)
        return [
            Deliver(self._topic_of(room, None), room.members, skip=session.peer),
            Deliver(self._topic_of(room, cmd.ref), (session.peer,)),
            *self._tell(self._topic_of(room, None), m.casefold(room.name)),
        ]

    def _whois(self, session: Session[P], cmd: m.Whois) -> list[Effect[P]]:
        other = self._nicks.get(m.casefold(cmd.nick))
        if other is None and (remote := self._remote_user(cmd.nick)) is not None:
            rooms = sorted(
                (
                    (k, name)
                    for k, name in remote.rooms.items()
                    if not ((r := self._rooms.get(k)) and r.channel.secret)
                    or session.peer in r.members
                ),
                key=lambda item: item[1],
            )
            key = m.casefold(remote.nick)
            info = m.UserInfo(
                nick=remote.nick,
                rooms=tuple(name for _, name in rooms),
                since=remote.since,
                ref=cmd.ref,
                statuses=tuple(
                    room.channel.remote_status(key) if (room := self._rooms.get(k)) else ""
                    for k, _ in rooms
                ),
                user=remote.user,
                realname=remote.realname,
                account=remote.account,
            )
            return [Deliver(info, (session.peer,))]
        if other is None:
            return self._refuse(session, cmd, m.ErrorCode.NO_SUCH_NICK, f"no such nick {cmd.nick}")
        shown = [
            r for r in other.rooms.values() if not r.channel.secret or session.peer in r.members
        ]
        info = m.UserInfo(
            nick=other.nick,
            rooms=tuple(r.name for r in shown),
            away=other.away,
            since=other.since,
            idle=max(0.0, self._clock() - (other.spoke or other.since)),
            ref=cmd.ref,
            statuses=tuple(r.channel.status(other.peer) for r in shown),
            user=other.user,
            realname=other.realname,
            account=other.account,
        )
        return [Deliver(info, (session.peer,))]

    @staticmethod
    def _topic_of(room: Room[P], ref: m.Ref) -> m.RoomTopic:
        return m.RoomTopic(
            room=room.name, text=room.topic, setter=room.topic_setter, time=room.topic_time, ref=ref
        )

    def _members(self, room: Room[P], ref: m.Ref) -> m.Members:
        """The room's members in join order (then those on other nodes), for ``ref``."""
        listing = room.listing
        if listing is None:
            chan = room.channel
            details = tuple(_entry(s, chan.status(peer)) for peer, s in room.members.items())
            self.listing_entries += len(details)
            nicks = tuple(d.nick for d in details)
            listing = room.listing = m.Members(room=room.name, nicks=nicks, details=details)
        if self.bus.shared:
            remote = self._remote_members(room)
            return m.Members(
                room=room.name,
                nicks=listing.nicks + tuple(d.nick for d in remote),
                ref=ref,
                details=listing.details + remote,
            )
        return listing if ref is None else dataclasses.replace(listing, ref=ref)

    def _listed(self, room: Room[P], session: Session[P]) -> None:
        """``session`` has just joined ``room``: add it to the room's kept member list (a copy
        of two tuples, no entry rebuilt), or leave the list to be built when asked for."""
        listing = room.listing
        if listing is None:
            return
        entry = _entry(session, room.channel.status(session.peer))
        self.listing_entries += 1
        # a + (b,) copies once; (*a, b) goes through a list: 1.6x the time at 5,000 members.
        room.listing = m.Members(
            room=listing.room,
            nicks=listing.nicks + (entry.nick,),  # noqa: RUF005
            details=listing.details + (entry,),  # noqa: RUF005
        )

    def _my_room(self, session: Session[P], name: str | None) -> Room[P] | m.Error:
        """The room ``name`` (or the current room) if the session is in it, else the error."""
        if name is None:
            if session.current is None:
                return m.Error(code=m.ErrorCode.NO_ROOM, text="you are not in a room")
            return session.current
        room = session.rooms.get(m.casefold(name))
        if room is not None:
            return room
        if m.casefold(name) in self._rooms:
            return m.Error(code=m.ErrorCode.NOT_MEMBER, text=f"you are not in {name}")
        return m.Error(code=m.ErrorCode.NO_SUCH_ROOM, text=f"no such room {name}")


def _entry(session: Session[P], status: str) -> m.Member:
    return m.Member(
        nick=session.nick,
        status=status,
        user=session.user,
        realname=session.realname,
        account=session.account,
        away=session.away,
    )


def free_text_problem(text: str, what: str) -> str:
    if len(text) > m.MAX_TOPIC_LENGTH:
        return f"{what} longer than {m.MAX_TOPIC_LENGTH} characters"
    if UNSENDABLE.search(text):
        return f"{what} may not contain line breaks or NUL"
    return ""


def with_ref(error: m.Error, ref: m.Ref) -> m.Error:
    return m.Error(code=error.code, text=error.text, ref=ref)
