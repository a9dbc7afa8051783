"""The server glue: listener, protocol sniffing, per-connection tasks, effects, shutdown.

This is the only server module that awaits. Everything it does to a chat is decided by the
:class:`~anychat.broker.Broker`; everything it sends is produced by a codec. Start it with
``await tg.start(run, config)`` (it reports the bound port) or with the :func:`serve` context
manager, which yields a :class:`Server` handle.

Resource handling: each accepted socket is owned by exactly one task (:meth:`_Hub.handle`), which
closes it however that task ends. Error handling: an unexpected exception while serving one client
is logged with its traceback and closes that client only; the server keeps serving everyone else.
"""

from __future__ import annotations

import logging
import socket
from collections.abc import AsyncIterator, Collection, Iterable, Sequence
from contextlib import AsyncExitStack, asynccontextmanager, suppress
from functools import partial
from typing import TYPE_CHECKING, Any

import anyio
import anyio.lowlevel
from anyio.abc import TaskGroup, TaskStatus

from . import model as m
from ._groups import unwrap_single
from ._version import __version__
from .broker import Broker, Deliver, Effect, Persist, SessionState
from .codecs import LocalReply
from .codecs.sniff import Protocol, sniff
from .config import ServerConfig
from .connection import RECV_BYTES, Connection
from .resend import MAX_KEYS
from .services import Services
from .store import Store, open_store

if TYPE_CHECKING:
    from .codecs import Codec

__all__ = ["Server", "open_listener", "run", "serve"]

logger = logging.getLogger("anychat.server")

#: Matches no codec's encoding key, so the fan-out loop looks the first one up.
_NO_KEY: Any = object()


class _Hub:
    """Owns the connections and applies the broker's effects to them."""

    def __init__(
        self,
        config: ServerConfig,
        store: Store,
        *,
        first_message_id: int = 1,
        registered: Iterable[str] = (),
    ) -> None:
        self.config = config
        self.broker: Broker[Connection] = Broker(
            server_name=config.server_name,
            version=__version__,
            default_rooms=config.default_rooms,
            max_rooms_per_session=config.max_rooms_per_session,
            first_message_id=first_message_id,
            registered=registered,
            require_login=config.require_login,
        )
        self.services = Services(self, store, first_message_id=first_message_id)
        self.connections: set[Connection] = set()
        self._dirty: list[Connection] = []
        self.stopping = False
        self._all_closed = anyio.Event()
        #: The server's task group: writer tasks start here (set by :func:`run`).
        self.task_group: TaskGroup | None = None
        #: When each connection last sent something, when it connected, and who was pinged.
        self._heard: dict[Connection, float] = {}
        self._since: dict[Connection, float] = {}
        self._pinged: set[Connection] = set()

    # ------------------------------------------------------------------ effects

    def mark_dirty(self, conn: Connection) -> None:
        self._dirty.append(conn)

    def flush(self) -> None:
        """One send per touched connection: the end of every received batch calls this."""
        dirty = self._dirty
        while dirty:
            self._dirty = []
            for conn in dirty:
                conn.flush()
            dirty = self._dirty  # a flush may abort a client, whose goodbye dirties others

    def apply(self, effects: Iterable[Effect[Connection]]) -> None:
        for effect in effects:
            if type(effect) is Deliver:
                self.deliver(effect.event, effect.to, effect.skip)
            elif isinstance(effect, Persist):
                self.services.persist(effect)
            else:
                effect.peer.close(effect.bye)  # type: ignore[union-attr]

    def deliver(self, event: m.Event, to: Iterable[Connection], skip: Connection | None) -> None:
        """Encode once per codec, then append the same bytes to every recipient's buffer."""
        self.deliver_many((event,), to, skip)

    def deliver_many(
        self, events: Sequence[m.Event], to: Iterable[Connection], skip: Connection | None
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
                if conn.closed:
                    continue
                dirty.append(conn)
            out.append(data)

    async def receive(self, conn: Connection, data: bytes) -> int:
        """Feed received bytes through the codec and the broker; returns commands handled.

        Commands that wait for a password check or the store (``Services.handlers``) are awaited
        in order, after flushing what earlier commands produced.

        Consecutive messages from this client to one room are fanned out together (one append
        per member for the whole run instead of one per message). That is safe because a
        ``Say`` never changes who is in a room, and what is delivered in between only goes to
        the sender itself (its acks), who is not among the run's recipients; anything else
        delivers the run first, so every recipient still sees everything in order.
        """
        commands = conn.codec.feed(data)
        conn.encoding_key = conn.codec.encoding_key  # IRC capabilities may change the bytes
        self._heard[conn] = anyio.current_time()
        self._pinged.discard(conn)
        broker = self.broker
        slow = self.services.handlers
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
            if type(command) in slow:
                self.flush()
                await slow[type(command)](conn, command)
                continue
            for effect in broker.handle(conn, command):
                if type(effect) is not Deliver:
                    if type(effect) is Persist:
                        self.services.persist(effect)  # delivers nothing: the run goes on
                        continue
                    if run:
                        self.deliver_many(run, run_to, conn)
                        run = []
                    effect.peer.close(effect.bye)  # type: ignore[union-attr]
                    continue
                to = effect.to
                if effect.skip is conn and type(command) is m.Say:
                    if run and to is not run_to:
                        self.deliver_many(run, run_to, conn)
                        run = []
                    run_to = to
                    run.append(effect.event)
                elif run and not (type(to) is tuple and len(to) == 1 and to[0] is conn):
                    self.deliver_many(run, run_to, conn)
                    run = []
                    self.deliver(effect.event, to, effect.skip)
                else:
                    self.deliver(effect.event, to, effect.skip)
        if run:
            self.deliver_many(run, run_to, conn)
        return len(commands)

    # ------------------------------------------------------------------ connections

    async def handle(
        self, sock: socket.socket, address: str, protocol: Protocol | None = None
    ) -> None:
        """Serve one accepted socket until either side ends it (``protocol``: skip sniffing)."""
        conn: Connection | None = None
        try:
            with suppress(OSError):
                sock.setsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY, 1)
            first = b""
            if protocol is None:
                protocol, first = await self._sniff(sock)
            if protocol is None:
                return
            codec = self._codec_for(protocol)
            conn = Connection(
                sock,
                codec,
                address=address,
                max_queue_bytes=self.config.max_queue_bytes,
                on_dirty=self.mark_dirty,
            )
            if len(self.connections) >= self.config.max_connections or self.stopping:
                why = "server shutting down" if self.stopping else "too many connections"
                logger.warning("refusing %s: %s", address, why)
                code = m.ErrorCode.SHUTDOWN if self.stopping else m.ErrorCode.TOO_MANY_CONNECTIONS
                conn.close(m.Bye(code=code, reason=f"{why}, try again later"))
                return
            self.connections.add(conn)
            self._heard[conn] = self._since[conn] = anyio.current_time()
            self.broker.connect(conn, address)
            logger.info("%s connected (%s)", address, codec.name)
            # No task group per connection: a writer task starts (in the server's group) only
            # if a send falls short, so an idle connection costs one task.
            conn.task_group = self.task_group
            with conn.scope:
                if protocol is Protocol.TEXT:
                    await self.services.hello(conn, m.Hello())
                if first:
                    await self.receive(conn, first)
                self.flush()
                await self._read(conn)
            conn.closing = True  # ended by the client or by conn.scope: no goodbye due
        except Exception:
            logger.exception("error serving %s; closing that connection", address)
            if conn is not None:
                conn.closing = True
        finally:
            if conn is not None:
                if not conn.closing and not conn.closed:
                    # Cancelled from outside the connection: the server is shutting down. Say
                    # so now, whichever task the event loop happened to cancel first.
                    conn.close(m.Bye(code=m.ErrorCode.SHUTDOWN, reason="server shutting down"))
                try:
                    self._forget(conn)
                except Exception:  # outside the handler above: must never reach the task group
                    logger.exception("error while %s left; the server carries on", address)
            with suppress(OSError):
                _drain_and_close(sock)

    async def _sniff(self, sock: socket.socket) -> tuple[Protocol | None, bytes]:
        """Look at the first bytes (or the silence) to pick a codec; ``None`` = peer left."""
        first = b""
        with anyio.move_on_after(self.config.sniff_seconds):
            while True:
                await anyio.wait_readable(sock)
                try:
                    chunk = sock.recv(RECV_BYTES)
                except (BlockingIOError, InterruptedError):
                    continue
                except OSError:
                    return None, b""
                if not chunk:
                    return None, b""
                first += chunk
                protocol = sniff(first)
                if protocol is not None:
                    return protocol, first
        return Protocol.TEXT, first

    def _codec_for(self, protocol: Protocol) -> Codec:
        from .codecs.irc import IrcCodec
        from .codecs.jsonl import JsonServerCodec
        from .codecs.text import TextCodec

        if protocol is Protocol.JSONL:
            return JsonServerCodec(max_line_bytes=self.config.max_line_bytes)
        if protocol is Protocol.IRC:
            return IrcCodec(server_name=self.config.server_name, version=__version__)
        return TextCodec(max_line_bytes=self.config.max_line_bytes)

    async def _read(self, conn: Connection) -> None:
        """The reader: receive, parse, apply, flush; slowed (never cut) by flood control."""
        sock = conn.sock
        rate = self.config.flood_rate
        burst = float(self.config.flood_burst)
        tokens = burst
        last = anyio.current_time()
        while not conn.closing:
            try:
                data = sock.recv(RECV_BYTES)
            except (BlockingIOError, InterruptedError):
                # Only now ask the event loop to watch the socket: a busy client's next batch
                # is usually there already, and each wait costs registering with the selector
                # and unregistering again (two system calls per wait on asyncio).
                await anyio.wait_readable(sock)
                continue
            except OSError as exc:
                conn.why_closed = f"connection lost ({exc.strerror or exc})"
                return
            if not data:
                # The peer finished sending (it may still read): let our replies drain first.
                self.flush()
                conn.why_closed = conn.why_closed or "connection closed"
                if conn.writing:
                    conn.closing = True
                    with anyio.move_on_after(self.config.shutdown_grace_seconds):
                        await anyio.sleep_forever()
                return
            handled = await self.receive(conn, data)
            if rate:
                now = anyio.current_time()
                tokens = min(burst, tokens + (now - last) * rate) - handled
                last = now
                if tokens < 0:
                    # Leave the rest in the kernel: TCP slows the flooder, nothing is dropped.
                    self.flush()
                    await anyio.sleep(-tokens / rate)
                    continue
            # Let every other reader woken in this round of the event loop run before reading
            # again (a client that always has more to send must not starve the others), then
            # flush: when several clients' batches arrive together, each recipient gets one
            # send for all of them, and the first reader back sends for everyone.
            await anyio.lowlevel.checkpoint()
            self.flush()
        # Closing after a goodbye: wait for the writer to drain it (the scope gets cancelled).
        await anyio.sleep_forever()

    async def watch_idle(self) -> None:
        """One task per server: ping quiet clients, drop silent and unregistered ones.

        Scanning every connection each tick costs far less than a timer per connection, and a
        tick of a fraction of the shortest timeout keeps every deadline within that fraction.
        """
        config = self.config
        ping_after = config.idle_ping_seconds
        drop_after = ping_after + config.idle_timeout_seconds
        register_by = config.registration_timeout_seconds
        tick = min(ping_after, config.idle_timeout_seconds, register_by, 4.0) / 4
        while True:
            await anyio.sleep(tick)
            now = anyio.current_time()
            for conn in list(self.connections):
                if conn.closing or conn.closed:
                    continue
                session = self.broker.session(conn) if conn in self.broker.peers() else None
                if session is not None and session.state is SessionState.NEW:
                    if now - self._since.get(conn, now) > register_by:
                        conn.close(m.Bye(code=None, reason="registration timed out"))
                    continue
                keepalive = getattr(conn.codec, "keepalive", None)
                if keepalive is None:
                    continue
                quiet = now - self._heard.get(conn, now)
                if quiet > drop_after and conn in self._pinged:
                    conn.close(m.Bye(code=None, reason=f"ping timeout: {int(quiet)} seconds"))
                elif quiet > ping_after and conn not in self._pinged:
                    self._pinged.add(conn)
                    conn.push(keepalive(config.server_name))
            self.flush()

    def _forget(self, conn: Connection) -> None:
        self.connections.discard(conn)
        self._heard.pop(conn, None)
        self._since.pop(conn, None)
        self._pinged.discard(conn)
        conn.closed = True
        reason = conn.why_closed or "connection closed"
        session = self.broker.session(conn) if conn in self.broker.peers() else None
        nick = session.nick if session else ""
        self.apply(self.broker.disconnect(conn, reason))
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

    async def wait_closed(self) -> None:
        if self.connections:
            await self._all_closed.wait()


def _drain_and_close(sock: socket.socket) -> None:
    """Close without a TCP reset: unread input at close() would make the kernel send RST,
    and the peer could then lose the last lines we sent it (our goodbye)."""
    with suppress(OSError):
        while sock.recv(RECV_BYTES):
            pass
    with suppress(OSError):
        sock.shutdown(socket.SHUT_WR)
    anyio.notify_closing(sock)
    sock.close()


def open_listener(host: str, port: int) -> socket.socket:
    """Bind and listen; raises ``OSError`` with a message fit for a person."""
    try:
        infos = socket.getaddrinfo(host, port, type=socket.SOCK_STREAM, flags=socket.AI_PASSIVE)
    except socket.gaierror as exc:
        raise OSError(f"cannot resolve host {host!r}: {exc.strerror}") from None
    family, type_, proto, _, addr = infos[0]
    sock = socket.socket(family, type_, proto)
    try:
        sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
        sock.bind(addr)
        sock.listen(1024)
        sock.setblocking(False)
    except OSError as exc:
        sock.close()
        raise OSError(exc.errno, f"cannot listen on {host}:{port}: {exc.strerror}") from None
    return sock


async def run(
    config: ServerConfig,
    *,
    listener: socket.socket | None = None,
    irc_listener: socket.socket | None = None,
    store: Store | None = None,
    task_status: TaskStatus[int] = anyio.TASK_STATUS_IGNORED,
) -> None:
    """Serve until cancelled. ``await tg.start(run, config)`` returns the bound port.

    ``listener`` is a socket from :func:`open_listener` (default: open one from ``config``), and
    so is ``irc_listener`` for ``config.irc_port`` (IRC only, no sniffing); the server owns both
    from here on. ``store`` overrides ``config.database_url`` (the caller then owns it). On
    cancellation every client is sent a goodbye ("server shutting down"), the server waits up to
    ``config.shutdown_grace_seconds`` for those to go out, and messages still waiting for the
    disk are written before the store closes.
    """
    async with AsyncExitStack() as stack:
        for given in (listener, irc_listener):
            if given is not None:  # ours from here on, even if the store fails to open
                stack.callback(given.close)
        if store is None:
            store = await stack.enter_async_context(open_store(config.database_url))
        last_id = await store.last_message_id()
        registered = [account.nick for account in await store.list_accounts()]
        hub = _Hub(config, store, first_message_id=last_id + 1, registered=registered)
        # Keys of recent messages: a client resending after this restart is not stored twice.
        hub.broker.sent.stored(await store.keyed_messages(MAX_KEYS))
        logger.info(
            "store %s: %d messages so far, %d accounts",
            config.database_url,
            last_id,
            len(registered),
        )
        if listener is None:
            listener = open_listener(config.host, config.port)
            stack.callback(listener.close)
        if irc_listener is None and config.irc_port is not None:
            irc_listener = open_listener(config.host, config.irc_port)
            stack.callback(irc_listener.close)
        await _run_hub(hub, listener, irc_listener, task_status)


async def _run_hub(
    hub: _Hub,
    listener: socket.socket,
    irc_listener: socket.socket | None,
    task_status: TaskStatus[int],
) -> None:
    config = hub.config
    port: int = listener.getsockname()[1]
    try:
        async with anyio.create_task_group() as tg:
            hub.task_group = tg
            tg.start_soon(hub.services.committer.run)
            logger.info("listening on %s:%d", config.host, port)
            tg.start_soon(hub.watch_idle)
            if irc_listener is not None:
                logger.info(
                    "listening for IRC on %s:%d", config.host, irc_listener.getsockname()[1]
                )
                tg.start_soon(_accept_loop, irc_listener, hub, tg, Protocol.IRC)
            task_status.started(port)
            try:
                await _accept_loop(listener, hub, tg)
            finally:
                with anyio.CancelScope(shield=True):
                    hub.say_goodbye()
                    with anyio.move_on_after(config.shutdown_grace_seconds):
                        await hub.wait_closed()
    finally:
        for sock in (listener, irc_listener):
            if sock is not None:
                anyio.notify_closing(sock)
                sock.close()


async def _accept_loop(
    listener: socket.socket, hub: _Hub, tg: Any, protocol: Protocol | None = None
) -> None:
    while True:
        await anyio.wait_readable(listener)
        while True:
            try:
                sock, addr = listener.accept()
            except (BlockingIOError, InterruptedError):
                break
            except OSError as exc:  # EMFILE and friends: keep serving who we have
                logger.error("accept failed: %s", exc)
                await anyio.sleep(0.1)
                break
            sock.setblocking(False)
            tg.start_soon(hub.handle, sock, f"{addr[0]}:{addr[1]}", protocol)


class Server:
    """A running server started by :func:`serve`."""

    def __init__(self, config: ServerConfig, port: int, irc_port: int | None = None) -> None:
        self.config = config
        self.host = config.host
        self.port = port
        #: The dedicated IRC port, when ``config.irc_port`` asked for one.
        self.irc_port = irc_port

    @property
    def address(self) -> tuple[str, int]:
        return self.host, self.port


@asynccontextmanager
async def serve(
    config: ServerConfig | None = None, /, *, store: Store | None = None, **settings: Any
) -> AsyncIterator[Server]:
    """Run a server in the background for the duration of the ``async with`` block.

    Takes a :class:`ServerConfig` or its fields as keyword arguments (``port=0`` picks a free
    port; read it from the yielded :class:`Server`). ``store`` replaces the one
    ``database_url`` names (tests pass a shared or failing one).
    """
    config = (config or ServerConfig(port=0)).merged(**settings)
    irc_listener = None
    if config.irc_port is not None:
        irc_listener = open_listener(config.host, config.irc_port)
    irc_port = irc_listener.getsockname()[1] if irc_listener is not None else None
    with unwrap_single():
        async with anyio.create_task_group() as tg:
            port = await tg.start(partial(run, config, irc_listener=irc_listener, store=store))
            try:
                yield Server(config, port, irc_port)
            finally:
                tg.cancel_scope.cancel()
