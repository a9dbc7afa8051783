"""The load generator: one process, raw non-blocking sockets and a selector, no event loop.

It must never be what limits the numbers, so the hot loop does as little as possible per
receive: ``recv_into`` one preallocated buffer shared by all clients, back to back, carrying a
partial last line over to that client's next receive. Nothing is parsed line by line in Python.

Every delivery is still checked: once the buffer holds ``CHECK_AT`` bytes (and when the measured
window opens and closes, and at the end) ``verify.Verifier`` checks all of it in one numpy pass
for loss, duplication, order, corruption and echoes. At the end every client must have seen
every message of every other sender.

The loop is closed by credit over all receivers: a message is done once every client that does
not send has it, and each sender may have at most ``window`` of its messages not done.
Throughput rows time the designated receiver's deliveries (its receive time against the send
time in the token); latency rows time every delivery.

Over TLS each socket stays plain and its session is an ``ssl.SSLObject`` over memory BIOs
(``tlsclient``: handshake at connect, blocking, once per client): a receive is one system call
however many records it holds, decrypted into the buffer, and a send is encrypted first and then
sent, and kept when the kernel refuses it, like plaintext. Over WebSocket each client does the HTTP upgrade once, sends masked frames and turns the
server's frames back into JSON lines in bulk (``wsframes``), so the same verifier reads them.
"""

from __future__ import annotations

import resource
import selectors
import socket
import ssl
import time
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any

import numpy as np
import wsframes
from servers import ROOM, Adapter
from tlsclient import TlsClient
from verify import SENDER_IDS, TIME_MOD, TOKEN_BYTES, Verifier

#: Every receive of every client goes into one preallocated buffer, back to back; once it
#: holds ``CHECK_AT`` bytes it is checked in one pass (still in cache) and reused.
CHECK_AT = 1 << 20
#: The same for the fixed-rate rows, whose latencies are the figures: while a check runs nothing
#: is read, so a delivery waiting meanwhile is stamped late by the check's length. A 1 MiB check
#: of JSON lines (unequal lengths: the slow path) took long enough to make their p99 2.4 ms
#: against IRC's 1.1 on the same server; 64 KiB keeps each pause short.
CHECK_AT_TIMED = 1 << 16
RECV_BYTES = 1 << 17
MAX_LINE = 1 << 16
#: Throughput rows poll the sockets at most this often (latency rows whenever data arrives).
POLL_INTERVAL = 0.0005
SETUP_RECV = 1 << 16
#: A non-blocking socket (plain or TLS) that cannot go on now.
WOULD_BLOCK = (BlockingIOError, InterruptedError, ssl.SSLWantReadError, ssl.SSLWantWriteError)


class LoadError(RuntimeError):
    pass


class Client:
    __slots__ = (
        "dead",
        "frag",
        "got",
        "idx",
        "out",
        "pure",
        "reader",
        "sender",
        "sock",
        "tail",
        "text",
        "tls",
    )

    def __init__(self, sock: socket.socket, idx: int, tls: TlsClient | None = None) -> None:
        self.sock = sock  # plain, also over TLS: what is sent goes straight to it
        self.tls = tls
        #: Where received plaintext comes from: the socket, or its TLS session (same calls).
        self.reader: socket.socket | TlsClient = sock if tls is None else tls
        self.idx = idx
        self.got = 0  # bytes received in the run
        self.sender = -1  # sender id, or -1
        self.pure = False  # a receiver that never sends: the closed loop counts its bytes
        self.out = b""  # what the kernel did not take yet
        self.tail = b""  # a partial last line, carried to the next receive
        self.text = bytearray()  # setup phase only: what was received so far
        self.frag = b""  # WebSocket: an incomplete last frame, carried to the next receive
        self.dead = False


@dataclass
class Measurement:
    elapsed: float = 0.0
    #: Messages delivered in the measured window, every recipient counted (acks are not).
    deliveries: int = 0
    #: Messages every pure receiver got in the window.
    messages: float = 0.0
    latencies_us: Any = None
    loadgen_cpu: float = 0.0
    sent: int = 0
    expected: int = 0
    received: int = 0
    checked: int = 0
    problems: dict[str, int] = field(default_factory=dict)
    capped: bool = False


def _cpu() -> float:
    r = resource.getrusage(resource.RUSAGE_SELF)
    return r.ru_utime + r.ru_stime


class LoadGen:
    """``n`` clients of one server, ``senders`` of them sending into one room."""

    def __init__(
        self,
        port: int,
        adapter: Adapter,
        n: int,
        senders: int,
        *,
        text_bytes: int = 64,
        time_all: bool = False,
        tls: ssl.SSLContext | None = None,
        first: int = 0,
    ) -> None:
        """``first`` numbers the nicks from there, so that several generators can share a
        server (the idle rows connect in steps)."""
        if n < 2:
            raise ValueError("need at least two clients")
        self.first = first
        self.check_at = CHECK_AT
        self.port = port
        self.adapter = adapter
        self.n = n
        self.k = max(1, min(senders, n - 1, len(SENDER_IDS)))
        self.sel = selectors.DefaultSelector()
        self.clients: list[Client] = []
        self.senders: list[Client] = []
        self.template = adapter.say_template()
        self.pad = b"x" * max(text_bytes - TOKEN_BYTES - 1, 1)
        self.time_all = time_all
        if adapter.tls and tls is None:
            raise ValueError(f"{adapter.name} needs a TLS client context")
        if adapter.tls and adapter.websocket:
            raise ValueError("the generator has no WebSocket over TLS")
        self.tls = tls if adapter.tls else None
        #: TLS clients' ciphertext lands here before the BIO takes it: one receive at a time.
        self.scratch = memoryview(bytearray(RECV_BYTES if self.tls else 0))
        self.ws = adapter.websocket
        if self.ws:
            self.template = self.template.rstrip(b"\n")  # one frame per message, no newline
        self.epoch = time.monotonic_ns()
        self.sent_total = 0
        self.sent_of: list[int] = []
        self.pure_bytes = self.pure_lines = 0
        self.anchor_bytes = self.anchor_tokens = 0
        self.exact = True
        self.pure_mask = np.zeros(0, dtype=bool)
        self.formats: list[bytes] = []
        #: Bytes of one delivered message line: measured at the barrier, then at every check.
        self.line_bytes = 0.0
        self.verifier = Verifier([], 1)
        self.window_lo = self.window_hi = self.verifier.window_lo
        self.arena = bytearray()
        self.view = memoryview(self.arena)
        self.fill = 0
        self.seg_client: list[int] = []
        self.seg_start: list[int] = []
        self.seg_time: list[int] = []

    # ------------------------------------------------------------------ setup

    def connect(
        self, timeout: float = 60.0, room_of: Callable[[int], str] | None = None, chunk: int = 500
    ) -> None:
        """Connect every client and wait until each is registered and in its room."""
        deadline = time.monotonic() + timeout
        adapter = self.adapter
        for start in range(0, self.n, chunk):
            batch = []
            rooms = {}
            for i in range(start, min(self.n, start + chunk)):
                sock = socket.create_connection(("127.0.0.1", self.port), timeout=10)
                sock.setsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY, 1)
                session = None
                if self.tls is not None:
                    session = TlsClient(sock, self.tls, self.scratch, "localhost")
                    session.handshake()
                rest = b""
                if self.ws:
                    try:
                        rest = wsframes.handshake(sock, f"127.0.0.1:{self.port}")
                    except wsframes.FrameError as exc:
                        raise LoadError(f"client {i}: {exc}") from None
                sock.setblocking(False)
                c = Client(sock, i, session)
                c.frag = rest
                self.clients.append(c)
                self.sel.register(sock, selectors.EVENT_READ, c)
                rooms[i] = room_of(i) if room_of else ROOM
                hello = adapter.hello_for(_nick(self.first + i), rooms[i])
                if adapter.welcome is None:
                    hello += adapter.join_for(_nick(self.first + i), rooms[i])
                if hello:
                    self._setup_send(c, hello)
                batch.append(c)
            if adapter.welcome is not None:
                self._await(
                    batch,
                    adapter.welcome,
                    deadline,
                    lambda c, rooms=rooms: self._setup_send(
                        c, adapter.join_for(_nick(self.first + c.idx), rooms[c.idx])
                    ),
                )
            if adapter.ready is not None:
                self._await(batch, adapter.ready, deadline)
        # Roles: the first k clients send; the last one is the designated (timed) receiver.
        for sid, c in enumerate(self.clients[: self.k]):
            c.sender = sid
            self.senders.append(c)
        for c in self.clients[self.k :]:
            c.pure = True
        self.receiver = self.clients[-1]
        for c in self.clients:
            c.text = bytearray()

    def _await(
        self,
        batch: list[Client],
        marker: bytes,
        deadline: float,
        then: Callable[[Client], None] | None = None,
    ) -> None:
        waiting = {c.idx for c in batch}
        for c in batch:  # what arrived while waiting for the previous marker counts too
            if marker in c.text:
                waiting.discard(c.idx)
                if then is not None:
                    then(c)
        while waiting:
            if time.monotonic() > deadline:
                raise LoadError(f"{len(waiting)} clients never saw {marker!r}")
            for c in self._pump_setup(0.5):
                if c.idx in waiting and marker in c.text:
                    waiting.discard(c.idx)
                    if then is not None:
                        then(c)

    def _pump_setup(self, timeout: float) -> list[Client]:
        got = []
        for key, _ in self.sel.select(timeout):
            c: Client = key.data
            try:
                data = c.reader.recv(SETUP_RECV)
            except WOULD_BLOCK:
                continue
            except OSError as exc:
                raise LoadError(f"client {c.idx}: {exc}") from None
            if not data:
                raise LoadError(
                    f"client {c.idx}: server closed the connection: {bytes(c.text[-300:])!r}"
                )
            if self.ws:
                try:
                    data, c.frag = wsframes.split(c.frag + data)
                except wsframes.FrameError as exc:
                    raise LoadError(f"client {c.idx}: {exc}") from None
            c.text += data
            got.append(c)
        return got

    def _setup_send(self, c: Client, data: bytes) -> None:
        """Setup-time lines (hello, join, probes): as they are, or one masked frame each."""
        if self.ws:
            data = wsframes.client_frames_of_lines(data)
        if c.tls is not None:
            data = c.tls.encrypt(data)
        _send_all(c.sock, data)

    def barrier(
        self,
        timeout: float = 30.0,
        members: list[Client] | None = None,
        source: Client | None = None,
        room: str = ROOM,
    ) -> None:
        """Send probes from one client until every other member saw one, then drain quietly.

        Works for every server, even one that says nothing when a client joins."""
        members = members if members is not None else self.clients
        source = source or members[0]
        others = [c for c in members if c is not source]
        for c in members:
            c.text = bytearray()
        deadline = time.monotonic() + timeout
        probe = self.adapter.say_template(room) % b"BARRIER"
        while True:
            self._setup_send(source, probe)
            end = time.monotonic() + 0.05
            while time.monotonic() < end:
                self._pump_setup(0.01)
            if all(b"BARRIER" in c.text for c in others):
                text = bytes(others[-1].text)
                at = text.index(b"BARRIER")
                line = text[text.rfind(b"\n", 0, at) + 1 : text.index(b"\n", at) + 1]
                self.line_bytes = len(line) - len(b"BARRIER") + len(self.pad) + TOKEN_BYTES
                break
            if time.monotonic() > deadline:
                missing = sum(b"BARRIER" not in c.text for c in others)
                raise LoadError(f"barrier: {missing} clients never heard the room")
        self.drain_quiet()

    def drain_quiet(self, quiet: float = 0.3) -> None:
        last = time.monotonic()
        while time.monotonic() - last < quiet:
            if self._pump_setup(0.05):
                last = time.monotonic()
        for c in self.clients:
            c.text = bytearray()

    # ------------------------------------------------------------------ the hot loop

    def _now_us(self) -> int:
        return (time.monotonic_ns() - self.epoch) // 1000

    def _pump(self, timeout: float) -> None:
        events = self.sel.select(timeout)
        if not events:
            return
        now = (time.monotonic_ns() - self.epoch) // 1000
        arena = self.arena
        for key, _ in events:
            c: Client = key.data
            f = self.fill
            if self.ws:
                self._pump_frames(c, f, now)
                continue
            start = f + len(c.tail)
            if c.tail:
                arena[f:start] = c.tail
            n = self._recv(c, start)
            if n < 0:
                continue
            if n == 0:
                self._dead(c)
                continue
            c.got += n
            e = start + n
            if c.pure:
                self.pure_bytes += n
                if self.exact:
                    self.pure_lines += arena.count(b"\n", start, e)
            last = arena.rfind(b"\n", start, e) + 1
            if last == 0:
                c.tail = bytes(arena[f:e])
                if len(c.tail) > MAX_LINE:
                    raise LoadError(f"client {c.idx}: a line longer than {MAX_LINE} bytes")
                continue
            c.tail = bytes(arena[last:e]) if last < e else b""
            self.seg_client.append(c.idx)
            self.seg_start.append(f)
            self.seg_time.append(now)
            self.fill = last
            if last >= self.check_at:
                self._check()

    def _recv(self, c: Client, start: int) -> int:
        """Receive into the buffer at ``start``: bytes taken, 0 at the end, -1 for none now.

        One system call for a plain client and for a TLS one alike (``tlsclient``)."""
        try:
            n: int = c.reader.recv_into(self.view[start : start + RECV_BYTES])
        except WOULD_BLOCK:
            return -1
        except OSError:
            return 0
        return n

    def _dead(self, c: Client) -> None:
        self.sel.unregister(c.sock)
        c.dead = True

    def _pump_frames(self, c: Client, f: int, now: int) -> None:
        """One receive of a WebSocket client: its frames become lines at the buffer's end."""
        arena = self.arena
        start = f + len(c.frag)
        if c.frag:
            arena[f:start] = c.frag
        n = self._recv(c, start)
        if n < 0:
            return
        if n == 0:
            self._dead(c)
            return
        c.got += n
        try:
            lines, c.frag = wsframes.split(self.view[f : start + n])
        except wsframes.FrameError as exc:
            raise LoadError(f"client {c.idx}: {exc}") from None
        if len(c.frag) > MAX_LINE:
            raise LoadError(f"client {c.idx}: a frame longer than {MAX_LINE} bytes")
        if not lines:
            return
        e = f + len(lines)
        arena[f:e] = lines  # no longer than the frames they came from: in place
        if c.pure:
            self.pure_bytes += len(lines)
            if self.exact:
                self.pure_lines += lines.count(b"\n")
        self.seg_client.append(c.idx)
        self.seg_start.append(f)
        self.seg_time.append(now)
        self.fill = e
        if e >= self.check_at:
            self._check()

    def _check(self) -> None:
        """Verify everything received since the last check and empty the buffer."""
        if self.fill:
            self.verifier.check(
                self.arena, self.fill, self.seg_client, self.seg_start, self.seg_time
            )
        self.fill = 0
        self.seg_client, self.seg_start, self.seg_time = [], [], []
        # The credit's anchor: exact counts as of this check (only tails are unchecked).
        lines = int(self.verifier.lines[self.pure_mask].sum())
        if lines:
            self.anchor_bytes = self.pure_bytes - sum(len(c.tail) for c in self.clients if c.pure)
            self.anchor_tokens = int(self.verifier.seen[self.pure_mask].sum())
            self.line_bytes = self.anchor_bytes / lines

    def _done_per_sender(self, pure: int) -> float:
        """Messages of each sender every pure receiver has (on average): the closed loop's
        credit. Exact newline counts when few are in flight; otherwise the exact counts of the
        last check plus the bytes since, in lines of the size seen so far."""
        if self.exact:
            return self.pure_lines / pure / self.k
        since = (self.pure_bytes - self.anchor_bytes) / self.line_bytes
        return (self.anchor_tokens + since) / pure / self.k

    def _flush(self, s: Client) -> None:
        try:
            sent = s.sock.send(s.out)
        except WOULD_BLOCK:
            return
        s.out = s.out[sent:]

    def _send(self, s: Client, count: int, now_us: int) -> None:
        sid = s.sender
        seq0 = self.sent_of[sid]
        fmt = self.formats[sid]
        stamp = now_us % TIME_MOD
        lines = [fmt % (seq, stamp) for seq in range(seq0, seq0 + count)]
        data = wsframes.client_frames(lines) if self.ws else b"".join(lines)
        if s.tls is not None:
            data = s.tls.encrypt(data)  # ``s.out`` keeps ciphertext: it goes out as it is
        self.sent_of[sid] = seq0 + count
        self.sent_total += count
        try:
            sent = s.sock.send(data)
        except WOULD_BLOCK:
            sent = 0
        s.out = data[sent:]

    def _prepare(self) -> None:
        timed = [self.time_all or c is self.receiver for c in self.clients]
        self.verifier = Verifier([c.sender for c in self.clients], self.k, timed)
        self.window_lo, self.window_hi = self.verifier.window_lo, self.verifier.window_hi
        self.arena = bytearray(CHECK_AT + RECV_BYTES + MAX_LINE + 1)
        self.view = memoryview(self.arena)
        self.fill = 0
        self.seg_client, self.seg_start, self.seg_time = [], [], []
        for c in self.clients:
            c.got = 0
            c.tail = b""
        self.sent_of = [0] * self.k
        self.sent_total = self.pure_bytes = self.pure_lines = 0
        self.anchor_bytes = self.anchor_tokens = 0
        self.pure_mask = np.array([c.pure for c in self.clients], dtype=bool)
        pad = self.pad.decode()
        self.formats = [
            self.template.replace(b"%s", f"^{chr(SENDER_IDS[sid])}%08d%08d{pad}".encode())
            for sid in range(self.k)
        ]
        if not self.line_bytes:
            raise LoadError("run() needs barrier() first (it measures a delivered line)")

    def _seen(self, pure_only: bool = False) -> int:
        seen = self.verifier.seen
        if pure_only:
            return int(seen[[c.idx for c in self.clients if c.pure]].sum())
        return int(seen.sum())

    def run(
        self,
        *,
        warmup: float,
        duration: float,
        window: int = 0,
        rate: float = 0.0,
        progress: Callable[[float, int], None] | None = None,
        on_window: Callable[[bool], None] | None = None,
    ) -> Measurement:
        """Closed loop (``window`` > 0) or fixed ``rate`` messages/s in total; then drain and
        check everything.

        ``on_window(True)`` / ``on_window(False)`` are called as the measured window opens and
        closes (the caller samples the server's CPU time there)."""
        self._prepare()
        self.exact = window < 16 or rate > 0
        self.check_at = CHECK_AT_TIMED if self.exact else CHECK_AT
        senders = self.senders
        k = self.k
        pure = max(1, self.n - k)
        per_sender = rate / k if rate else 0.0
        cap = window if window else 10_000  # fixed rate: a safety cap on messages in flight
        batch = max(1, window // 16)  # closed loop: top a sender up in batches, not one by one
        pace = POLL_INTERVAL if window >= 64 else 0.0
        last_poll = 0.0
        result = Measurement()
        t0 = time.monotonic()
        t_measure = t0 + warmup
        t_end = t_measure + duration
        seen0 = pure0 = 0
        cpu0 = 0.0
        next_report = t0
        measuring = False
        # Closed loop: block until something arrives (only arrivals free the window). Fixed rate:
        # wake often enough to keep to the schedule.
        timeout = 0.01 if window else 0.0005
        while True:
            now = time.monotonic()
            if now >= t_end:
                break
            if not measuring and now >= t_measure:
                measuring = True
                self.window_lo[:] = self.sent_of
                self.window_hi[:] = 1 << 62
                self._check()
                seen0, pure0 = self._seen(), self._seen(pure_only=True)
                cpu0 = _cpu()
                if on_window is not None:
                    on_window(True)
            # Credit: what the pure receivers got, in messages of each sender (on average).
            share = self._done_per_sender(pure)
            now_us = (time.monotonic_ns() - self.epoch) // 1000
            for s in senders:
                if s.out:
                    self._flush(s)
                    if s.out:
                        continue
                inflight = self.sent_of[s.sender] - share
                if per_sender:
                    due = int((now - t0) * per_sender) + 1 - self.sent_of[s.sender]
                    if inflight + due > cap:
                        result.capped = True
                        due = int(cap - inflight)
                    if due > 0:
                        self._send(s, due, now_us)
                else:
                    free = int(window - inflight)
                    if free >= batch:
                        self._send(s, free, now_us)
            if pace:
                # Poll at most every ``pace`` seconds: a generator with time to spare would
                # otherwise wake for every few lines and spend its CPU on receive calls. The
                # window holds far more than one interval's work, so the server never waits.
                rest = last_poll + pace - time.monotonic()
                if rest > 0:
                    time.sleep(rest)
                last_poll = time.monotonic()
            self._pump(timeout)
            if progress is not None and now >= next_report:
                next_report = now + 0.25
                progress(now - t0, self.pure_bytes)
        if on_window is not None:
            on_window(False)
        result.loadgen_cpu = _cpu() - cpu0
        result.elapsed = time.monotonic() - t_measure
        self.window_hi[:] = self.sent_of
        self._check()
        result.deliveries = self._seen() - seen0
        result.messages = (self._seen(pure_only=True) - pure0) / pure
        self._drain(result)
        return result

    def _drain(self, result: Measurement) -> None:
        """Everything sent must arrive, exactly once: wait for it, then check every byte."""
        for s in self.senders:
            while s.out:
                self._flush(s)
                self._pump(0.001)
        deadline = time.monotonic() + 15
        last_change = time.monotonic()
        got = sum(c.got for c in self.clients)
        while time.monotonic() < deadline:
            self._check()
            if self.verifier.done(self.sent_of, [not c.dead for c in self.clients]):
                break
            self._pump(0.05)
            new = sum(c.got for c in self.clients)
            if new != got:
                got, last_change = new, time.monotonic()
            elif time.monotonic() - last_change > 3:
                break
        for _ in range(3):  # anything extra (duplicates) that was on its way
            self._pump(0.03)
        self._check()
        problems = self.verifier.finish(self.sent_of)
        # A partial line or frame at the end.
        problems["corrupt"] += sum(1 for c in self.clients if c.tail or c.frag)
        acks = self.adapter.acks_per_message
        expected = 0
        for c in self.clients:
            own = self.sent_of[c.sender] if c.sender >= 0 else 0
            expected += self.sent_total - own + acks * own
        result.received = int(self.verifier.lines.sum())
        result.checked = int(self.verifier.seen.sum())
        result.sent = self.sent_total
        result.expected = expected
        # Lines that are neither messages nor acks (an error reply, a notice) are a problem too.
        problems["unexpected_lines"] = max(0, result.received - expected)
        if any(c.dead for c in self.clients):
            problems["disconnected"] = sum(c.dead for c in self.clients)
        result.problems = problems
        lat = self.verifier.latencies_us
        result.latencies_us = np.sort(np.concatenate(lat)) if lat else np.zeros(0, np.int64)

    def close(self) -> None:
        for c in self.clients:
            if not c.dead:
                self.sel.unregister(c.sock)
            c.sock.close()
        self.sel.close()


def _nick(i: int) -> str:
    return f"b{i:05d}"


def _send_all(sock: socket.socket, data: bytes) -> None:
    """Setup-time send on a non-blocking socket (small writes, the kernel takes them)."""
    view = memoryview(data)
    while view:
        try:
            sent = sock.send(view)
        except WOULD_BLOCK:
            time.sleep(0.001)
            continue
        view = view[sent:]
