"""The hub: the live connections, and the one place where the broker's effects are carried out.

Everything the hub does to a chat is decided by the :class:`~anychat.broker.Broker`; everything
it sends is produced by a codec. It owns no sockets and starts no tasks of its own: a reader task
per connection (:mod:`anychat.reader`) feeds it received bytes, and whoever touched an output
buffer calls :meth:`Hub.flush` at the end of its batch, so each recipient gets one ``send`` for
everything that arrived together (DESIGN.md, "The hot path").

Effects are dispatched in one place, :meth:`Hub.apply_one`, which matches every effect type and
fails type checking when a new one is added without a branch: an effect the hub does not know can
never be mistaken for another (such as "close the peer").
"""

from __future__ import annotations

import logging
import time
from collections.abc import Collection, Iterable, Sequence
from typing import TYPE_CHECKING, Any, assert_never

import anyio

from . import model as m
from ._version import __version__
from .address_limits import AddressLimits
from .broker import Broker
from .codecs import LocalReply
from .codecs.registry import CodecSettings
from .committer import Committer
from .effects import (
    Authenticate,
    Broadcast,
    ClaimNick,
    CreateAccount,
    Deliver,
    Disconnect,
    Effect,
    ListenRoom,
    Outcome,
    Persist,
    Publish,
    ReadConversations,
    ReadHistory,
    Request,
    WarmRooms,
)
from .metrics import ServerStats
from .services import Services
from .sessions import SessionState
from .transport import is_loopback
from .turns import Turns
from .turnstile import Turnstile

if TYPE_CHECKING:
    from anyio.abc import TaskGroup

    from .bus.directory import BusEvent, RemoteUser
    from .bus.redis import RedisBus
    from .config import ServerConfig
    from .connection import Connection
    from .parking import ReaderParking
    from .store import Store

__all__ = ["Hub"]

logger = logging.getLogger("anychat.server")

#: The effects that ask for slow work, awaited in the reader's own order.
_REQUESTS = (
    Authenticate,
    CreateAccount,
    ReadHistory,
    ReadConversations,
    WarmRooms,
    ClaimNick,
    ListenRoom,
)

#: New connections that may register in one turn of the event loop (see :mod:`.turnstile`):
#: a few milliseconds of work, so the clients already connected get a turn between batches.
REGISTRATIONS_PER_TURN = 8

#: Matches no codec's encoding key, so the fan-out loop looks the first one up.
_NO_KEY: Any = object()


class Hub:
    """Owns the set of live connections and applies the broker's effects to them."""

    def __init__(
        self,
        config: ServerConfig,
        store: Store,
        *,
        first_message_id: int = 1,
        registered: Iterable[str] = (),
        cluster: RedisBus | None = None,
    ) -> None:
        self.config = config
        #: The bus to the other nodes of this chat (``None``: a single node).
        self.cluster = cluster
        self.cluster_up = cluster is None
        self._was_degraded = False
        self.broker: Broker[Connection] = Broker(
            server_name=config.server_name,
            version=__version__,
            default_rooms=config.default_rooms,
            max_rooms_per_session=config.max_rooms_per_session,
            first_message_id=first_message_id,
            registered=registered,
            require_login=config.require_login,
            history_length=config.history_length,
            quiet_room_size=config.quiet_room_size,
            bus=cluster,
        )
        if cluster is not None:
            cluster.on_event = self._heard
            cluster.on_users_gone = self._users_gone
            cluster.on_nick_lost = self._nick_lost
            cluster.on_state = self._cluster_state
            cluster.on_numbered = self._numbered
            cluster.on_unnumbered = self._unnumbered
            cluster.on_flush = self.flush
        self.committer: Committer[Connection] = Committer(
            store,
            self._settle,
            flush=self.flush,
            settled_id=first_message_id - 1,
            unstored=self.broker.sent.forget_unstored,
        )
        self.services = Services(config, store, self.committer)
        self.connections: set[Connection] = set()
        #: Newcomers pass it before registering (its task starts with the server).
        self.turnstile = Turnstile(REGISTRATIONS_PER_TURN)
        self._dirty: list[Connection] = []
        #: Given to every connection: one bound method for all, not one each (64 bytes).
        self.dirty_hook = self.mark_dirty
        self.stopping = False
        self._all_closed = anyio.Event()
        #: The server's task group: writer tasks start here (set when the server starts).
        self.task_group: TaskGroup | None = None
        #: Where idle readers hand their connections back (set when the server starts;
        #: ``None`` when ``park_after_seconds`` is 0).
        self.parking: ReaderParking | None = None
        #: The event loop's yield and end-of-turn flush for readers (the running loop's own
        #: once the server starts).
        self.turns = Turns(self.flush)
        #: Counters for ``/metrics``: a few additions per batch, never per recipient.
        self.messages_in = 0
        self.messages_out = 0
        self.slow_consumer_cuts = 0
        self.address_limits = AddressLimits(
            max_per_address=config.max_connections_per_address,
            rate=config.connection_rate_per_address,
            burst=config.connection_burst_per_address,
            exempt=config.connection_limit_exempt,
        )
        #: What every new connection's codec is made with (one object for all of them).
        self.codec_settings = CodecSettings(
            server_name=config.server_name,
            version=__version__,
            max_line_bytes=config.max_line_bytes,
            extras={
                "allowed_origins": config.allowed_origins,
                "status": self.stats,
                "irc_history_replay": config.irc_history_replay,
            },
        )

    # ------------------------------------------------------------------ effects

    def mark_dirty(self, conn: Connection) -> None:
        self._dirty.append(conn)

    def flush(self) -> None:
        """One send per touched connection: the end of every received batch calls this.

        Messages due for an instant store (memory://) are stored first, their acks queued.
        """
        if self.committer.due:
            self.committer.commit_due()
        dirty = self._dirty
        while dirty:
            self._dirty = []
            for conn in dirty:
                conn.flush()
            dirty = self._dirty  # a flush may abort a client, whose goodbye dirties others

    def apply(self, effects: Iterable[Effect[Connection]]) -> None:
        for effect in effects:
            self.apply_one(effect)

    def apply_one(self, effect: Effect[Connection]) -> None:
        """Carry out one effect: the only dispatcher, exhaustive by construction.

        A request met here (outside a reader's batch, which awaits its requests in order) is
        fulfilled in a task of its own.
        """
        match effect:
            case Deliver():
                self.deliver_many((effect.event,), effect.to, effect.skip)
            case Persist():
                self.committer.persist(effect)
            case Disconnect():
                effect.peer.close(effect.bye)
            case Publish():
                self.broker.bus.publish(effect.room, effect.event)
            case Broadcast():
                assert self.cluster is not None  # only a shared bus makes these
                refused = self.cluster.broadcast(effect)
                if refused is not None:
                    self.apply(self.broker.not_numbered(effect, refused))
            case (
                Authenticate()
                | CreateAccount()
                | ReadHistory()
                | ReadConversations()
                | WarmRooms()
                | ClaimNick()
                | ListenRoom()
            ):
                if self.task_group is not None:
                    self.task_group.start_soon(self.fulfil, effect)
            case _:
                assert_never(effect)

    async def fulfil(self, request: Request[Connection]) -> None:
        """Await the slow part of a request, then apply what the broker makes of it."""
        self.flush()
        outcome = await self._outcome(request)
        effects = self.broker.resume(request, outcome)
        while effects:
            later: list[Effect[Connection]] = []
            for effect in effects:
                if isinstance(effect, _REQUESTS):
                    self.flush()
                    outcome = await self._outcome(effect)
                    later.extend(self.broker.resume(effect, outcome))
                else:
                    self.apply_one(effect)
            effects = later
        self.flush()

    async def _outcome(self, request: Request[Connection]) -> Outcome:
        if isinstance(request, ClaimNick | ListenRoom):
            assert self.cluster is not None  # only a shared bus asks these
            return await self.cluster.fulfil(request)
        return self._unencrypted_credentials(request) or await self.services.fulfil(request)

    # ------------------------------------------------------------------ other nodes

    # What the bus hears is applied as it comes; the bus flushes (``on_flush``) after each
    # group of it, so every recipient gets one send for what arrived together.

    def _heard(self, node: str, event: BusEvent) -> None:
        self.apply(self.broker.remote(node, event))

    def _numbered(self, sent: Broadcast[Connection], msg_id: int) -> None:
        self.apply(self.broker.numbered(sent, msg_id))

    def _unnumbered(self, sent: Broadcast[Connection], why: m.Error) -> None:
        self.apply(self.broker.not_numbered(sent, why))

    def _users_gone(self, users: list[RemoteUser]) -> None:
        self.apply(self.broker.users_gone(users))
        self.flush()

    def _nick_lost(self, nick: str) -> None:
        self.apply(self.broker.nick_lost(nick))
        self.flush()

    def _cluster_state(self, connected: bool) -> None:
        """Tell every chatting client when the other nodes go out of reach, and come back.

        Losing them is an error event (code ``cluster_unavailable``, machine-readable); their
        return a notice from the server (a message of kind ``notice`` with id 0: not chat).
        """
        self.cluster_up = connected
        notice: m.Event
        if connected:
            self.apply(self.broker.restate_rooms())  # rooms' settings, either way
            if not self._was_degraded:
                self.flush()
                return
            notice = m.Message(
                id=0,
                time=time.time(),
                sender=self.config.server_name,
                target=self.config.server_name,
                text="the chat is whole again: messages reach every server",
                kind=m.Kind.NOTICE,
            )
        else:
            notice = m.Error(
                code=m.ErrorCode.CLUSTER_UNAVAILABLE,
                text="the chat is degraded: this server lost touch with the other servers of "
                "this chat; you stay connected, and messages go through again once it is back",
            )
        self._was_degraded = not connected
        broker = self.broker
        chatting = [p for p in broker.peers() if broker.session(p).state is SessionState.ACTIVE]
        self.deliver(notice, chatting, None)
        self.flush()

    def _unencrypted_credentials(self, request: Request[Connection]) -> m.Error | None:
        """Production refuses a password or token that crossed a network in the clear.

        Loopback is exempt (nothing crossed a network; a TLS-terminating proxy on the same
        host also arrives that way), and ``allow_plaintext_login`` lifts the rule. The refusal
        is checked here, before the password is even hashed, from the connection's transport.
        """
        if not isinstance(request, Authenticate | CreateAccount):
            return None
        if self.config.plaintext_login_allowed:
            return None
        transport = request.peer.transport
        if transport.secure or is_loopback(transport.peer_host):
            return None
        logger.warning(
            "refused a plaintext %s from %s: TLS required for credentials",
            "registration" if isinstance(request, CreateAccount) else "login",
            transport.address,
        )
        return m.Error(
            code=m.ErrorCode.TLS_REQUIRED,
            text="passwords and login tokens are accepted only over TLS here: your connection "
            "is not encrypted, so reconnect with TLS and try again",
            ref=request.ref,
        )

    def _settle(self, results: list[tuple[Connection, m.Event]]) -> None:
        """The committer's answer for a batch: each sender's ack (or why it was not stored),
        queued (the committer flushes after each batch it wrote; the reader after its own)."""
        for conn, event in results:
            conn.push(conn.codec.encode(event))
        self.messages_out += len(results)

    def deliver(self, event: m.Event, to: Collection[Connection], skip: Connection | None) -> None:
        """Encode once per codec, then append the same bytes to every recipient's buffer."""
        self.deliver_many((event,), to, skip)

    def deliver_many(
        self, events: Sequence[m.Event], to: Collection[Connection], skip: Connection | None
    ) -> None:
        """Fan several events out to the same recipients: one append per recipient for all.

        The loop body is the hottest code in the server, so it is :meth:`Connection.push`
        inlined: an identity test, one attribute read, and an append per recipient (plus a
        dirty-list entry for a buffer that was empty). Encodings are made once per codec key,
        with the last one at hand, since a room is usually all one codec.
        """
        dirty = self._dirty
        key: object = _NO_KEY
        data = b""
        encoded: dict[object, bytes] = {}
        # Counted per fan-out, not per recipient (the skipped sender is nearly always a member).
        self.messages_out += len(events) * (len(to) - (skip is not None))
        for conn in to:
            if conn is skip:
                continue
            if conn.encoding_key is not key:
                key = conn.encoding_key
                cached = encoded.get(key)
                if cached is None:
                    encode = conn.codec.encode
                    cached = encoded[key] = b"".join([encode(event) for event in events])
                data = cached
            if not data:
                continue
            out = conn.out
            if not out:
                if conn.closed or conn.closing:  # the goodbye stays the last word
                    continue
                dirty.append(conn)
            out.append(data)

    async def receive(self, conn: Connection, data: bytes) -> int:
        """Feed received bytes through the codec and the broker; returns the client's commands
        handled (what flood control counts: not the fences a codec adds after labeled ones).

        Requests for slow work (a password check, a store read) are awaited in order, after
        flushing what earlier commands produced.

        Consecutive messages from this client to one room are fanned out together (one append
        per member for the whole run instead of one per message). That is safe because a
        ``Say`` never changes who is in a room, and what is delivered in between only goes to
        the sender itself (its acks), who is not among the run's recipients; anything else
        delivers the run first, so every recipient still sees everything in order.
        """
        codec = conn.codec
        commands = codec.feed(data)
        conn.encoding_key = codec.encoding_key  # IRC capabilities, a WebSocket upgrade
        conn.heard_at = time.monotonic()
        conn.pinged = False
        conn.spoke = True
        count = len(commands) - sum(1 for c in commands if type(c) is m.Ping and c.fence)
        self.messages_in += count
        # run_commands ends the connection when the codec asks (HTTP after its response, a
        # closed WebSocket, IRC after a refused registration), even for a batch of no commands.
        await self.run_commands(conn, commands)
        cluster = self.cluster
        if cluster is not None and cluster.crowded:
            await cluster.wait_roomy()  # room messages wait for Redis: read no more for now
        return count

    async def run_commands(
        self, conn: Connection, commands: Iterable[m.Command | LocalReply]
    ) -> None:
        broker = self.broker
        codec = conn.codec
        # A codec may hang up as it parses (HTTP after its last response, a WebSocket closed
        # for an oversized message): every command it returned before that still runs. Only a
        # hangup that a command causes (IRC's refused registration) stops the rest.
        parsed_hangup = codec.hangup
        run: list[m.Event] = []
        run_to: Collection[Connection] = ()
        for command in commands:
            if conn.closing or conn.closed:
                break
            if isinstance(command, LocalReply):
                if run:
                    self.deliver_many(run, run_to, conn)
                    run = []
                conn.push(command.data)
                continue
            if run and type(command) is not m.Say:
                self.deliver_many(run, run_to, conn)
                run = []
            for effect in broker.handle(conn, command):
                if type(effect) is not Deliver:
                    if type(effect) is Persist:
                        self.apply_one(effect)  # storing delivers nothing: the run goes on
                        continue
                    if run:
                        self.deliver_many(run, run_to, conn)
                        run = []
                    if isinstance(effect, _REQUESTS):
                        await self.fulfil(effect)
                    else:
                        self.apply_one(effect)
                    continue
                to = effect.to
                if effect.skip is conn and type(command) is m.Say:
                    if run and to is not run_to:
                        self.deliver_many(run, run_to, conn)
                        run = []
                    run_to = to
                    run.append(effect.event)
                    continue
                if run and not (type(to) is tuple and len(to) == 1 and to[0] is conn):
                    self.deliver_many(run, run_to, conn)
                    run = []
                self.deliver_many((effect.event,), to, effect.skip)
            if codec.hangup is not parsed_hangup:
                break
        if run:
            self.deliver_many(run, run_to, conn)
        if codec.hangup is not None and not conn.closed:
            # The protocol ends the connection here (IRC after a refused registration or
            # server password, as IRC servers do; HTTP after a response that closes; a closed
            # WebSocket): its goodbye is the last word.
            conn.close(codec.hangup)

    # ------------------------------------------------------------------ connections

    def admit(self, conn: Connection) -> str | None:
        """Register a new connection, or say why it is refused (the caller sends the bye)."""
        if self.stopping:
            return "server shutting down"
        if len(self.connections) >= self.config.max_connections:
            return "too many connections"
        self.connections.add(conn)
        self.broker.connect(conn, conn.address)
        conn.task_group = self.task_group
        return None

    def forget(self, conn: Connection) -> None:
        """The connection's task is ending: tell the room, and wake shutdown if it waits."""
        self.connections.discard(conn)
        if conn.cut_code is m.ErrorCode.SEND_QUEUE_EXCEEDED:
            self.slow_consumer_cuts += 1
        conn.closed = True
        reason = conn.why_closed or "connection closed"
        session = self.broker.session(conn) if conn in self.broker.peers() else None
        nick = session.nick if session else ""
        self.apply(self.broker.disconnect(conn, reason))
        self.broker.sent.closed(conn)  # its refs can no longer be resent
        self.flush()
        logger.info("%s disconnected%s: %s", conn.address, f" ({nick})" if nick else "", reason)
        if self.stopping and not self.connections:
            self._all_closed.set()

    def say_goodbye(self) -> None:
        """Tell every client the server is going away (best effort, never waits)."""
        self.stopping = True
        bye = m.Bye(code=m.ErrorCode.SHUTDOWN, reason="server shutting down")
        for conn in list(self.connections):
            conn.close(bye)
        self.flush()

    def stats(self) -> ServerStats:
        """A snapshot for ``/metrics`` and ``/healthz`` (runs per scrape, not per message)."""
        from .codecs.web import WebCodec

        counts: dict[str, int] = {}
        for conn in self.connections:
            codec = conn.codec
            label = codec.protocol if isinstance(codec, WebCodec) else codec.name
            counts[label] = counts.get(label, 0) + 1
        latency = self.committer.latency
        return ServerStats(
            serving=not self.stopping,
            connections=counts,
            rooms=self.broker.room_count(),
            messages_in=self.messages_in,
            messages_out=self.messages_out,
            slow_consumer_cuts=self.slow_consumer_cuts,
            parked_connections=self.parking.parked if self.parking is not None else 0,
            commit_bounds=latency.bounds,
            commit_buckets=latency.cumulative(),
            commit_count=latency.count,
            commit_seconds=latency.total,
        )

    async def wait_closed(self) -> None:
        if self.connections:
            await self._all_closed.wait()
