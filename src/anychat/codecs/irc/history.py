"""IRCv3 ``draft/chathistory`` requests and the ``chathistory`` batches that answer them.

``CHATHISTORY BEFORE|AFTER|LATEST|AROUND|BETWEEN <target> <ref> [<ref>] <limit>`` becomes one
model :class:`~anychat.model.History` request (two for AROUND: the messages before and after the
reference, joined into one batch). References are ``msgid=`` (anychat's message ids, the ones the
``msgid`` tag carries) or ``*`` for LATEST; ``timestamp=`` references and ``TARGETS`` need a
store query by time that anychat does not have, and are refused with ``FAIL``.

As draft/chathistory counts them: ``LATEST`` gives the newest messages (after the reference, if
one is given), ``BETWEEN a b`` counts from ``a`` towards ``b`` (the oldest after ``a`` when ``a``
is the older, the newest before it when it is the newer), both references excluded; every batch
is in ascending order.
"""

from __future__ import annotations

from typing import Final

from ... import model as m
from .. import Inbound, LocalReply
from .state import Pending
from .wire import Wire

__all__ = ["MAX_LIMIT", "chathistory"]

#: ISUPPORT ``CHATHISTORY``: the most messages one request returns.
MAX_LIMIT: Final = 100


def _fail(w: Wire, code: str, *context: str) -> list[Inbound]:
    text = " ".join(("FAIL CHATHISTORY", code, *context))
    return [LocalReply(f":{w.server} {text}\r\n".encode())]


def _msgid(ref: str) -> int | None:
    if ref.startswith("msgid="):
        value = ref[6:]
        return int(value) if value.isascii() and value.isdigit() and len(value) < 19 else None
    return None


def chathistory(w: Wire, params: tuple[str, ...]) -> list[Inbound]:
    if not params:
        return w.need_params("CHATHISTORY")
    sub = params[0].upper()
    if sub == "TARGETS":
        return _fail(w, "INVALID_PARAMS", "TARGETS", ":TARGETS is not supported")
    if sub not in ("BEFORE", "AFTER", "LATEST", "AROUND", "BETWEEN"):
        return _fail(w, "INVALID_PARAMS", params[0], ":Unknown subcommand")
    wanted = 5 if sub == "BETWEEN" else 4
    if len(params) < wanted:
        return w.need_params("CHATHISTORY")
    target, refs, limit_text = params[1], params[2 : wanted - 1], params[wanted - 1]
    if not (limit_text.isascii() and limit_text.isdigit()) or len(limit_text) > 6:
        return _fail(w, "INVALID_PARAMS", sub, limit_text, ":Invalid limit")
    limit = min(int(limit_text), MAX_LIMIT)
    ids = [_msgid(r) for r in refs]
    if sub == "LATEST" and refs[0] == "*":
        ids = [None]
    elif None in ids:
        return _fail(w, "INVALID_PARAMS", sub, refs[0], ":Only msgid= references are supported")
    state = w.state
    if sub == "AROUND":
        (around,) = ids
        assert around is not None
        batch = state.begin_pages()
        before = Pending("chathistory", target, extra=sub, batch=batch)
        after = Pending("chathistory", target, extra=sub, batch=batch, last=True)
        return [
            m.History(
                target=target, before=around + 1, limit=(limit + 1) // 2, ref=state.track(before)
            ),
            m.History(target=target, after=around, limit=limit // 2, ref=state.track(after)),
        ]
    first = ids[0]
    newer_than = 0  # a lower bound the answer is filtered by (the store counts from the top)
    if sub == "BEFORE":
        query = m.History(target=target, before=first, limit=limit)
    elif sub == "AFTER":
        query = m.History(target=target, after=first, limit=limit)
    elif sub == "LATEST":
        # The newest messages, and of those only the ones after the reference (if any): the
        # newest N after X are the newest N overall that are after X.
        query = m.History(target=target, limit=limit)
        newer_than = first or 0
    else:
        start, end = ids
        assert start is not None and end is not None
        if start <= end:  # counted from the first reference: the oldest N after it
            query = m.History(target=target, after=start, before=end, limit=limit)
        else:  # the first is the newer: the newest N before it, down to the second
            query = m.History(target=target, before=start, limit=limit)
            newer_than = end
    pending = Pending("chathistory", target, extra=sub, batch=0, last=True, after=newer_than)
    ref = state.track(pending)
    return [
        m.History(target=query.target, before=query.before, after=query.after, limit=limit, ref=ref)
    ]


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
    return [f":{w.server} BATCH +{name} {kind} {target}", *tagged, f":{w.server} BATCH -{name}"]
