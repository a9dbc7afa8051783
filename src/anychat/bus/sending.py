"""The cluster bus's own messages: handed to Redis, finished here in id order, and what a lost
connection leaves in doubt.

A mixin of :class:`~anychat.bus.redis.RedisBus` (as :mod:`anychat.bus.leases` is), kept apart
so each module stays small enough to hold in mind. A message goes out in the next batch script
(:meth:`Sending.broadcast`), comes back from Redis, and is finished here (delivered, stored,
acked) in the order :mod:`anychat.bus.numbering` keeps.

When the connection drops, what Redis answered was published: it is finished at once. What was
never written is refused at once (``cluster_unavailable``: not sent). A batch written but not
answered may or may not have run; its senders wait (at most :data:`DOUBT_SECONDS`) for the
next connection, which settles it in one atomic script (``RESOLVE``): every batch script of a
connection first checks that the node's fence key still holds that connection's token, and
records the first id it gave under a key of its own for :data:`~anychat.bus.scripts.RAN_MS`;
the new connection moves the fence to its own token (so nothing of the old one runs after
that) and reads those records. A batch that ran is finished here with its ids (the other nodes
showed it), one that did not is refused. If Redis lost the fence meanwhile (it restarted
empty, or was flushed) or is a different server now, that cannot be known: those senders are
refused too, and docs/scaling.md says what that means.
"""

from __future__ import annotations

import logging
import secrets
from collections.abc import Callable
from typing import Any, Final

import anyio

from .. import model as m
from ..effects import Broadcast
from . import unavailable, wire
from .numbering import Unnumbered
from .resp import RedisReplyError
from .scripts import fence_key, node_channel, ran_key, room_channel

__all__ = ["DOUBT_SECONDS", "Sending", "numbered_ops", "unavailable"]

logger = logging.getLogger("anychat.cluster")

#: How long the senders of a batch whose answer a lost connection took with it wait for the
#: next connection to tell whether it ran, before they are refused.
DOUBT_SECONDS: Final = 10.0


class Sending:
    """Numbered messages out, and back in order (mixed into the Redis bus)."""

    node: str
    connected: bool
    _ops: Any
    _unnumbered: Unnumbered
    _last_id: int
    _seen_id: int
    _prefix: str
    on_numbered: Callable[[Broadcast[Any], int], None]
    on_unnumbered: Callable[[Broadcast[Any], m.Error], None]
    on_flush: Callable[[], None]

    def _queue(self, op: str, a: str, b: str) -> None:
        raise NotImplementedError

    #: The token of this connection (or the last one), which its batches show the fence.
    _token = ""
    #: Batches of the last connection whose answer never came: (first sequence number, their
    #: messages by place in the batch), and since when (the event loop's clock).
    _in_doubt: list[tuple[int, list[tuple[int, Broadcast[Any]]]]]
    _doubt_since = 0.0
    #: The Redis server (its ``run_id``) the last connection talked to.
    _server = ""

    def broadcast(self, sent: Broadcast[Any]) -> m.Error | None:
        """Number ``sent.message`` and publish it in the next batch, to ``sent.room`` or (a
        private message) to ``sent.node``'s channel (this node's own if empty); what it
        becomes is reported to ``on_numbered`` (or ``on_unnumbered``). An error at once if
        Redis is away."""
        if self._ops is None or not self.connected:
            return unavailable("send messages")
        # Where it goes, and so where this node hears it back (in Redis's order, among
        # everything else it hears: what makes a client's ids rise): its room, or this node's
        # own channel (for a private message to another node the script puts the id there
        # too: "M"). What does not come back is named by the batch's note (numbering.py).
        if sent.room:
            op, channel = "N", room_channel(sent.room)
        elif sent.node and sent.node != self.node:
            op, channel = "M", node_channel(sent.node)
        else:
            op, channel = "N", node_channel(self.node)
        head, tail = wire.encode_numbered(self.node, self._unnumbered.add(sent), sent.message)
        self._queue(op, channel, head + "\0" + tail)
        return None

    @property
    def crowded(self) -> bool:
        """Whether so many messages wait for their number that readers should wait."""
        return self._unnumbered.crowded

    async def wait_roomy(self) -> None:
        """Until fewer than :data:`~anychat.bus.numbering.MAX_UNNUMBERED` messages wait for a
        number (a flood from one client waits here, in its reader, instead of growing the
        queue without end)."""
        await self._unnumbered.wait_roomy()

    # ------------------------------------------------------------------ the batch script

    def _batch_args(self, batch: list[str]) -> list[str]:
        """The script's arguments for ``batch``: the fence first; last, if it numbers any
        messages, its note and record."""
        count = numbered_ops(batch)
        if not count:
            return ["F", self._token, "", *batch]
        first = self._unnumbered.sent(count)
        head, tail = wire.encode_batch_note(self.node, first, count)
        return [
            "F",
            self._token,
            "",
            *batch,
            "B",
            ran_key(self.node, self._token) + str(first),
            f"{head}\0{tail}",
        ]

    def _batch_done(self, first: Any, numbered: int) -> None:
        """The batch script's answer: the first id it gave (raises if it failed, which ends
        this connection: a reconnect starts over)."""
        if isinstance(first, RedisReplyError):
            raise ConnectionError(f"the batch script failed: {first}")
        if numbered:
            self._unnumbered.answered(int(first))

    # ------------------------------------------------------------------ hearing them back

    def _heard_own(self, data: str) -> bool:
        """Act on ``data`` if it is one of this node's messages or batch notes, back."""
        if not data.startswith(self._prefix):
            return False
        try:
            seq, msg_id = wire.numbered_echo(data, self._prefix)
        except ValueError:
            pass  # not a numbered message: a batch's note, or an event of this node
        else:
            self._finish(self._unnumbered.heard(seq, msg_id))
            return True
        try:
            first, count, first_id = wire.batch_note(data, self._prefix)
        except ValueError:
            return False
        self._finish(self._unnumbered.batch_heard(first, count, first_id))
        return True

    def _finish(self, done: list[tuple[Broadcast[Any], int]]) -> None:
        for sent, msg_id in done:
            self._last_id = max(self._last_id, msg_id)
            self._seen_id = max(self._seen_id, msg_id)
            try:
                self.on_numbered(sent, msg_id)
            except Exception:  # one message's trouble must not cut the node off the bus
                logger.exception("cannot deliver a numbered message here")

    def _refuse(self, refused: list[Broadcast[Any]]) -> None:
        for sent in refused:
            try:
                self.on_unnumbered(sent, unavailable("send messages"))
            except Exception:
                logger.exception("cannot refuse an unnumbered message")

    # ------------------------------------------------------------------ a lost connection

    def _drop_unnumbered(self) -> None:
        """The connection is gone: what Redis numbered is finished here (it was published),
        what never went out is refused, the rest is in doubt until the next connection."""
        numbered, doubtful, unsent = self._unnumbered.drop()
        self._finish(numbered)
        self._refuse(unsent)
        if doubtful:
            self._in_doubt += doubtful
            self._doubt_since = anyio.current_time()
        self.on_flush()

    def _doubt_expired(self) -> float:
        """Refuse what is in doubt if it waited :data:`DOUBT_SECONDS`; else how much longer
        it may wait (infinite if nothing is in doubt)."""
        if not self._in_doubt:
            return float("inf")
        left = self._doubt_since + DOUBT_SECONDS - anyio.current_time()
        if left > 0:
            return left
        self._give_up_doubt("the connection did not come back in time")
        return float("inf")

    def _give_up_doubt(self, why: str) -> None:
        doubtful, self._in_doubt = self._in_doubt, []
        refused = [sent for _, sents in doubtful for _, sent in sents]
        if refused:
            logger.warning(
                "%d messages refused that Redis may have published (%s)", len(refused), why
            )
        self._refuse(refused)
        self.on_flush()

    async def _resolve(self, client: Any, resolve: Any) -> None:
        """A new connection: fence the last one off and settle what it left in doubt (the
        ``resolve`` script tells which of its batches ran; ``client`` which server this is)."""
        doubtful = self._in_doubt
        token = secrets.token_hex(8)
        ids = await resolve(
            keys=[fence_key(self.node), ran_key(self.node, self._token)],
            args=[self._token, token, *(str(first) for first, _ in doubtful)],
        )
        self._token = token
        try:
            server = str((await client.info("server")).get("run_id", ""))
        except Exception as exc:  # INFO refused (an ACL): whether Redis restarted is unknown
            logger.info("cannot read the Redis server's run_id: %s", exc)
            server = ""
        same, self._server = server == self._server and server != "", server
        if not doubtful:
            return
        if ids is None or not same:
            self._give_up_doubt("Redis lost track of them: it restarted, or was flushed")
            return
        self._in_doubt = []
        for (_, sents), first_id in zip(doubtful, ids, strict=True):
            if int(first_id):
                self._finish([(sent, int(first_id) + offset) for offset, sent in sents])
            else:
                self._refuse([sent for _, sent in sents])
        self.on_flush()


def numbered_ops(batch: list[str]) -> int:
    """How many messages the script numbers for ``batch``."""
    ops = batch[::3]
    return ops.count("N") + ops.count("M")
