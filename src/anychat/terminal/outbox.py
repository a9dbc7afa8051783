"""The terminal client's messages that the server has not acknowledged yet, kept for a resend.

A connection can drop after a message went out and before its ack came back: the server may
have stored it or not, and the client cannot tell. Each message therefore carries an idempotency
key (unique to this run of the client), and stays here until its ack (or refusal) arrives.
After reconnecting, the session sends whatever is still here again with the same keys: the server
answers a message it already has with the original ack (:mod:`anychat.resend`), so each is
posted exactly once, whichever side of the server the connection broke on.
"""

from __future__ import annotations

import itertools
import secrets
from collections.abc import Iterable
from dataclasses import dataclass

from .. import model as m

__all__ = ["Outbox", "Unacked"]


@dataclass(frozen=True, slots=True)
class Unacked:
    """One message as it was sent (and must be sent again, unchanged)."""

    target: str
    text: str
    kind: m.Kind
    key: str


class Outbox:
    """Messages sent and not yet acknowledged, oldest first."""

    def __init__(self) -> None:
        # Keys are scoped per nick on the server: a random prefix keeps two runs of the client
        # under one nick from taking each other's messages for resends.
        self._prefix = secrets.token_urlsafe(12)
        self._count = itertools.count(1)
        self._held: dict[str, Unacked] = {}

    def add(self, target: str, texts: Iterable[str], kind: m.Kind) -> list[Unacked]:
        """Hold the pieces of one line, each with a new key, before they are sent."""
        pieces = [
            Unacked(target, text, kind, f"{self._prefix}-{next(self._count)}") for text in texts
        ]
        for piece in pieces:
            self._held[piece.key] = piece
        return pieces

    def settled(self, piece: Unacked) -> None:
        """The server answered ``piece`` (an ack or a refusal): nothing to resend."""
        self._held.pop(piece.key, None)

    def held(self) -> list[Unacked]:
        """What is still waiting for an answer, in the order it was said."""
        return list(self._held.values())

    def __len__(self) -> int:
        return len(self._held)
