"""The load generator: raw non-blocking sockets and a selector, no event loop framework.

It must not be what limits the numbers, so the hot loop does as little as possible: each receive
goes into one preallocated buffer and only its newlines are counted (``bytearray.count``). Only
the *verifier* clients parse what they receive: every line they get is checked for loss,
duplication and per-sender order, and the designated receiver (a client that never sends) also
times each message (send timestamp embedded in the text) and drives the closed loop: a sender may
have at most ``window`` messages that the designated receiver has not seen yet.

Each message's text is ``BM:<monotonic ns> <sender id> <sequence> <padding>``.
"""

from __future__ import annotations

import resource
import selectors
import socket
import time
from collections.abc import Callable
from dataclasses import dataclass, field

from servers import ROOM, Adapter

MARK = b"BM:"
RECV_BYTES = 1 << 18


class LoadError(RuntimeError):
    pass


class Client:
    __slots__ = (
        "dead",
        "idx",
        "lines",
        "next_seq",
        "out",
        "problems",
        "sender",
        "sock",
        "tail",
        "text",
        "verify",
    )

    def __init__(self, sock: socket.socket, idx: int) -> None:
        self.sock = sock
        self.idx = idx
        self.lines = 0
        self.sender = -1  # sender id, or -1
        self.verify = False
        self.next_seq: list[int] = []
        #: What a verifier saw: sequence gaps and lines that came late or twice.
        self.problems = {"gaps": 0, "out_of_order": 0}
        self.tail = b""
        self.out = b""
        self.text = bytearray()  # setup phase only: what was received so far
        self.dead = False


@dataclass
class Measurement:
    elapsed: float = 0.0
    deliveries: int = 0
    messages: int = 0
    latencies_ns: list[int] = field(default_factory=list)
    loadgen_cpu: float = 0.0
    sent: int = 0
    expected: int = 0
    received: int = 0
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
        verify_all: bool = False,
    ) -> None:
        if n < 2:
            raise ValueError("need at least two clients")
        self.port = port
        self.adapter = adapter
        self.n = n
        self.k = max(1, min(senders, n - 1))
        self.sel = selectors.DefaultSelector()
        self.buf = bytearray(RECV_BYTES)
        self.clients: list[Client] = []
        self.senders: list[Client] = []
        self.template = adapter.say_template()
        pad = text_bytes - len(b"BM:1234567890123456789 0 0 ")
        self.pad = b"x" * max(pad, 1)
        self.latencies: list[int] = []
        self.measuring = False
        self.sent_total = 0
        self.verify_all = verify_all

    # ------------------------------------------------------------------ setup

    def connect(
        self, timeout: float = 60.0, room_of: Callable[[int], str] | None = None, chunk: int = 500
    ) -> None:
        """Connect every client and wait until each is registered and in its room."""
        deadline = time.monotonic() + timeout
        for start in range(0, self.n, chunk):
            batch = []
            for i in range(start, min(self.n, start + chunk)):
                sock = socket.create_connection(("127.0.0.1", self.port), timeout=10)
                sock.setsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY, 1)
                sock.setblocking(False)
                c = Client(sock, i)
                self.clients.append(c)
                self.sel.register(sock, selectors.EVENT_READ, c)
                room = room_of(i) if room_of else ROOM
                hello = self.adapter.hello_for(f"b{i}", room)
                if hello:
                    _send_all(sock, hello)
                batch.append(c)
            ready = self.adapter.ready
            if ready is not None:
                waiting = {c.idx for c in batch}
                while waiting:
                    if time.monotonic() > deadline:
                        raise LoadError(f"{len(waiting)} clients never got registered")
                    for c in self._pump_setup(0.5):
                        if c.idx in waiting and ready in c.text:
                            waiting.discard(c.idx)
        # Roles: the first k clients send; the last one is the designated receiver.
        for sid, c in enumerate(self.clients[: self.k]):
            c.sender = sid
            self.senders.append(c)
        self.receiver = self.clients[-1]
        for c in self.clients:
            c.text = bytearray()
            if c is self.receiver or self.verify_all:
                c.verify = True
                c.next_seq = [0] * self.k

    def _pump_setup(self, timeout: float) -> list[Client]:
        got = []
        for key, _ in self.sel.select(timeout):
            c: Client = key.data
            try:
                data = c.sock.recv(RECV_BYTES)
            except BlockingIOError:
                continue
            except OSError as exc:
                raise LoadError(f"client {c.idx}: {exc}") from None
            if not data:
                raise LoadError(
                    f"client {c.idx}: server closed the connection: {bytes(c.text[-300:])!r}"
                )
            c.text += data
            c.lines += data.count(b"\n")
            got.append(c)
        return got

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
            _send_all(source.sock, probe)
            end = time.monotonic() + 0.05
            while time.monotonic() < end:
                self._pump_setup(0.01)
            if all(b"BARRIER" in c.text for c in others):
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
            c.lines = 0
            c.tail = b""

    # ------------------------------------------------------------------ the hot loop

    def _pump(self, timeout: float) -> None:
        buf = self.buf
        for key, _ in self.sel.select(timeout):
            c: Client = key.data
            try:
                n = c.sock.recv_into(buf)
            except BlockingIOError:
                continue
            except OSError:
                n = 0
            if n == 0:
                self.sel.unregister(c.sock)
                c.dead = True
                continue
            c.lines += buf.count(b"\n", 0, n)
            if c.verify:
                self._check(c, bytes(buf[:n]))

    def _check(self, c: Client, data: bytes) -> None:
        if c.tail:
            data = c.tail + data
        lines = data.split(b"\n")
        c.tail = lines.pop()
        now = time.monotonic_ns()
        timing = c is self.receiver and self.measuring
        nxt = c.next_seq
        for line in lines:
            i = line.find(MARK)
            if i < 0:
                continue
            f = line[i + 3 : i + 48].split(b" ", 3)
            sid = int(f[1])
            seq = int(f[2])
            exp = nxt[sid]
            if seq == exp:
                nxt[sid] = exp + 1
            elif seq > exp:
                c.problems["gaps"] += seq - exp
                nxt[sid] = seq + 1
            else:
                c.problems["out_of_order"] += 1
            if timing:
                self.latencies.append(now - int(f[0]))

    def _send(self, s: Client, count: int) -> None:
        if s.out:
            try:
                sent = s.sock.send(s.out)
            except BlockingIOError:
                return
            s.out = s.out[sent:]
            if s.out:
                return
        if count <= 0:
            return
        t = time.monotonic_ns()
        sid = s.sender
        tmpl = self.template
        pad = self.pad
        seq0 = self.sent_of[sid]
        data = b"".join(
            [tmpl % (b"BM:%d %d %d %s" % (t, sid, seq, pad)) for seq in range(seq0, seq0 + count)]
        )
        self.sent_of[sid] = seq0 + count
        self.sent_total += count
        try:
            sent = s.sock.send(data)
        except BlockingIOError:
            sent = 0
        s.out = data[sent:]

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
        """Closed loop (``window`` > 0) or fixed ``rate`` messages/s in total; then drain.

        ``on_window(True)`` / ``on_window(False)`` are called as the measured window opens and
        closes (the caller samples the server's CPU time there)."""
        self.sent_of = [0] * self.k
        seen = self.receiver.next_seq
        senders = self.senders
        per_sender = rate / self.k if rate else 0.0
        cap = window if window else 10_000  # fixed rate: a safety cap on messages in flight
        result = Measurement()
        t0 = time.monotonic()
        t_measure = t0 + warmup
        t_end = t_measure + duration
        lines0 = sent0 = seen0 = 0
        cpu0 = 0.0
        next_report = t0
        # Closed loop: block until something arrives (only arrivals free the window). Fixed rate:
        # wake often enough to keep to the schedule.
        timeout = 0.01 if window else 0.0005
        while True:
            now = time.monotonic()
            if now >= t_end:
                break
            if not self.measuring and now >= t_measure:
                self.measuring = True
                lines0 = sum(c.lines for c in self.clients)
                sent0 = self.sent_total
                seen0 = sum(seen)
                cpu0 = _cpu()
                if on_window is not None:
                    on_window(True)
            for s in senders:
                sid = s.sender
                inflight = self.sent_of[sid] - seen[sid]
                if per_sender:
                    due = int((now - t0) * per_sender) + 1 - self.sent_of[sid]
                    if inflight + due > cap:
                        result.capped = True
                        due = cap - inflight
                    self._send(s, due)
                else:
                    self._send(s, window - inflight)
            self._pump(timeout)
            if progress is not None and now >= next_report:
                next_report = now + 0.25
                progress(now - t0, sum(c.lines for c in self.clients))
        self.measuring = False
        if on_window is not None:
            on_window(False)
        result.loadgen_cpu = _cpu() - cpu0
        result.elapsed = time.monotonic() - t_measure
        lines1 = sum(c.lines for c in self.clients)
        acks = self.adapter.acks_per_message * (self.sent_total - sent0)
        result.deliveries = lines1 - lines0 - acks
        result.messages = sum(seen) - seen0
        result.latencies_ns = self.latencies
        # Drain: everything sent must arrive, exactly once.
        for s in senders:
            while s.out:
                self._send(s, 0)
                self._pump(0.001)
        result.sent = self.sent_total
        result.expected = self.sent_total * (self.n - 1 + self.adapter.acks_per_message)
        deadline = time.monotonic() + 10
        last_change = time.monotonic()
        got = sum(c.lines for c in self.clients)
        while got < result.expected and time.monotonic() < deadline:
            self._pump(0.05)
            new = sum(c.lines for c in self.clients)
            if new != got:
                got, last_change = new, time.monotonic()
            elif time.monotonic() - last_change > 3:
                break
        self._pump(0.05)  # anything extra (duplicates) that was on its way
        result.received = sum(c.lines for c in self.clients)
        # Counted on every client: lines missing or extra. Checked line by line on verifiers:
        # every sender's sequence numbers arrive once each, in order, up to the last one sent.
        problems = {
            "lost": max(0, result.expected - result.received),
            "duplicated": max(0, result.received - result.expected),
            "order_errors": 0,
        }
        for c in self.clients:
            if c.verify:
                for sid, (have, sent_n) in enumerate(zip(c.next_seq, self.sent_of, strict=True)):
                    if sid != c.sender:
                        problems["order_errors"] += abs(sent_n - have)
                problems["order_errors"] += sum(c.problems.values())
        result.problems = problems
        if any(c.dead for c in self.clients):
            problems["disconnected"] = sum(c.dead for c in self.clients)
        return result

    def close(self) -> None:
        for c in self.clients:
            if not c.dead:
                self.sel.unregister(c.sock)
            c.sock.close()
        self.sel.close()


def _send_all(sock: socket.socket, data: bytes) -> None:
    """Setup-time send on a non-blocking socket (small writes, the kernel takes them)."""
    view = memoryview(data)
    while view:
        try:
            sent = sock.send(view)
        except BlockingIOError:
            time.sleep(0.001)
            continue
        view = view[sent:]
