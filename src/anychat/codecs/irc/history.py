"""IRCv3 ``draft/chathistory`` requests and the ``chathistory`` batches that answer them.

``CHATHISTORY BEFORE|AFTER|LATEST|AROUND|BETWEEN <target> <ref> [<ref>] <limit>`` becomes one
model :class:`~anychat.model.History` request (two for AROUND: the messages before and after the
reference, joined into one batch). References are ``msgid=`` (anychat's message ids, the ones the
``msgid`` tag carries), ``timestamp=`` (as ``server-time`` spells them) or ``*`` for LATEST.
``CHATHISTORY TARGETS <timestamp> <timestamp> <limit>`` becomes one model
:class:`~anychat.model.Conversations` request, answered by a ``draft/chathistory-targets`` batch
of ``CHATHISTORY TARGETS <target> <time>`` lines.

As draft/chathistory counts them: ``LATEST`` gives the newest messages (after the reference, if
one is given), ``BETWEEN a b`` counts from ``a`` towards ``b`` (the oldest after ``a`` when ``a``
is the older, the newest before it when it is the newer), both references excluded; every batch
is in ascending order, TARGETS' too.

``BETWEEN`` with one ``msgid=`` and one ``timestamp=`` cannot tell here which is the older (a
message id's time is the store's). Ids grow with time, so it asks both ways, as two requests
joined into one batch like AROUND's: the oldest after the first reference that are before the
second, and the newest before the first that are after the second. Only the way that is right
finds anything (the other window is empty), so no store lookup of the id is needed.
"""

from __future__ import annotations

from datetime import datetime
from typing import Any, Final, NamedTuple

from ... import model as m
from .. import Inbound, LocalReply
from .state import Pending
from .wire import Wire, time_tag

__all__ = ["MAX_LIMIT", "batch_lines", "chathistory", "targets_lines"]

#: ISUPPORT ``CHATHISTORY``: the most messages one request returns.
MAX_LIMIT: Final = 100


def _fail(w: Wire, code: str, *context: str) -> list[Inbound]:
    text = " ".join(("FAIL CHATHISTORY", code, *context))
    return [LocalReply(f":{w.server} {text}\r\n".encode())]


class Ref(NamedTuple):
    """A message reference: a message id (``msgid=``) or a moment (``timestamp=``)."""

    id: int | None = None
    time: float | None = None

    def bounds(self, *, below: bool) -> dict[str, Any]:
        """History fields for "older than this" (``below``) or "newer than this"."""
        if self.id is not None:
            return {"before" if below else "after": self.id}
        return {"before_time" if below else "after_time": self.time}

    def newer_than(self) -> dict[str, Any]:
        """Pending fields that filter an answer down to what is newer than this."""
        return {"after": self.id or 0} if self.id is not None else {"after_time": self.time}

    def older_than(self, other: Ref) -> bool:
        if self.id is not None and other.id is not None:
            return self.id <= other.id
        return (self.time or 0.0) <= (other.time or 0.0)


def _ref(text: str) -> Ref | None:
    kind, _, value = text.partition("=")
    if kind == "msgid" and value.isascii() and value.isdigit() and len(value) < 19:
        return Ref(id=int(value))
    if kind == "timestamp":
        try:  # IRCv3 server-time: 2026-01-31T12:00:00.000Z (UTC, milliseconds optional)
            when = datetime.fromisoformat(value.replace("Z", "+00:00"))
        except ValueError:
            return None
        if when.tzinfo is None or len(value) > 40:
            return None
        return Ref(time=when.timestamp())
    return None


def chathistory(w: Wire, params: tuple[str, ...]) -> list[Inbound]:
    if not params:
        return w.need_params("CHATHISTORY")
    sub = params[0].upper()
    if sub == "TARGETS":
        return _targets(w, params)
    if sub not in ("BEFORE", "AFTER", "LATEST", "AROUND", "BETWEEN"):
        return _fail(w, "INVALID_PARAMS", params[0], ":Unknown subcommand")
    wanted = 5 if sub == "BETWEEN" else 4
    if len(params) < wanted:
        return w.need_params("CHATHISTORY")
    target, texts, limit_text = params[1], params[2 : wanted - 1], params[wanted - 1]
    if not (limit_text.isascii() and limit_text.isdigit()) or len(limit_text) > 6:
        return _fail(w, "INVALID_PARAMS", sub, limit_text, ":Invalid limit")
    limit = min(int(limit_text), MAX_LIMIT)
    if sub == "LATEST" and texts[0] == "*":
        refs: list[Ref | None] = [None]
    else:
        refs = [_ref(t) for t in texts]
        bad = next((t for t, r in zip(texts, refs, strict=True) if r is None), None)
        if bad is not None:
            return _fail(w, "INVALID_PARAMS", sub, bad, ":Invalid message reference")
    state = w.state
    if sub == "BETWEEN" and refs[0] is not None and refs[1] is not None:
        if (refs[0].id is None) != (refs[1].id is None):
            return _between_mixed(w, target, refs[0], refs[1], limit)
    if sub == "AROUND":
        (around,) = refs
        assert around is not None
        batch = state.begin_pages()
        before = Pending("chathistory", target, extra=sub, batch=batch)
        after = Pending("chathistory", target, extra=sub, batch=batch, last=True)
        low: dict[str, Any]
        high: dict[str, Any]
        if around.id is not None:  # the message itself is in the earlier half
            low, high = {"before": around.id + 1}, {"after": around.id}
        else:
            low, high = {"before_time": around.time}, {"after_time": (around.time or 0) - 1e-6}
        return [
            m.History(target=target, limit=(limit + 1) // 2, ref=state.track(before), **low),
            m.History(target=target, limit=limit // 2, ref=state.track(after), **high),
        ]
    first = refs[0]
    bounds: dict[str, Any] = {}
    # A lower bound the answer is filtered by (the store counts from the top).
    newer: dict[str, Any] = {}
    if sub == "BEFORE":
        assert first is not None
        bounds = first.bounds(below=True)
    elif sub == "AFTER":
        assert first is not None
        bounds = first.bounds(below=False)
    elif sub == "LATEST":
        # The newest messages, and of those only the ones after the reference (if any): the
        # newest N after X are the newest N overall that are after X.
        newer = first.newer_than() if first is not None else {}
    else:
        start, end = refs
        assert start is not None and end is not None
        if start.older_than(end):  # counted from the first reference: the oldest N after it
            bounds = {**start.bounds(below=False), **end.bounds(below=True)}
        else:  # the first is the newer: the newest N before it, down to the second
            bounds = start.bounds(below=True)
            newer = end.newer_than()
    pending = Pending("chathistory", target, extra=sub, batch=0, last=True, **newer)
    return [m.History(target=target, limit=limit, ref=state.track(pending), **bounds)]


def _between_mixed(w: Wire, target: str, start: Ref, end: Ref, limit: int) -> list[Inbound]:
    """BETWEEN a message id and a moment, either way round: both readings (module docs)."""
    state = w.state
    batch = state.begin_pages()
    forward = Pending("chathistory", target, extra="BETWEEN", batch=batch)
    newer = end.newer_than()
    backward = Pending(
        "chathistory", target, extra="BETWEEN", batch=batch, last=True, limit=limit, **newer
    )
    return [
        m.History(
            target=target,
            limit=limit,
            ref=state.track(forward),
            **start.bounds(below=False),
            **end.bounds(below=True),
        ),
        m.History(
            target=target, limit=limit, ref=state.track(backward), **start.bounds(below=True)
        ),
    ]


def _targets(w: Wire, params: tuple[str, ...]) -> list[Inbound]:
    """``CHATHISTORY TARGETS <timestamp=a> <timestamp=b> <limit>``: which conversations had
    messages between a and b (BETWEEN's semantics; both must be timestamps)."""
    if len(params) < 4:
        return w.need_params("CHATHISTORY")
    if len(params) > 4:
        return _fail(w, "INVALID_PARAMS", "TARGETS", ":Too many parameters")
    moments: list[float] = []
    for text in params[1:3]:
        ref = _ref(text)
        if ref is None or ref.time is None:
            return _fail(w, "INVALID_PARAMS", "TARGETS", text, ":Invalid timestamp")
        moments.append(ref.time)
    limit_text = params[3]
    if not (limit_text.isascii() and limit_text.isdigit()) or len(limit_text) > 6:
        return _fail(w, "INVALID_PARAMS", "TARGETS", limit_text, ":Invalid limit")
    pending = Pending("chathistory", extra="TARGETS", last=True)
    start, end = moments
    limit = min(int(limit_text), MAX_LIMIT)
    return [m.Conversations(start=start, end=end, limit=limit, ref=w.state.track(pending))]


def targets_lines(w: Wire, name: str, found: tuple[m.Conversation, ...]) -> list[str]:
    """The answer to TARGETS: one line per conversation with its last message's time."""
    lines = [f":{w.server} CHATHISTORY TARGETS {c.target} {time_tag(c.time)}" for c in found]
    return batch_lines(w, name, "", lines, kind="draft/chathistory-targets")


def batch_lines(
    w: Wire, name: str, target: str, lines: list[str], *, kind: str = "chathistory"
) -> list[str]:
    """``lines`` inside an IRCv3 batch (when the client negotiated ``batch``)."""
    if "batch" not in w.state.caps:
        return lines
    tagged = [
        f"@batch={name};{line[1:]}" if line.startswith("@") else f"@batch={name} {line}"
        for line in lines
    ]
    params = f"{kind} {target}" if target else kind  # TARGETS' batch names no target
    return [f":{w.server} BATCH +{name} {params}", *tagged, f":{w.server} BATCH -{name}"]
