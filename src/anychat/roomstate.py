"""A room's settings as the nodes of a cluster share them: one JSON value in Redis (pure).

On one node a room's modes, key, limit, bans, invites, topic and operators live in its
:class:`~anychat.rooms.Channel` and nowhere else. In a cluster the room is one room whatever
node its members are on, so those settings must be the same on every node. Each node that has
members keeps the whole of them in memory (changes made on another node arrive as
``ModeChanged``/``RoomTopic``/``Invited`` events, and after a netsplit as ``RoomState``, and
are applied in the order Redis published them), and every node that changes them also writes
them whole to Redis (``anychat:chan:<folded room>``), where a node that opens the room (its
first member there joins a room that has members elsewhere) reads them, right after
subscribing to the room's channel, before that first join is checked against them.

Operators and voices are kept by folded nick (sessions are per node); a snapshot's are taken
only for nicks that are members now (a stale snapshot must not hand status to a newcomer).
"""

from __future__ import annotations

import json
import math
from collections.abc import Callable, Collection, Iterable
from typing import Any, TypeVar

from . import model as m
from .sessions import Room

__all__ = ["adopt", "created", "dump", "identity", "load"]

P = TypeVar("P")


def dump(room: Room[P], nick_of: Callable[[P], str]) -> str:
    """Everything the other nodes need of ``room``'s settings, as JSON; ``nick_of`` gives the
    nick of a session here."""
    chan = room.channel
    return json.dumps(
        {
            "created": chan.created,
            "modes": "".join(sorted(chan.modes)),
            "key": chan.key,
            "limit": chan.limit,
            "bans": [[b.mask, b.setter, b.time] for b in chan.bans],
            "invited": sorted(chan.invited),
            "ops": sorted({m.casefold(nick_of(p)) for p in chan.ops} | chan.remote_ops),
            "voiced": sorted({m.casefold(nick_of(p)) for p in chan.voiced} | chan.remote_voiced),
            "topic": [room.topic, room.topic_setter, room.topic_time],
        },
        separators=(",", ":"),
    )


def identity(room: Room[Any]) -> str:
    """How :func:`dump` of this room (and of no room created at another time) begins."""
    return '{"created":' + json.dumps(room.channel.created) + ","


def created(data: str) -> float:
    """When the room a snapshot describes was made (``ValueError`` if it is broken)."""
    try:
        return _finite(json.loads(data)["created"])
    except (ValueError, TypeError, KeyError, RecursionError, OverflowError) as exc:
        raise ValueError(f"bad room snapshot: {exc}") from None


def load(room: Room[Any], data: str | bytes | None, members: Collection[str]) -> bool:
    """Set ``room``'s settings from a snapshot (``members``: the folded nicks in the room on
    other nodes); whether there was a usable one (if not, the room keeps its defaults)."""
    if not data:
        return False
    try:
        obj = json.loads(data)
        modes = str(obj["modes"])
        bans = [m.Ban(mask=str(a), setter=str(b), time=float(c)) for a, b, c in obj["bans"]]
        topic, setter, when = obj["topic"]
        state = (
            _finite(obj["created"]),
            str(obj["key"]),
            int(obj["limit"]),
            _nicks(obj["invited"]),
            _nicks(obj["ops"]) & set(members),
            _nicks(obj["voiced"]) & set(members),
            (str(topic), str(setter), _finite(when)),
        )
        if not 0 <= state[2] < 1_000_000:
            raise ValueError(f"limit {state[2]}")
        for ban in bans:
            _finite(ban.time)
    except (ValueError, TypeError, KeyError, RecursionError, OverflowError) as exc:
        raise ValueError(f"bad room snapshot: {exc}") from None
    chan = room.channel
    chan.modes = {c for c in modes if c in m.FLAG_MODES}
    chan.bans = bans[: m.MAX_BANS]
    chan.created, chan.key, chan.limit, chan.invited = state[:4]
    chan.remote_ops, chan.remote_voiced = state[4], state[5]
    room.topic, room.topic_setter, room.topic_time = state[6]
    return True


def adopt(
    room: Room[P], data: str, members: Collection[str], nick_of: Callable[[P], str]
) -> list[m.ModeChange]:
    """Take the cluster's settings for a room this node had open while cut off from the
    others (it may have opened it then, knowing no better): those of the snapshot win, and a
    member here has the statuses the snapshot gives its nick, no others. Returns the changes
    its members here must hear of (flags, key, limit, statuses); ``ValueError`` if broken."""
    chan = room.channel
    modes, key, limit = set(chan.modes), chan.key, chan.limit
    here = {peer: m.casefold(nick_of(peer)) for peer in room.members}
    ops, voiced = set(chan.ops), set(chan.voiced)
    if not load(room, data, members):
        return []
    obj = json.loads(data)
    kept_ops, kept_voiced = _nicks(obj["ops"]), _nicks(obj["voiced"])
    chan.ops = {peer for peer, nick in here.items() if nick in kept_ops}
    chan.voiced = {peer for peer, nick in here.items() if nick in kept_voiced}
    changes = [m.ModeChange(mode=c, on=c in chan.modes) for c in sorted(modes ^ chan.modes)]
    if chan.key != key:
        changes.append(m.ModeChange(mode="k", on=bool(chan.key), arg=chan.key or "*"))
    if chan.limit != limit:
        changes.append(m.ModeChange(mode="l", on=bool(chan.limit), arg=str(chan.limit or "")))
    for letter, before, after in (("o", ops, chan.ops), ("v", voiced, chan.voiced)):
        changes += [m.ModeChange(mode=letter, on=False, arg=nick_of(p)) for p in before - after]
        changes += [m.ModeChange(mode=letter, arg=nick_of(p)) for p in after - before]
    return changes


def _finite(value: Any) -> float:
    number = float(value)
    if not math.isfinite(number):
        raise ValueError(f"{value!r} is not a time")
    return number


def _nicks(values: Iterable[Any]) -> set[str]:
    return {m.casefold(v) for v in values if isinstance(v, str)}
