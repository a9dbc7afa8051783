"""The load generator: one process, raw non-blocking sockets and a selector, no event loop.

It must never be what limits the numbers, so the hot loop does as little as possible per
receive: ``recv_into`` the client's own preallocated buffer at its fill mark and count the
newlines there (``bytearray.count``, C speed). Nothing is parsed line by line in Python.

Every delivery is still checked. Each message's text starts with a fixed-width token,
``^`` + sender letter + 8-digit sequence number + 10-digit send time (µs since the run began),
padded to the text size. When a client's buffer is half full (and at the end), ``Verifier``
finds every token in the received bytes with numpy and checks, per sender, that the sequence
numbers continue exactly where the last block left off, strictly increasing with no gap: a loss,
a duplicate, a reordering, a corrupted or cut token, or a client hearing its own message is
counted. At the end every client must have seen every message of every other sender.

The loop is closed by credit over all receivers: a message is done once every client that does
not send has it (counted from their newlines), and each sender may have at most ``window`` of
its messages not done. Throughput rows time the designated receiver's deliveries (its receive
time against the send time in the token); latency rows time every delivery.
"""

from __future__ import annotations

import resource
import selectors
import socket
import time
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any

import numpy as np
from servers import ROOM, Adapter

MARK = ord("^")
SENDER_IDS = b"ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz"
DIGITS = 8  # sequence number and send time (µs, modulo 10**8) are 8 ASCII digits each
TIME_MOD = 10**DIGITS
TOKEN_BYTES = 2 + 2 * DIGITS
#: Every receive of every client goes into one preallocated buffer, back to back; once it
#: holds ``CHECK_AT`` bytes it is checked in one pass (still in cache) and reused.
CHECK_AT = 1 << 20
RECV_BYTES = 1 << 17
MAX_LINE = 1 << 16
#: Throughput rows poll the sockets at most this often (latency rows whenever data arrives).
POLL_INTERVAL = 0.0005
SETUP_RECV = 1 << 16

_SENDER_OF = np.full(256, -1, dtype=np.int64)
for _i, _ch in enumerate(SENDER_IDS):
    _SENDER_OF[_ch] = _i
_U = np.uint64
_HI = _U(0xF0F0F0F0F0F0F0F0)
#: Gaps up to this size remember which numbers are missing, so a late one counts as reordered.
_REMEMBER_GAP = 10_000


class LoadError(RuntimeError):
    pass


def token(sender: int, seq: int, sent_us: int) -> bytes:
    """The token a message text starts with (tests build lines with it)."""
    return b"^%c%08d%08d" % (SENDER_IDS[sender], seq, sent_us % TIME_MOD)


def _digits_ok(words: Any) -> Any:
    """Which 8-byte words are 8 ASCII digits (high nibble 3, low nibble at most 9)."""
    return ((words & _HI) == _U(0x3030303030303030)) & (
        (((words & _U(0x0F0F0F0F0F0F0F0F)) + _U(0x0606060606060606)) & _HI) == 0
    )


def _value(words: Any) -> Any:
    """8 ASCII digits read as a little-endian word -> their number (SWAR, no per-item loop)."""
    v = words - _U(0x3030303030303030)
    v = ((v * _U(10)) + (v >> _U(8))) & _U(0x00FF00FF00FF00FF)
    v = ((v * _U(100)) + (v >> _U(16))) & _U(0x0000FFFF0000FFFF)
    v = ((v * _U(10000)) + (v >> _U(32))) & _U(0x00000000FFFFFFFF)
    return v.astype(np.int64)


class Verifier:
    """Loss, duplication and order of everything every client receives. Pure: no sockets, so
    a test can feed it bytes.

    ``check`` takes a block of *segments*: each is one receive of one client, starting at a line
    boundary and made of whole lines (the generator carries a partial last line over to that
    client's next receive). One numpy pass checks a whole block of many clients: when every line
    has the same length (IRC and raw lines, fixed-width nicks) the tokens are read by stride,
    without searching; otherwise at a fixed distance from each newline (found in one scan)."""

    def __init__(self, owns: list[int], senders: int, timed: list[bool] | None = None) -> None:
        if senders > len(SENDER_IDS):
            raise ValueError(f"at most {len(SENDER_IDS)} senders")
        clients = len(owns)
        self.k = senders
        self.clients = clients
        #: The next sequence number each client expects from each sender.
        self.next = np.zeros((clients, senders), dtype=np.int64)
        self.own = np.asarray(owns, dtype=np.int64)
        self.timed = np.asarray(timed if timed is not None else [False] * clients, dtype=bool)
        self.any_timed = bool(self.timed.any())
        self.seen = np.zeros(clients, dtype=np.int64)  # tokens checked, per client
        self.lines = np.zeros(clients, dtype=np.int64)  # lines checked, per client
        self.problems = {"lost": 0, "duplicated": 0, "reordered": 0, "corrupt": 0, "echoed": 0}
        self.missing: set[tuple[int, int, int]] = set()
        self.latencies_us: list[Any] = []
        #: Per sender, the sequence numbers sent in the measured window: only those are timed.
        self.window_lo = np.zeros(senders, dtype=np.int64)
        self.window_hi = np.zeros(senders, dtype=np.int64)
        self._back = -1  # distance from a token to its line's newline, once seen

    def feed(self, client: int, data: bytes, now_us: int = 0) -> None:
        """Check whole lines one client received (one segment)."""
        buf = bytearray(data)
        self.check(buf, len(buf), [client], [0], [now_us])

    def check(
        self, data: bytearray, end: int, seg_client: Any, seg_start: Any, seg_time: Any
    ) -> None:
        """``data[:end]`` is the segments back to back; ``seg_start`` ascending, ``seg_time``
        when each was received (µs)."""
        if end <= 0:
            return
        seg_client = np.asarray(seg_client, dtype=np.int64)
        seg_start = np.asarray(seg_start, dtype=np.int64)
        seg_time = np.asarray(seg_time, dtype=np.int64)
        arr = np.frombuffer(data, dtype=np.uint8, count=end)
        words = np.ndarray((max(end - 7, 0),), dtype="<u8", buffer=arr, strides=(1,))
        eol = data.find(b"\n", 0, end)
        step = eol + 1
        at = data.find(b"^", 0, eol)
        if (
            at >= 0
            and at + TOKEN_BYTES <= eol
            and end % step == 0
            and bool((arr[eol::step] == 10).all())
        ):
            # Every line is as long as the first: tokens sit at one stride (a line without one
            # reads as a bad sender or bad digits below and counts as corrupt).
            per_seg = (np.append(seg_start[1:], end) - seg_start) // step
            self.lines += np.bincount(seg_client, per_seg, self.clients).astype(np.int64)
            owner = np.repeat(seg_client, per_seg)
            sid = _SENDER_OF[arr[at + 1 :: step]]
            seqw = words[at + 2 :: step].copy()  # contiguous: the arithmetic runs faster
            if self.any_timed:
                lines_timed = np.flatnonzero(self.timed[owner])
                pos = at + lines_timed * step
                when = np.repeat(seg_time, per_seg)[lines_timed]
                timew = words[pos + 2 + DIGITS]
        else:
            nl = np.flatnonzero(arr == 10)
            line_seg = np.searchsorted(seg_start, nl, "right") - 1
            self.lines += np.bincount(seg_client[line_seg], minlength=self.clients)
            if self._back < 0:
                first = data.find(b"^", 0, end)
                if first < 0:
                    return
                self._back = data.find(b"\n", first, end) - first
            pos = nl - self._back
            line_start = np.concatenate(([0], nl[:-1] + 1))
            here = pos >= line_start
            here[here] &= arr[pos[here]] == MARK
            # A line with no token where tokens sit is an ack, or counted as unexpected later.
            pos, line_seg = pos[here], line_seg[here]
            if not pos.size:
                return
            owner = seg_client[line_seg]
            sid = _SENDER_OF[arr[pos + 1]]
            seqw = words[pos + 2]
            if self.any_timed:
                lines_timed = np.flatnonzero(self.timed[owner])
                when = seg_time[line_seg[lines_timed]]
                timew = words[pos[lines_timed] + 2 + DIGITS]
                pos = pos[lines_timed]
        if self.any_timed:
            # Timing is looked at for the timed clients' lines only (their own little arrays).
            good_t = (sid[lines_timed] >= 0) & _digits_ok(seqw[lines_timed]) & _digits_ok(timew)
            t_seq = _value(seqw[lines_timed][good_t])
            t_sid = sid[lines_timed][good_t]
            keep = (t_seq >= self.window_lo[t_sid]) & (t_seq < self.window_hi[t_sid])
            if keep.any():
                sent = _value(timew[good_t][keep])
                self.latencies_us.append((when[good_t][keep] - sent) % TIME_MOD)
        valid = sid >= 0
        seq = _value(seqw)
        mine = valid & (sid == self.own[owner])
        if mine.any():
            self.problems["echoed"] += int(mine.sum())
            valid &= ~mine
        if not valid.all():
            self.problems["corrupt"] += int(valid.size - valid.sum() - mine.sum())
            owner, sid, seq, seqw = owner[valid], sid[valid], seq[valid], seqw[valid]
        m = int(sid.size)
        if not m:
            return
        self.seen += np.bincount(owner, minlength=self.clients)
        group = owner * self.k + sid
        counts = np.bincount(group, minlength=self.clients * self.k)
        # Grouped by (client, sender) with a stable radix sort, which keeps arrival order in
        # each group: every group's numbers must run on from where it stopped, one by one.
        order = np.argsort(
            group.astype(np.uint16 if counts.size < 65536 else np.int64), kind="stable"
        )
        by_group = group[order]
        starts = np.cumsum(counts) - counts
        flat_next = self.next.reshape(-1)
        wrong = seq[order] != flat_next[by_group] + np.arange(m) - starts[by_group]
        if wrong.any():
            # Digits that are not digits: corrupt, and out of the accounting.
            bad_digits = ~_digits_ok(seqw)
            if bad_digits.any():
                self.problems["corrupt"] += int(bad_digits.sum())
                wrong &= ~bad_digits[order]
            bad = np.unique(by_group[wrong])
            fine = counts.copy()
            fine[bad] = 0
            flat_next += fine
            for g in bad.tolist():
                self._slow(g // self.k, g % self.k, seq[(group == g) & ~bad_digits].tolist())
        else:
            flat_next += counts

    def _slow(self, c: int, s: int, values: list[int]) -> None:
        """Something is wrong for this client and sender: account for it message by message."""
        expected = int(self.next[c, s])
        for v in values:
            if v == expected:
                expected += 1
            elif v > expected:
                self.problems["lost"] += v - expected
                if v - expected <= _REMEMBER_GAP:
                    self.missing.update((c, s, x) for x in range(expected, v))
                expected = v + 1
            elif (c, s, v) in self.missing:
                self.missing.discard((c, s, v))
                self.problems["lost"] -= 1
                self.problems["reordered"] += 1
            else:
                self.problems["duplicated"] += 1
        self.next[c, s] = expected

    def _shortfall(self, sent_of: list[int]) -> Any:
        short = np.maximum(np.asarray(sent_of, dtype=np.int64)[None, :] - self.next, 0)
        short[self.own >= 0, self.own[self.own >= 0]] = 0  # nobody hears their own messages
        return short

    def done(self, sent_of: list[int], alive: Any = None) -> bool:
        """Whether every (living) client has seen every message the others sent so far."""
        short = self._shortfall(sent_of)
        if alive is not None:
            short = short[np.asarray(alive, dtype=bool)]
        return not short.any()

    def finish(self, sent_of: list[int]) -> dict[str, int]:
        """The problems, once every sender has stopped: whatever was sent and not seen is lost."""
        problems = dict(self.problems)
        problems["lost"] += int(self._shortfall(sent_of).sum())
        return problems


class Client:
    __slots__ = ("dead", "got", "idx", "out", "pure", "sender", "sock", "tail", "text")

    def __init__(self, sock: socket.socket, idx: int) -> None:
        self.sock = sock
        self.idx = idx
        self.got = 0  # bytes received in the run
        self.sender = -1  # sender id, or -1
        self.pure = False  # a receiver that never sends: the closed loop counts its bytes
        self.out = b""  # what the kernel did not take yet
        self.tail = b""  # a partial last line, carried to the next receive
        self.text = bytearray()  # setup phase only: what was received so far
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
    ) -> None:
        if n < 2:
            raise ValueError("need at least two clients")
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
                sock.setblocking(False)
                c = Client(sock, i)
                self.clients.append(c)
                self.sel.register(sock, selectors.EVENT_READ, c)
                rooms[i] = room_of(i) if room_of else ROOM
                first = adapter.hello_for(_nick(i), rooms[i])
                if adapter.welcome is None:
                    first += adapter.join_for(_nick(i), rooms[i])
                if first:
                    _send_all(sock, first)
                batch.append(c)
            if adapter.welcome is not None:
                self._await(
                    batch,
                    adapter.welcome,
                    deadline,
                    lambda c, rooms=rooms: _send_all(
                        c.sock, adapter.join_for(_nick(c.idx), rooms[c.idx])
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
                data = c.sock.recv(SETUP_RECV)
            except BlockingIOError:
                continue
            except OSError as exc:
                raise LoadError(f"client {c.idx}: {exc}") from None
            if not data:
                raise LoadError(
                    f"client {c.idx}: server closed the connection: {bytes(c.text[-300:])!r}"
                )
            c.text += data
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
        arena, view = self.arena, self.view
        for key, _ in events:
            c: Client = key.data
            f = self.fill
            start = f + len(c.tail)
            if c.tail:
                arena[f:start] = c.tail
            try:
                n = c.sock.recv_into(view[start : start + RECV_BYTES])
            except BlockingIOError:
                continue
            except OSError:
                n = 0
            if n == 0:
                self.sel.unregister(c.sock)
                c.dead = True
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
            if last >= CHECK_AT:
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
        except BlockingIOError:
            return
        s.out = s.out[sent:]

    def _send(self, s: Client, count: int, now_us: int) -> None:
        sid = s.sender
        seq0 = self.sent_of[sid]
        fmt = self.formats[sid]
        stamp = now_us % TIME_MOD
        data = b"".join([fmt % (seq, stamp) for seq in range(seq0, seq0 + count)])
        self.sent_of[sid] = seq0 + count
        self.sent_total += count
        try:
            sent = s.sock.send(data)
        except BlockingIOError:
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
        problems["corrupt"] += sum(1 for c in self.clients if c.tail)  # a partial line at the end
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
        except BlockingIOError:
            time.sleep(0.001)
            continue
        view = view[sent:]
