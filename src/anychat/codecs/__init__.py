"""Sans-IO codecs: bytes in, commands out; events in, bytes out.

A codec never touches a socket, a clock or an event loop, so the same objects serve the AnyIO
server, the AnyIO client, a blocking script, and tests without any I/O at all. Each connection
owns one server-side codec instance holding its parser state.
"""

from __future__ import annotations

from collections.abc import Hashable
from dataclasses import dataclass
from typing import TYPE_CHECKING, ClassVar, Protocol, TypeAlias

if TYPE_CHECKING:
    from ..model import Bye, Command, Event

__all__ = ["DEFAULT_MAX_LINE_BYTES", "Codec", "Inbound", "LocalReply"]

#: Long enough for any legal message in any codec, short enough to bound a slow-loris buffer.
DEFAULT_MAX_LINE_BYTES = 4096


@dataclass(frozen=True, slots=True)
class LocalReply:
    """Bytes a codec wants sent straight back to its own peer (help text, for instance).

    Lets a codec answer requests that need no broker, without doing any I/O itself.
    """

    data: bytes


Inbound: TypeAlias = "Command | LocalReply"


class Codec(Protocol):
    """The server side of one wire protocol, for one connection."""

    #: Short protocol name, used in logs and statistics ("text", "jsonl").
    name: ClassVar[str]

    @property
    def encoding_key(self) -> Hashable:
        """Codecs with equal keys turn any event into identical bytes, so the server encodes a
        fanned-out event once per key rather than once per recipient."""
        ...

    def feed(self, data: bytes) -> list[Inbound]:
        """Parse received bytes; returns every complete command (or complaint) so far."""
        ...

    def encode(self, event: Event) -> bytes:
        """Render one event for this peer (may be ``b""`` when the protocol has nothing to say)."""
        ...

    def greeting(self) -> list[Inbound]:
        """What happens as the connection opens, before any input: a person on nc is greeted
        and given a guest nick (an anonymous ``Hello``); protocols whose clients speak first
        return nothing."""
        ...

    def keepalive(self, token: str) -> bytes | None:
        """The bytes that ask a quiet peer to prove it is alive (IRC's ``PING``), or ``None``
        for a protocol without one (its quiet peers are left alone)."""
        ...

    def rest(self) -> None:
        """The connection goes idle (it is being parked): drop what only a busy one needs.
        Called on the event loop between reads, never while input is half parsed."""
        ...

    @property
    def hangup(self) -> Bye | None:
        """Set by the codec when the protocol ends the connection (IRC after a refused server
        password): the glue sends this goodbye as the last thing and closes."""
        ...
