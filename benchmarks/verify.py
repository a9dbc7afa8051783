"""Checks every delivery of a benchmark run for loss, duplication and order, in bulk.

Each message's text starts with a fixed-width token: ``^``, the sender's letter, an 8-digit
sequence number and the 8-digit send time (µs, modulo 10**8). ``Verifier`` finds the tokens in
blocks of received lines with numpy (no per-line Python) and checks that, per receiving client
and sender, the numbers run on one by one. Pure: no sockets, so a test can feed it bytes.
"""

from __future__ import annotations

from typing import Any

import numpy as np

MARK = ord("^")
SENDER_IDS = b"ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz"
DIGITS = 8  # sequence number and send time (µs, modulo 10**8) are 8 ASCII digits each
TIME_MOD = 10**DIGITS
TOKEN_BYTES = 2 + 2 * DIGITS
_SENDER_OF = np.full(256, -1, dtype=np.int64)
for _i, _ch in enumerate(SENDER_IDS):
    _SENDER_OF[_ch] = _i
_U = np.uint64
_HI = _U(0xF0F0F0F0F0F0F0F0)
#: Gaps up to this size remember which numbers are missing, so a late one counts as reordered.
_REMEMBER_GAP = 10_000


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
