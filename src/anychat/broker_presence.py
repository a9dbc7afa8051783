"""The broker's rules for presence: away, real names, accounts, and watched nicks.

A mixin of :class:`~anychat.broker.Broker` (as :mod:`anychat.broker_info` is), kept apart so each
module stays small; it uses only the broker state declared below. Whoever shares a room with a
session hears when it goes away or comes back, logs in or changes its real name (each codec
decides whether to show it: IRC only to clients that asked for ``away-notify``,
``account-notify`` or ``setname``). A watch list (IRC ``MONITOR``) tells its owner when a nick
comes online or goes offline, whether or not they share a room.
"""

from __future__ import annotations

import dataclasses
import re
from collections.abc import Callable
from functools import partial
from typing import Final, TypeVar

from . import model as m
from .broker_base import BrokerPart
from .effects import Deliver, Effect
from .sessions import NO_WATCHES, Session, SessionState

__all__ = ["REALNAME_LENGTH", "PresenceRules", "clean_realname", "tags_problem"]

P = TypeVar("P")

#: Real names (IRC ``USER``, ``SETNAME``) are free text without controls, bounded.
REALNAME_LENGTH: Final = 100
_CONTROLS: Final = re.compile("[\x00-\x1f\x7f-\x9f\u202a-\u202e\u2066-\u2069\ud800-\udfff]")
_UNSENDABLE: Final = re.compile("[\x00\r\n\ud800-\udfff]")


def clean_realname(text: str) -> str:
    """A real name as everyone sees it: controls and bidi overrides removed, bounded."""
    return _CONTROLS.sub("", text)[:REALNAME_LENGTH]


def tags_problem(tags: str) -> str:
    """Why client-only tags (escaped, ``+a=b;+c``) may not be relayed ("" = they may)."""
    if len(tags) > m.MAX_CLIENT_TAGS:
        return f"client tags longer than {m.MAX_CLIENT_TAGS} bytes"
    if " " in tags or _UNSENDABLE.search(tags):
        return "client tags must be escaped (no spaces, line breaks or NUL)"
    return ""


class PresenceRules(BrokerPart[P]):
    """Away, SETNAME, account changes and watch lists (mixed into the broker)."""

    _clock: Callable[[], float]
    #: Folded nick -> the peers watching it.
    _watchers: dict[str, set[P]]

    def _audience(self, session: Session[P]) -> set[P]:
        raise NotImplementedError

    def _host(self, session: Session[P]) -> str:
        raise NotImplementedError

    def _others(self, session: Session[P]) -> set[P]:
        audience = self._audience(session)
        audience.discard(session.peer)
        return audience

    # ------------------------------------------------------------------ away, names, accounts

    def _away(self, session: Session[P], cmd: m.Away) -> list[Effect[P]]:
        if len(cmd.text) > m.MAX_TOPIC_LENGTH:
            problem = f"away message longer than {m.MAX_TOPIC_LENGTH} characters"
            return self._refuse(session, cmd, m.ErrorCode.BAD_COMMAND, problem)
        if _UNSENDABLE.search(cmd.text):
            problem = "away message may not contain line breaks or NUL"
            return self._refuse(session, cmd, m.ErrorCode.BAD_COMMAND, problem)
        changed = session.away != cmd.text
        session.away = cmd.text
        session.relist()
        effects: list[Effect[P]] = [
            Deliver(m.AwayStatus(text=cmd.text, ref=cmd.ref), (session.peer,))
        ]
        others = self._others(session) if changed else set()
        if others:
            news = m.AwayChanged(nick=session.nick, text=cmd.text, user=session.user)
            effects.append(Deliver(news, others))
        return effects

    def _set_realname(self, session: Session[P], cmd: m.SetRealname) -> list[Effect[P]]:
        name = clean_realname(cmd.realname)
        if not name or name.isspace() or len(cmd.realname) > REALNAME_LENGTH:
            problem = f"a real name is 1 to {REALNAME_LENGTH} characters, without controls"
            return self._refuse(session, cmd, m.ErrorCode.BAD_COMMAND, problem)
        session.realname = name
        session.relist()
        news = m.RealnameChanged(nick=session.nick, realname=name, user=session.user)
        effects: list[Effect[P]] = [
            Deliver(
                m.RealnameChanged(nick=session.nick, realname=name, user=session.user, ref=cmd.ref),
                (session.peer,),
            )
        ]
        others = self._others(session)
        if others:
            effects.append(Deliver(news, others))
        return effects

    def _account_news(self, session: Session[P]) -> list[Effect[P]]:
        """Tell the people who share a room with an active session that its account changed."""
        others = self._others(session) if session.state is SessionState.ACTIVE else set()
        if not others:
            return []
        news = m.AccountChanged(nick=session.nick, account=session.account, user=session.user)
        return [Deliver(news, others)]

    # ------------------------------------------------------------------ tags without text

    def _tagmsg(self, session: Session[P], cmd: m.TagMsg) -> list[Effect[P]]:
        """Client-only tags (a typing notice...) to a room or a nick, by the rules of a message
        to it, and echoed to the sender (with the ref); nothing is stored."""
        problem = tags_problem(cmd.tags) or ("" if cmd.tags else "no client tags to send")
        if problem:
            return self._refuse(session, cmd, m.ErrorCode.BAD_COMMAND, problem)
        peer = session.peer
        tagged = m.Tagged(
            sender=session.nick,
            target=cmd.target,
            tags=cmd.tags,
            time=self._clock(),
            user=session.user,
            account=session.account,
        )
        if m.is_room(cmd.target):
            room = self._rooms.get(m.casefold(cmd.target))
            if room is None:
                code, text = m.ErrorCode.NO_SUCH_ROOM, f"no such room {cmd.target}"
                return self._refuse(session, cmd, code, text)
            refused = room.channel.send_problem(
                peer, peer in room.members, partial(self._host, session)
            )
            if refused:
                return self._refuse(session, cmd, *refused)
            tagged = dataclasses.replace(tagged, target=room.name)
            relay = Deliver(tagged, room.members, skip=peer)
        else:
            other = self._nicks.get(m.casefold(cmd.target))
            if other is None:
                text = f"no such nick {cmd.target}"
                return self._refuse(session, cmd, m.ErrorCode.NO_SUCH_NICK, text)
            relay = Deliver(tagged, (other.peer,))
        return [relay, Deliver(dataclasses.replace(tagged, ref=cmd.ref), (peer,))]

    # ------------------------------------------------------------------ watch lists

    def _watch(self, session: Session[P], cmd: m.Watch) -> list[Effect[P]]:
        peer = session.peer
        watching = session.watching
        if cmd.op == "+":
            if watching is NO_WATCHES:
                watching = session.watching = {}
            added: list[str] = []
            refused: list[str] = []
            for nick in cmd.nicks:
                key = m.casefold(nick)
                if not m.valid_nick(nick):
                    continue
                if key not in watching:
                    if len(watching) >= m.MAX_WATCHED:
                        refused.append(nick)
                        continue
                    watching[key] = nick
                    self._watchers.setdefault(key, set()).add(peer)
                added.append(nick)
            presence = self._presence_of(added, cmd.ref)
            return [Deliver(_with_refused(presence, refused), (peer,))]
        if cmd.op == "-":
            for nick in cmd.nicks:
                self._unwatch(peer, watching, m.casefold(nick))
            return []
        if cmd.op == "C":
            for key in list(watching):
                self._unwatch(peer, watching, key)
            return []
        if cmd.op == "L":
            return [Deliver(m.WatchList(nicks=tuple(watching.values()), ref=cmd.ref), (peer,))]
        if cmd.op == "S":
            return [Deliver(self._presence_of(list(watching.values()), cmd.ref), (peer,))]
        return self._refuse(session, cmd, m.ErrorCode.BAD_COMMAND, f"unknown watch op {cmd.op!r}")

    def _unwatch(self, peer: P, watching: dict[str, str], key: str) -> None:
        if watching.pop(key, None) is None:
            return
        peers = self._watchers.get(key)
        if peers is not None:
            peers.discard(peer)
            if not peers:
                del self._watchers[key]

    def _forget_watches(self, session: Session[P]) -> None:
        for key in list(session.watching):
            self._unwatch(session.peer, session.watching, key)

    def _presence_of(self, nicks: list[str], ref: m.Ref) -> m.Presence:
        online: list[str] = []
        users: list[str] = []
        offline: list[str] = []
        for nick in nicks:
            other = self._nicks.get(m.casefold(nick))
            if other is None:
                offline.append(nick)
            else:
                online.append(other.nick)
                users.append(other.user)
        return m.Presence(online=tuple(online), users=tuple(users), offline=tuple(offline), ref=ref)

    def _came(self, session: Session[P]) -> list[Effect[P]]:
        """``session`` now holds its nick: tell whoever watches it."""
        peers = self._watchers.get(m.casefold(session.nick))
        if not peers:
            return []
        news = m.Presence(online=(session.nick,), users=(session.user,))
        # One delivery each: IRC numerics name their recipient, so no rendering is shared.
        return [Deliver(news, (peer,)) for peer in peers]

    def _went(self, nick: str) -> list[Effect[P]]:
        """``nick`` is free again: tell whoever watches it."""
        peers = self._watchers.get(m.casefold(nick))
        if not peers:
            return []
        return [Deliver(m.Presence(offline=(nick,)), (peer,)) for peer in peers]


def _with_refused(presence: m.Presence, refused: list[str]) -> m.Presence:
    if not refused:
        return presence
    return m.Presence(
        online=presence.online,
        users=presence.users,
        offline=presence.offline,
        ref=presence.ref,
        refused=tuple(refused),
    )
