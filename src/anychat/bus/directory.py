"""Who is on the other nodes: a mirror each node keeps of every other node's users (pure).

A chat of several nodes must show every user everywhere: in member lists, WHO, WHOIS and NAMES,
and as a target for private messages. Each node tells the others about its own users (a user
registered, joined, parted, was renamed, quit) on the bus, and applies what it hears to a
:class:`Directory`, so the broker answers those questions synchronously, from memory. The same
structure records a node's own users for what it writes to Redis, where a node that starts (or
reconnects) reads the whole directory from.
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping
from dataclasses import dataclass, field
from typing import Any, TypeAlias

from .. import model as m

__all__ = ["BusEvent", "Directory", "Present", "RemoteUser", "RoomState", "TakeOver"]


@dataclass(frozen=True, slots=True, kw_only=True)
class Present:
    """A user registered on a node: the others may now message and WHOIS it."""

    nick: str
    user: str = ""
    realname: str = ""
    account: str = ""
    since: float = 0.0
    #: Set when a node restates its users after reconnecting: every room the user is in.
    rooms: tuple[str, ...] = ()


@dataclass(frozen=True, slots=True, kw_only=True)
class TakeOver:
    """To the node holding ``nick``: its owner logged in to ``account`` on another node, so
    the session here that holds it (logged in to the same account: a ghost, as a rule) goes."""

    nick: str
    account: str


@dataclass(frozen=True, slots=True, kw_only=True)
class RoomState:
    """To the nodes with members in ``room``: its settings are ``state``
    (:mod:`anychat.roomstate`), those of a node that had the room before the others made it
    anew while they could not see that node (a netsplit): the older room's win, as on IRC."""

    room: str
    state: str


#: What crosses the bus: chat events, the news of a registration, a take-over, a room's rules.
BusEvent: TypeAlias = "m.Event | Present | TakeOver | RoomState"


@dataclass(slots=True, kw_only=True)
class RemoteUser:
    """A user of another node, as this node knows it."""

    nick: str
    node: str
    user: str = ""
    realname: str = ""
    account: str = ""
    since: float = 0.0
    #: Folded room name -> the room's name as shown.
    rooms: dict[str, str] = field(default_factory=dict)

    def to_json(self) -> dict[str, Any]:
        return {
            "nick": self.nick,
            "user": self.user,
            "realname": self.realname,
            "account": self.account,
            "since": self.since,
            "rooms": sorted(self.rooms.values()),
        }

    @classmethod
    def from_json(cls, node: str, obj: Mapping[str, Any]) -> RemoteUser:
        """Raises ``ValueError`` (or ``TypeError``/``KeyError``) on a malformed entry."""
        nick = obj["nick"]
        if not isinstance(nick, str) or not m.valid_nick(nick):
            raise ValueError(f"bad nick {nick!r}")
        rooms = [r for r in obj.get("rooms", ()) if isinstance(r, str) and m.valid_room(r)]
        return cls(
            nick=nick,
            node=node,
            user=str(obj.get("user", "")),
            realname=str(obj.get("realname", "")),
            account=str(obj.get("account", "")),
            since=float(obj.get("since", 0.0)),
            rooms={m.casefold(r): r for r in rooms},
        )


class Directory:
    """Users by folded nick, and each room's members by folded nick."""

    def __init__(self) -> None:
        self.users: dict[str, RemoteUser] = {}
        self.rooms: dict[str, dict[str, RemoteUser]] = {}

    def members(self, room: str) -> Iterable[RemoteUser]:
        """The users of ``room`` (folded) that this directory knows."""
        return self.rooms.get(room, {}).values()

    def apply(self, node: str, event: BusEvent) -> None:
        """Record what ``node`` said about one of its users (other events change nothing)."""
        match event:
            case Present():
                key = m.casefold(event.nick)
                old = self.users.get(key)
                if old is not None and old.node != node:
                    self._remove(key)
                    old = None
                rooms = old.rooms if old is not None else {}
                if event.rooms:
                    if old is not None:
                        self._remove(key)
                    rooms = {m.casefold(r): r for r in event.rooms if m.valid_room(r)}
                self.users[key] = user = RemoteUser(
                    nick=event.nick,
                    node=node,
                    user=event.user,
                    realname=event.realname,
                    account=event.account,
                    since=event.since,
                    rooms=rooms,
                )
                for room in rooms:
                    self.rooms.setdefault(room, {})[key] = user
            case m.Joined():
                key = m.casefold(event.nick)
                found = self.users.get(key)
                if found is None or found.node != node:
                    self.apply(
                        node,
                        Present(
                            nick=event.nick,
                            user=event.user,
                            realname=event.realname,
                            account=event.account,
                        ),
                    )
                    found = self.users[key]
                room = m.casefold(event.room)
                found.rooms[room] = event.room
                self.rooms.setdefault(room, {})[key] = found
            case m.Parted() | m.Kicked():
                key, room = m.casefold(event.nick), m.casefold(event.room)
                found = self.users.get(key)
                if found is not None:
                    found.rooms.pop(room, None)
                self._leave(room, key)
            case m.Quitted():
                self._remove(m.casefold(event.nick))
            case m.NickChanged():
                old_key, new_key = m.casefold(event.old), m.casefold(event.new)
                found = self.users.pop(old_key, None)
                if found is None:
                    return
                found.nick = event.new
                self.users[new_key] = found
                for room in found.rooms:
                    members = self.rooms.setdefault(room, {})
                    members.pop(old_key, None)
                    members[new_key] = found
            case _:
                pass

    def drop_node(self, node: str) -> list[RemoteUser]:
        """Forget every user of ``node`` (it is gone); returns them."""
        gone = [u for u in self.users.values() if u.node == node]
        for user in gone:
            self._remove(m.casefold(user.nick))
        return gone

    def nodes(self) -> set[str]:
        return {u.node for u in self.users.values()}

    def replace(self, users: Iterable[RemoteUser]) -> None:
        """Start over from a snapshot (read from Redis)."""
        self.users.clear()
        self.rooms.clear()
        for user in users:
            key = m.casefold(user.nick)
            self.users[key] = user
            for room in user.rooms:
                self.rooms.setdefault(room, {})[key] = user

    def _remove(self, key: str) -> None:
        found = self.users.pop(key, None)
        if found is not None:
            for room in found.rooms:
                self._leave(room, key)

    def _leave(self, room: str, key: str) -> None:
        members = self.rooms.get(room)
        if members is not None:
            members.pop(key, None)
            if not members:
                del self.rooms[room]
