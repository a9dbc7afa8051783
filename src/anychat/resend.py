"""Which messages were already said: idempotency keys, so a resend is stored and relayed once.

A client that loses its connection (or sees the server restart) cannot know whether its last
messages were stored: the ack may have been lost on the way. If it resends them, each resend
must be answered with the original message's ack instead of becoming a second message. Two
kinds of key identify a resend:

- an explicit ``key`` (:attr:`~anychat.model.Say.key`), remembered per nick, so it works across
  reconnects and, because keys are stored with the messages and reloaded at start, across a
  server restart;
- the ``ref`` of a ``say``, remembered per connection, for a client that repeats a request on
  the same connection: only a repeat of the same target, text and kind counts, so a client that
  reuses one ref for different messages loses nothing. Only refs the client chose count
  (:attr:`~anychat.model.Say.resend_by_ref`, JSON lines): IRC's are numbers the codec gives.

Memory is bounded: at most :data:`PER_SCOPE` keys per nick or connection, and
:data:`MAX_KEYS` in all (the least recently used nick loses its oldest keys first). A key that
has been forgotten makes a resend a new message again, so the bounds are far above what a
reconnecting client has in flight. Pure and synchronous, like the broker that owns it.
"""

from __future__ import annotations

import dataclasses
import re
from collections import OrderedDict
from collections.abc import Hashable, Iterable
from dataclasses import dataclass
from typing import Final, TypeVar

from . import model as m
from .effects import Deliver, Effect, Persist

__all__ = ["MAX_KEYS", "PER_SCOPE", "RecentKeys", "Sent", "SentMessages", "key_problem"]

#: Keys kept per nick (explicit keys) or per connection (refs).
PER_SCOPE: Final = 1000
#: Keys kept in all.
MAX_KEYS: Final = 100_000

_BAD_KEY: Final = re.compile("[\x00-\x1f\x7f\ud800-\udfff]")


def key_problem(key: str) -> str:
    """Why ``key`` cannot be an idempotency key ("" if it can)."""
    if not key or len(key) > m.MAX_KEY_LENGTH or _BAD_KEY.search(key):
        return f"key must have 1 to {m.MAX_KEY_LENGTH} characters and no control characters"
    return ""


@dataclass(frozen=True, slots=True)
class Sent:
    """What the original message's ack said, and what it was (to recognise a repeated ref)."""

    id: int
    time: float
    target: str
    #: For a ref: a hash of what was said (target, text, kind), to tell a repeat from a reuse.
    said: int = 0

    def ack(self, ref: m.Ref) -> m.Ack:
        return m.Ack(id=self.id, time=self.time, target=self.target, ref=ref)

    def original(self, sender: str, cmd: m.Say) -> m.Message:
        """The message as first said (the resend repeats its text)."""
        return m.Message(
            id=self.id,
            time=self.time,
            sender=sender,
            target=self.target,
            text=cmd.text,
            kind=cmd.kind,
            key=cmd.key,
        )


class RecentKeys:
    """Recently used keys per scope (a folded nick, or a connection), bounded in size."""

    def __init__(self, *, per_scope: int = PER_SCOPE, max_keys: int = MAX_KEYS) -> None:
        self.per_scope = per_scope
        self.max_keys = max_keys
        self._scopes: OrderedDict[Hashable, OrderedDict[str | int, Sent]] = OrderedDict()
        self._size = 0

    def __len__(self) -> int:
        return self._size

    def find(self, scope: Hashable, key: str | int) -> Sent | None:
        keys = self._scopes.get(scope)
        return None if keys is None else keys.get(key)

    def remember(self, scope: Hashable, key: str | int, sent: Sent) -> None:
        keys = self._scopes.get(scope)
        if keys is None:
            keys = self._scopes[scope] = OrderedDict()
        else:
            self._scopes.move_to_end(scope)
        if key in keys:
            self._size -= 1
        keys[key] = sent
        self._size += 1
        if len(keys) > self.per_scope:
            keys.popitem(last=False)
            self._size -= 1
        while self._size > self.max_keys:
            oldest_scope, oldest = next(iter(self._scopes.items()))
            oldest.popitem(last=False)
            self._size -= 1
            if not oldest:
                del self._scopes[oldest_scope]

    def forget(self, scope: Hashable, key: str | int) -> None:
        keys = self._scopes.get(scope)
        if keys is not None and keys.pop(key, None) is not None:
            self._size -= 1
            if not keys:
                del self._scopes[scope]

    def drop(self, scope: Hashable) -> None:
        """Forget a whole scope (a connection that closed)."""
        keys = self._scopes.pop(scope, None)
        if keys is not None:
            self._size -= len(keys)


P = TypeVar("P", bound=Hashable)


class SentMessages:
    """The broker's memory of said messages: explicit keys per nick, refs per connection."""

    def __init__(self, keys: RecentKeys | None = None) -> None:
        self.keys = keys or RecentKeys()

    def resend_of(self, nick: str, peer: Hashable, cmd: m.Say) -> Sent | None:
        """The original of ``cmd`` if it repeats a message said before, else ``None``."""
        if cmd.key is not None:
            return self.keys.find(("nick", m.casefold(nick)), cmd.key)
        if cmd.ref is None or not cmd.resend_by_ref:
            return None
        sent = self.keys.find(("conn", peer), cmd.ref)
        if sent is not None and sent.said != hash((cmd.target, cmd.text, cmd.kind)):
            return None  # the same ref for another message: a new message
        return sent

    def said(self, peer: Hashable, cmd: m.Say, msg: m.Message) -> m.Message:
        """Remember a new message (if it has a key or a ref); returns it, with its key."""
        if cmd.key is not None:
            msg = dataclasses.replace(msg, key=cmd.key)  # stored with it, for a restart
            scope: Hashable = ("nick", m.casefold(msg.sender))
            self.keys.remember(scope, cmd.key, Sent(msg.id, msg.time, msg.target))
        elif cmd.ref is not None and cmd.resend_by_ref:
            said = hash((cmd.target, cmd.text, cmd.kind))
            self.keys.remember(("conn", peer), cmd.ref, Sent(msg.id, msg.time, msg.target, said))
        return msg

    def closed(self, peer: Hashable) -> None:
        self.keys.drop(("conn", peer))

    def stored(self, messages: Iterable[m.Message]) -> None:
        """Learn the keys of stored messages (a restarted server, from its store)."""
        for msg in messages:
            if msg.key is not None:
                scope = ("nick", m.casefold(msg.sender))
                self.keys.remember(scope, msg.key, Sent(msg.id, msg.time, msg.target))

    def unstored(self, peer: Hashable, msg: m.Message, ref: m.Ref) -> None:
        """A message the store could not take: a resend must store it after all."""
        if msg.key is not None:
            self.keys.forget(("nick", m.casefold(msg.sender)), msg.key)
        elif ref is not None:
            self.keys.forget(("conn", peer), ref)

    def answer(self, nick: str, peer: P, cmd: m.Say) -> list[Effect[P]] | None:
        """The broker's answer to a ``say`` with a bad key, or one that repeats a message said
        before (its original ack; nothing relayed or stored); ``None`` for a new message."""
        if cmd.key is not None:
            problem = key_problem(cmd.key)
            if problem:
                error = m.Error(code=m.ErrorCode.BAD_COMMAND, text=problem, ref=cmd.ref)
                return [Deliver(error, (peer,))]
        sent = self.resend_of(nick, peer, cmd)
        if sent is None:
            return None
        return [Persist(sent.original(nick, cmd), peer, sent.ack(cmd.ref), resent=True)]

    def forget_unstored(self, failed: Iterable[Persist[P]]) -> None:
        """Messages the store could not take: their resends must be stored after all."""
        for effect in failed:
            if not effect.resent:
                self.unstored(effect.peer, effect.message, effect.ack.ref)
