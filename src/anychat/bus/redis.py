"""The bus of a chat served by several nodes, over Redis (coredis, built on AnyIO).

The broker stays synchronous: everything it asks of this bus is answered from memory (the nicks
this node holds, the directory of the other nodes' users, the message id fetched for it), and
what needs Redis first is a request effect (``ClaimNick``, ``ListenRoom``) that the hub awaits
through :meth:`RedisBus.fulfil`. What the broker
publishes is queued and sent in order by one task, in batches: one script call per loop turn
for everything queued meanwhile, written on a pipelined connection of the bus's own without
waiting for the last one's answer (:mod:`anychat.bus.resp`); the channels are heard on a
second one, a whole read at a time. coredis carries the other commands (claims, heartbeats).

A message (a :class:`~anychat.effects.Broadcast`) is numbered by that same script call: one
``INCRBY`` takes the ids of every message in the batch, and each is published with its id written
into it, in that order, inside the one atomic call: a room message to its room's channel, a
private one to its recipient's node's channel (this node's own, for a recipient here or an offline
account). So ids increase in the order Redis publishes, which is the order every node hears its
channels, whichever node sent them, and the order its clients see them. The sending node delivers
its own message here when it hears it back from Redis, in that same order (a sequence number in
the payload tells it which one, without decoding it); of a private message to another node the
script publishes the head and id alone on this node's channel, so it too is stored and acked here
in id order, and every batch ends with a note there that names what this node will not hear back
(:mod:`anychat.bus.numbering`). Then a client's highest id seen is a true mark, below which it has
seen every message of its rooms and to its nick, and ``history after=<that id>`` on any node
misses nothing ("gap-free resume"). Nobody awaits the number: the sender's next commands go on,
and a burst of messages costs one script call (:mod:`anychat.bus.numbering` keeps what waits for
its number meanwhile).

Redis holds:

- ``anychat:ids``: the message counter (INCRBY in the publishing script: ids increase in the
  order Redis publishes; seeded past the highest id the node knows of, from what it numbered,
  heard and finds in its store, plus a margin when Redis lost the key);
- ``anychat:nick:<folded nick>``: the node owning a nick (set only if absent, with an expiry
  of one lease, renewed by every heartbeat);
- ``anychat:node:<id>``: a node's lease (expires when it stops heartbeating), ``anychat:nodes``
  the set of node ids, and ``anychat:users:<id>`` a hash of the node's users (nick -> JSON with
  their rooms), which a node starting or reconnecting reads the whole directory from;
- ``anychat:fence:<id>``: the token of the node's current connection (a batch script of an older
  one does nothing), and ``anychat:ran:<id>:<connection>:<batch>`` the first id each batch gave,
  for 30 s: what a new connection reads to settle the batches a lost one left unanswered
  (:mod:`anychat.bus.sending`);
- ``anychat:chan:<folded room>``: a room's settings (modes, key, limit, bans, invites, topic,
  operators and voices by nick; :mod:`anychat.roomstate`), written whole by the node that
  changed them, read by a node whose first member joins the room, deleted by the node whose
  member was the room's last anywhere (if it is still that room's, by its creation time);
- channels: ``anychat:room:<folded room>`` (messages, topics and mode changes, one publish per
  message, heard only by nodes with members there), ``anychat:to:<id>`` (private messages to
  that node's users, the ids of those it sent to other nodes, and each batch's note) and
  ``anychat:presence`` (registrations, joins, parts, kicks, invites, nick changes, quits).

When Redis is out of reach the node keeps its local clients, tells them the chat is degraded,
refuses what needs the other nodes (messages, new nicks: ``cluster_unavailable``) and reconnects
with backoff; then it reclaims its nicks, restates its users and reloads the directory.
docs/scaling.md says exactly what is lost meanwhile.
"""

from __future__ import annotations

import json
import logging
import math
import secrets
from collections.abc import Awaitable, Callable, Iterable
from typing import TYPE_CHECKING, Any, ClassVar, Final
from urllib.parse import urlsplit

import anyio
import anyio.lowlevel
from anyio.abc import TaskStatus

from .. import model as m
from ..effects import Broadcast, BusGrant, ClaimNick, ListenRoom, Outcome
from . import wire
from .directory import BusEvent, Directory, Present, RemoteUser, TakeOver
from .leases import Leases
from .numbering import Unnumbered
from .resp import Pipeline, Subscriber
from .scripts import (
    BATCH,
    CLAIM,
    HEARTBEAT,
    IDS,
    PREFIX,
    PRESENCE,
    RESOLVE,
    RESTATE,
    SEED,
    fence_key,
    node_channel,
    room_channel,
    room_state_key,
)
from .sending import Sending, numbered_ops, unavailable

if TYPE_CHECKING:
    from anyio.streams.memory import MemoryObjectSendStream

__all__ = ["RedisBus"]

logger = logging.getLogger("anychat.cluster")

#: How long a request for Redis (an id, a nick claim) may take before it is refused.
REQUEST_SECONDS: Final = 2.0
#: Where the ids go on when Redis lost the counter (restarted empty), past the highest this node
#: knows of: room for what other nodes numbered but had not stored yet when Redis went.
RESEED_MARGIN: Final = 100_000
#: At most this many operations per script call (a burst is sent in several).
MAX_BATCH: Final = 1000
BACKOFF_FIRST: Final = 0.1
BACKOFF_MAX: Final = 5.0


class RedisBus(Sending, Leases):
    """What one node shares with the others through Redis (see the module docstring).

    Args:
        url: ``redis://host:port/db``.
        lease_seconds: A node silent this long is dead; its nicks are free again.
        first_message_id: The store's last id plus one (the counter never goes below it).
        registered: Nicks (folded) that belong to accounts.
        node_id: This node's name on the bus (default: random).
        last_stored_id: The store's highest message id now (read at each connection, so an
            empty Redis counts on past what any node stored in a shared store).
    """

    shared: ClassVar[bool] = True

    def __init__(
        self,
        url: str,
        *,
        lease_seconds: float = 10.0,
        first_message_id: int = 1,
        registered: Iterable[str] = (),
        node_id: str | None = None,
        last_stored_id: Callable[[], Awaitable[int]] | None = None,
    ) -> None:
        self.url = url
        self._last_stored_id = last_stored_id
        self.lease_seconds = lease_seconds
        self.node = node_id or secrets.token_hex(6)
        self.directory = Directory()
        #: This node's own users, as written to ``anychat:users:<node>``.
        self.mine = Directory()
        self.rooms: set[str] = set()
        #: Rooms whose channel Redis confirmed we are subscribed to, and those being asked.
        self._listening: set[str] = set()
        self._asking: set[str] = set()
        #: Rooms' settings read as their channel was subscribed to, until the join takes them.
        self._room_states: dict[str, str] = {}
        #: The same for every room open here, read as this node (re)connects.
        self._connect_states: dict[str, str] = {}
        self._sub_lock = anyio.Lock()
        self._pubsub: Any = None
        self._registered = set(registered)
        self._owned: set[str] = set()
        #: Nicks given back whose release has not reached Redis yet (a clean stop sends them).
        self._releasing: set[str] = set()
        self._last_id = first_message_id - 1
        #: The highest id seen from any node: the counter restarts past it if Redis lost it.
        self._seen_id = self._last_id
        #: Lost touch after being connected: requests fail at once until it is back.
        self.degraded = False
        self.connected = False
        #: Set while connected: a request waits for it (briefly) rather than fail at once.
        self._up = anyio.Event()
        self._client: Any = None
        self._ops: MemoryObjectSendStream[tuple[str, str, str]] | None = None
        self._nick_lock = anyio.Lock()
        #: Nicks being taken over from another node: folded nick -> (that node, set when the
        #: directory no longer has the nick there).
        self._vacating: dict[str, tuple[str, anyio.Event]] = {}
        self._scripts: dict[str, Any] = {}
        #: The connection the batch script goes out on (see :mod:`anychat.bus.resp`).
        self._pipe: Pipeline | None = None
        self._batch_sha = ""
        #: Room messages handed to Redis, delivered here when heard back.
        self._unnumbered = Unnumbered()
        self._in_doubt = []
        self._prefix = wire.own_prefix(self.node)
        # Set by the hub: what to do with what other nodes say.
        self.on_event: Callable[[str, BusEvent], None] = lambda node, event: None
        self.on_users_gone: Callable[[list[RemoteUser]], None] = lambda users: None
        self.on_nick_lost: Callable[[str], None] = lambda nick: None
        self.on_state: Callable[[bool], None] = lambda connected: None
        self.on_numbered: Callable[[Broadcast[Any], int], None] = lambda sent, msg_id: None
        self.on_unnumbered: Callable[[Broadcast[Any], m.Error], None] = lambda sent, why: None
        #: After a group of the calls above: send what they queued for local clients.
        self.on_flush: Callable[[], None] = lambda: None

    # ------------------------------------------------------------------ the broker's questions

    @property
    def next_id(self) -> int:
        """Past every id this node allocated or was seeded with (what its committer waits for)."""
        return self._last_id + 1

    def allocate_id(self) -> int:
        raise AssertionError("a cluster's messages are numbered as they are published (broadcast)")

    def claim_nick(self, nick: str) -> bool:
        return nick in self._owned

    def must_ask(self, nick: str) -> bool:
        return nick not in self._owned and nick not in self.directory.users

    def release_nick(self, nick: str) -> None:
        self._owned.discard(nick)
        self._releasing.add(nick)
        self._queue("R", nick, self.node)

    def is_registered(self, nick: str) -> bool:
        return nick in self._registered

    @property
    def reachable(self) -> bool:
        return self.connected

    def set_registered(self, nicks: Iterable[str], registered: bool = True) -> None:
        if registered:
            self._registered.update(nicks)
        else:
            self._registered.difference_update(nicks)

    def room_opened(self, room: str) -> None:
        self.rooms.add(room)
        self._queue("S", room, "")

    def must_listen(self, room: str) -> bool:
        # Also when subscribed already: the join needs the room's settings read afresh.
        return self.connected and (room not in self._listening or room not in self._room_states)

    def room_closed(self, room: str) -> None:
        self.rooms.discard(room)
        self._room_states.pop(room, None)
        self._queue("U", room, "")

    def save_room(self, room: str, state: str, *, only_if_missing: bool = False) -> None:
        self._queue("K" if only_if_missing else "C", room_state_key(room), state)

    def drop_room(self, room: str, identity: str) -> None:
        self._queue("X", room_state_key(room), identity)

    def take_connect_states(self) -> dict[str, str]:
        states, self._connect_states = self._connect_states, {}
        return states

    def take_room_state(self, room: str) -> str | None:
        return self._room_states.pop(room, None) or None

    def publish(self, room: str, event: BusEvent) -> None:
        payload = wire.encode(self.node, event).decode()
        if room:
            self._queue("P", room_channel(room), payload)
        else:
            self._tell_about_mine(event, payload)

    def _tell_about_mine(self, event: BusEvent, payload: str) -> None:
        """Keep this node's own user list (and its copy in Redis) current, then publish."""
        mine = self.mine
        gone = m.casefold(event.old) if isinstance(event, m.NickChanged) else ""
        mine.apply(self.node, event)
        if isinstance(event, m.Quitted):
            self._queue("D", m.casefold(event.nick), "")
        else:
            if gone:
                self._queue("D", gone, "")
            nick = event.new if isinstance(event, m.NickChanged) else getattr(event, "nick", "")
            user = mine.users.get(m.casefold(nick)) if nick else None
            if user is not None:
                self._queue("H", m.casefold(user.nick), json.dumps(user.to_json()))
        self._queue("P", PRESENCE, payload)

    def _kicked_mine(self, event: m.Kicked) -> None:
        """Another node's operator kicked a user of this node: the record of this node's
        users (here and in Redis) loses the room; everyone heard the kick already."""
        key = m.casefold(event.nick)
        self.mine.apply(self.node, event)
        user = self.mine.users.get(key)
        if user is not None:
            self._queue("H", key, json.dumps(user.to_json()))

    def _queue(self, op: str, a: str, b: str) -> None:
        """Hand work to the sender task; dropped while disconnected (a reconnect restates
        what matters: subscriptions, nicks, users)."""
        if self._ops is not None and self.connected:
            try:
                self._ops.send_nowait((op, a, b))
            except (anyio.BrokenResourceError, anyio.ClosedResourceError):
                pass  # the connection is going down this instant: the same as disconnected

    # ------------------------------------------------------------------ requests

    async def fulfil(self, request: ClaimNick[Any] | ListenRoom[Any]) -> Outcome:
        """Claim a nick (``cluster_unavailable`` if Redis is away) or hear a room."""
        if isinstance(request, ListenRoom):
            await self._listen(request.room)
            return BusGrant()
        try:
            if self.degraded:
                raise ConnectionError("the cluster bus is out of reach")
            if request.take_from and not await self._vacate(request.nick, request.take_from):
                return m.Error(
                    code=m.ErrorCode.NICK_IN_USE,
                    text=f"nick {request.nick} is held on another node that does not answer; "
                    "try again shortly",
                )
            with anyio.fail_after(REQUEST_SECONDS):
                await self._up.wait()
                async with self._nick_lock:
                    won = await self._scripts["claim"](
                        keys=[PREFIX + "nick:" + request.nick],
                        args=[self.node, int(self.lease_seconds * 1000)],
                    )
                    if int(won):
                        self._owned.add(request.nick)
                        return BusGrant()
                return m.Error(
                    code=m.ErrorCode.NICK_IN_USE, text=f"nick {request.nick} is already in use"
                )
        except Exception as exc:  # Redis away or failing: refuse this one, keep the node
            if not self.degraded:  # (an outage is logged once, when it starts)
                logger.warning("cluster request failed: %s", _why(exc))
            return unavailable("take new nicks")

    async def _vacate(self, nick: str, node: str) -> bool:
        """Ask ``node`` to close its session holding ``nick`` (folded; logged in to the account
        of that name, whose owner logs in here) and wait until it quit: whether it did."""
        user = self.directory.users.get(nick)
        if user is None or user.node != node:
            return True
        waiting = self._vacating.get(nick)
        if waiting is None:
            waiting = self._vacating[nick] = (node, anyio.Event())
            told = TakeOver(nick=nick, account=nick)
            self._queue("P", node_channel(node), wire.encode(self.node, told).decode())
        with anyio.move_on_after(REQUEST_SECONDS):
            await waiting[1].wait()
        if self._vacating.get(nick) is waiting and not waiting[1].is_set():
            del self._vacating[nick]
        return waiting[1].is_set()

    def _vacated(self) -> None:
        """After the directory changed: wake the take-overs whose nick its node let go."""
        for nick, (node, event) in list(self._vacating.items()):
            user = self.directory.users.get(nick)
            if user is None or user.node != node:
                event.set()
                del self._vacating[nick]

    async def _listen(self, room: str) -> None:
        """Subscribe to a room's channel before its first member here joins (best effort:
        without Redis the join goes on, and a reconnect subscribes every open room)."""
        self._asking.add(room)
        try:
            with anyio.move_on_after(REQUEST_SECONDS):
                async with self._sub_lock:
                    if self._pubsub is not None and room not in self._listening:
                        await self._pubsub.subscribe(room_channel(room))
                        self._listening.add(room)
        except Exception as exc:  # the connection is going: the reconnect will subscribe
            logger.info("cannot subscribe to %s now: %s", room, _why(exc))
        try:
            # Read after subscribing: a change made since is heard on the channel. (A time of
            # its own: a slow subscription must not cost the join its room's rules.)
            with anyio.fail_after(REQUEST_SECONDS):
                state = await self._client.get(room_state_key(room))
            self._room_states[room] = str(state or "")
        except Exception as exc:
            logger.warning("cannot read the settings of %s now: %s", room, _why(exc))
        finally:
            self._asking.discard(room)
            # Read or not, the join goes on (the broker refuses it if the room has members
            # elsewhere and no settings came); the next first member here reads them again.
            self._room_states.setdefault(room, "")

    # ------------------------------------------------------------------ the connection

    async def run(self, *, task_status: TaskStatus[None] = anyio.TASK_STATUS_IGNORED) -> None:
        """Stay connected until cancelled: reconnect with backoff, resume, and leave cleanly."""
        import coredis

        backoff = BACKOFF_FIRST
        self._started: TaskStatus[None] | None = task_status
        try:
            while True:
                self._doubt_expired()  # (what a lost answer left in doubt waits a while)
                try:
                    await self._reachable()
                    client = coredis.Redis.from_url(self.url, decode_responses=True)
                    async with client:
                        await self._session(client)
                except BaseException as exc:
                    cancelled = _cancellation(exc)
                    if cancelled is not None:  # stopping: what failed while closing is moot
                        raise cancelled from None
                    if not isinstance(exc, Exception):
                        raise
                    if anyio.current_effective_deadline() == -math.inf:
                        await anyio.lowlevel.checkpoint()  # stopping (asyncio shows no
                        # cancellation in the group of what failed while closing): raises it
                    if self.connected or backoff == BACKOFF_FIRST:
                        logger.warning("cluster bus %s lost: %s", self.url, _why(exc))
                finally:
                    self._report_started()  # a node starts degraded rather than not at all
                    if self.connected:
                        self.connected = False
                        self.degraded = True
                        self._up = anyio.Event()
                        self.on_state(False)
                    if self._ops is not None:
                        self._ops.close()
                        self._ops = None
                    self._client = None
                    self._pipe = None
                    self._pubsub = None
                    self._listening = set()
                    self._drop_unnumbered()
                if self._was_connected:  # it worked a while: start the backoff over
                    backoff, self._was_connected = BACKOFF_FIRST, False
                await anyio.sleep(min(backoff, self._doubt_expired()))
                backoff = min(backoff * 2, BACKOFF_MAX)
        finally:
            self._give_up_doubt("the node is stopping")
            await self._leave()

    async def _reachable(self) -> None:
        """Try the address first: a client made for a server that is down leaks resources."""
        parts = urlsplit(self.url)
        if parts.scheme not in ("redis", "rediss"):
            return
        with anyio.fail_after(REQUEST_SECONDS):
            stream = await anyio.connect_tcp(parts.hostname or "127.0.0.1", parts.port or 6379)
        await stream.aclose()

    _was_connected = False
    _started: TaskStatus[None] | None = None

    def _report_started(self) -> None:
        if self._started is not None:
            self._started.started()
            self._started = None

    async def _session(self, client: Any) -> None:
        self._client = client
        for name, source in (
            ("claim", CLAIM),
            ("seed", SEED),
            ("heartbeat", HEARTBEAT),
            ("batch", BATCH),
            ("restate", RESTATE),
            ("resolve", RESOLVE),
        ):
            self._scripts[name] = client.register_script(source)
        await self._resolve(client, self._scripts["resolve"])
        known = max(self._last_id, self._seen_id, await self._stored_id())
        await self._scripts["seed"](keys=[IDS], args=[known, known + RESEED_MARGIN if known else 0])
        await self._heartbeat_once()
        await self._scripts["restate"](
            keys=[self._users_key(self.node)],
            args=[x for key, u in self.mine.users.items() for x in (key, json.dumps(u.to_json()))],
        )
        async with Subscriber.open(self.url) as pubsub, Pipeline.open(self.url) as pipe:
            self._batch_sha = (await pipe.call("SCRIPT", "LOAD", BATCH)).decode()
            self._pipe = pipe
            await pubsub.subscribe(PRESENCE, node_channel(self.node))
            rooms = set(self.rooms)
            if rooms:
                await pubsub.subscribe(*(room_channel(r) for r in rooms))
            self._listening = rooms
            self._pubsub = pubsub
            await self._load_directory(client)
            if rooms:
                ordered = sorted(rooms)
                read = await client.mget([room_state_key(r) for r in ordered])
                self._connect_states = {r: str(v or "") for r, v in zip(ordered, read, strict=True)}
            send, receive = anyio.create_memory_object_stream[tuple[str, str, str]](float("inf"))
            self._ops = send
            for user in list(self.mine.users.values()):
                restated = Present(
                    nick=user.nick,
                    user=user.user,
                    realname=user.realname,
                    account=user.account,
                    since=user.since,
                    rooms=tuple(user.rooms.values()),
                )
                send.send_nowait(("P", PRESENCE, wire.encode(self.node, restated).decode()))
            self.connected = True
            self.degraded = False
            self._up.set()
            self._report_started()
            self._was_connected = True
            logger.info("cluster bus %s: connected as node %s", self.url, self.node)
            self.on_state(True)
            # From here on what Redis sends is applied as it comes, a whole read at a time,
            # then flushed once (so every local recipient gets one send for all of it).
            pubsub.start(self._heard, self.on_flush)
            async with anyio.create_task_group() as tg:
                tg.start_soon(self._heartbeats)
                await self._send_ops(receive, pubsub)

    async def _stored_id(self) -> int:
        if self._last_stored_id is None:
            return 0
        try:
            return await self._last_stored_id()
        except Exception as exc:  # the store is down: what this node saw must do
            logger.warning("cannot read the store's last message id: %s", _why(exc))
            return 0

    def _heard(self, data: str) -> None:
        if self._heard_own(data):
            return
        try:
            node, event = wire.decode(data)
        except ValueError as exc:
            logger.warning("dropped a bus payload: %s", exc)
            return
        if node == self.node:
            return  # our own publish, back from Redis: already delivered here
        if isinstance(event, m.Message):
            self._seen_id = max(self._seen_id, event.id)
        elif isinstance(event, m.Kicked) and m.casefold(event.nick) in self.mine.users:
            self._kicked_mine(event)
        try:
            self.on_event(node, event)
        except Exception:  # one bad event must not cut the node off the bus
            logger.exception("cannot apply a bus event from node %s", node)
        if self._vacating:
            self._vacated()

    async def _send_ops(self, receive: Any, pubsub: Any) -> None:
        """Send what the broker queued, in order: a batch per script call."""
        batch: list[str] = []
        async with receive:
            while True:
                op = await receive.receive()
                while True:
                    kind, a, b = op
                    if kind in "SU":
                        await self._flush(batch)
                        channel = room_channel(a)
                        async with self._sub_lock:
                            if kind == "S" and a in self.rooms and a not in self._listening:
                                await pubsub.subscribe(channel)
                                self._listening.add(a)
                            elif kind == "U" and a not in self.rooms | self._asking:
                                await pubsub.unsubscribe(channel)
                                self._listening.discard(a)
                    else:
                        batch += (kind, a, b)
                        if len(batch) >= 3 * MAX_BATCH:
                            await self._flush(batch)
                    try:
                        op = receive.receive_nowait()
                    except anyio.WouldBlock:
                        break
                await self._flush(batch)

    async def _flush(self, batch: list[str]) -> None:
        """Send the batch script for ``batch`` now, without waiting for its answer (unless it
        gives nicks back: a claim must not slip in between, so that one is awaited)."""
        if not batch:
            return
        pipe, sha = self._pipe, self._batch_sha
        assert pipe is not None
        keys = [
            self._users_key(self.node),
            PREFIX + "nick:",
            IDS,
            node_channel(self.node),
            fence_key(self.node),
        ]
        if "R" not in batch[::3]:
            args, numbered = self._batch_args(batch), numbered_ops(batch)
            batch.clear()
            await pipe.send(
                ["EVALSHA", sha, "5", *keys, *args], lambda reply: self._batch_done(reply, numbered)
            )
            return
        async with self._nick_lock:
            # A nick released and claimed again since: keep it.
            args = [
                x
                for i in range(0, len(batch), 3)
                if not (batch[i] == "R" and batch[i + 1] in self._owned)
                for x in batch[i : i + 3]
            ]
            batch.clear()
            if args:
                numbered = numbered_ops(args)
                first = await pipe.call("EVALSHA", sha, "5", *keys, *self._batch_args(args))
                self._batch_done(first, numbered)
                self._releasing.difference_update(
                    args[i + 1] for i in range(0, len(args), 3) if args[i] == "R"
                )


def _cancellation(exc: BaseException) -> BaseException | None:
    """The cancellation in ``exc`` (a group, when closing the client failed too), if any."""
    if isinstance(exc, anyio.get_cancelled_exc_class()):
        return exc
    if isinstance(exc, BaseExceptionGroup):
        for inner in exc.exceptions:
            found = _cancellation(inner)
            if found is not None:
                return found
    return None


def _why(exc: BaseException) -> str:
    if isinstance(exc, BaseExceptionGroup):
        return "; ".join(_why(e) for e in exc.exceptions)
    return f"{type(exc).__name__}: {exc}"
