"""What one IRC connection remembers, and every change to it, in one place.

The codec's input side (:mod:`.commands`) and output side (:mod:`.render`) both need to know who
the client is (its nick, capabilities, the requests still waiting for an answer). Every change to
that knowledge happens here: the command handlers call the ``begin_*``/``track`` methods, and each
outgoing event passes through :meth:`IrcState.observe` before it is rendered, so rendering itself
only reads. That split is what makes fan-out safe: an event rendered once for many clients must
not teach any one of them anything, and :meth:`observe` learns only from answers addressed to this
connection (events carrying one of its own refs).
"""

from __future__ import annotations

import re
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any, Final, NamedTuple

from ... import model as m
from .labels import LabelGroup, wrap
from .parse import escape_tag

if TYPE_CHECKING:
    from .sasl import PlainExchange

__all__ = ["Context", "IrcState", "Pending"]

#: Requests remembered at most; a reply that never came is forgotten, oldest first.
MAX_PENDING: Final = 1024
#: Requests whose answers cannot be counted: their labeled answer waits for the fence.
_ANSWERS_UNCOUNTED: Final = frozenset({"mode", "monitor"})
#: IRCv3 message-tags: a client-only tag name, ``+`` then an optional vendor and a key.
_CLIENT_TAG: Final = re.compile(r"\+(?:[A-Za-z0-9.\-]+/)?[A-Za-z0-9\-]+")


class Pending(NamedTuple):
    """What one of our commands asked, kept until the broker answers it."""

    verb: str
    target: str = ""
    text: str = ""
    kind: m.Kind = m.Kind.PLAIN
    rooms: frozenset[str] = frozenset()
    #: For ISON: the question's id, and whether this is its last nick.
    batch: int = 0
    last: bool = False
    #: Free-form detail a renderer needs (WHOX field letters, a CHATHISTORY subcommand...).
    extra: str = ""
    #: CHATHISTORY: only messages with a higher id, or later, belong to the answer.
    after: int = 0
    after_time: float | None = None
    #: CHATHISTORY asked twice: the most messages the joined answer holds (0 = as they come).
    limit: int = 0


@dataclass(frozen=True, slots=True)
class Context:
    """What :meth:`IrcState.observe` found out about one event, for the renderer."""

    #: The request this event answers (``None`` for fan-out and unsolicited events).
    pending: Pending | None = None
    #: ISON: the complete answer once the last nick is in, else ``None``.
    ison: tuple[str, ...] | None = None
    #: CHATHISTORY: every message of the answer once its last page is in, else ``None``.
    page: tuple[m.Message, ...] | None = None


#: What most events teach: nothing (one shared instance; contexts never change).
_NOTHING: Final = Context()

_HANGUPS: Final = {
    m.ErrorCode.LOGIN_REQUIRED: "Access denied: this server admits only accounts",
    m.ErrorCode.LOGIN_FAILED: "Access denied: bad password",
    m.ErrorCode.STORE_UNAVAILABLE: "Access denied: bad password",
    m.ErrorCode.TLS_REQUIRED: "Access denied: passwords only over TLS",
}


#: What a connection starts with: no capabilities, no user modes (shared, never mutated).
_NONE: frozenset[str] = frozenset()
#: What the tables of requests rarely in flight start as (ISON, history pages, labels): one
#: shared empty dict, replaced by a connection's own before its first entry, never mutated.
_NO_ENTRIES: Final[dict[Any, Any]] = {}


class IrcState:
    """One connection's registration, capabilities and outstanding requests.

    Slotted, and the capability and mode sets start as one shared empty ``frozenset`` that is
    replaced (never mutated) on the rare change: an idle IRC connection carries no instance
    dict and no empty sets of its own (docs/performance.md, "Memory per idle connection").
    """

    __slots__ = (
        "_ison",
        "_labels",
        "_next_ref",
        "_pages",
        "_pending",
        "account",
        "cap_302",
        "caps",
        "client_tags",
        "hangup",
        "hello_sent",
        "modes",
        "negotiating",
        "nick",
        "password",
        "realname",
        "registered",
        "rooms",
        "sasl",
        "user",
    )

    def __init__(self) -> None:
        self.nick = ""
        #: From ``USER``: the username (shown as ``~user``, no ident check) and the realname.
        self.user: str | None = None
        self.realname = ""
        self.password: str | None = None
        #: The account this connection logged in to (learnt from the server's answer).
        self.account: str | None = None
        #: A goodbye the glue must send and close with (a refusal that ends the connection).
        self.hangup: m.Bye | None = None
        self.sasl: PlainExchange | None = None
        self.cap_302 = False
        #: Welcome seen; ``hello_sent`` is true from our Hello until the broker refuses it, so
        #: lines that follow NICK/USER in the same batch reach the broker in order.
        self.registered = False
        self.hello_sent = False
        self.caps: frozenset[str] = _NONE
        self.negotiating = False
        self._next_ref = 1
        self._pending: dict[int, Pending] = {}  # soon written: registration's requests
        #: Rooms we are in, folded -> name, learnt from our own join/part replies (for JOIN 0).
        self.rooms: dict[str, str] = {}
        self.modes: frozenset[str] = _NONE
        #: ISON answers being collected: one 303 line answers all of its nicks.
        self._ison: dict[int, list[str]] = _NO_ENTRIES
        #: History pages being collected (CHATHISTORY AROUND asks twice, answers once).
        self._pages: dict[int, list[m.Message]] = _NO_ENTRIES
        #: The client-only tags of the line being handled, escaped for relaying ("" = none).
        self.client_tags = ""
        #: Labeled commands whose answers are being collected, by each of their refs.
        self._labels: dict[int, LabelGroup] = _NO_ENTRIES

    # ------------------------------------------------------------------ from input

    def track(self, pending: Pending) -> int:
        """Remember a request; returns the ref the broker will copy onto its answer."""
        ref = self._next_ref
        self._next_ref = ref + 1
        if self._pending is _NO_ENTRIES:
            self._pending = {}
        elif len(self._pending) >= MAX_PENDING:  # a reply never came: forget the oldest
            del self._pending[next(iter(self._pending))]
        self._pending[ref] = pending
        return ref

    def rest(self) -> None:
        """The connection goes idle: give back the tables that only requests in flight need.

        A dict keeps the table it grew to after its entries are gone (160 bytes for the
        requests of a registration), and 10,000 idle clients would carry 10,000 of them.
        """
        if not self._pending:
            self._pending = _NO_ENTRIES
        if not self._ison:
            self._ison = _NO_ENTRIES
        if not self._pages:
            self._pages = _NO_ENTRIES
        if not self._labels:
            self._labels = _NO_ENTRIES

    def begin_line(self, tags: dict[str, str]) -> None:
        """A new input line: keep its well-formed client-only tags (``+name``), and only from
        a client that negotiated ``message-tags`` (the others cannot know they are relayed)."""
        if not tags or "message-tags" not in self.caps:
            self.client_tags = ""
            return
        kept = [
            (key if not value else f"{key}={escape_tag(value)}")
            for key, value in tags.items()
            if _CLIENT_TAG.fullmatch(key) and "\x00" not in value
        ]
        text = ";".join(kept)
        self.client_tags = text if len(text) <= m.MAX_CLIENT_TAGS else ""

    def begin_label(self, label: str, refs: list[int], lines: list[str]) -> int:
        """A labeled line became model commands with ``refs`` (and answered ``lines`` at
        once): returns the ref of the fence to send after them (see :mod:`.labels`)."""
        fence = self.track(Pending("fence"))
        verbs = frozenset(self._pending[r].verb for r in refs if r in self._pending)
        group = LabelGroup(label, f"L{fence}", frozenset(refs), fence, list(lines))
        # MODE may answer several times and MONITOR -/C not at all: only the fence tells.
        group.early = not verbs & _ANSWERS_UNCOUNTED
        if self._labels is _NO_ENTRIES:
            self._labels = {}
        for ref in (*refs, fence):
            self._labels[ref] = group
        return fence

    def labelled(self, ref: m.Ref, lines: list[str], server: str) -> list[str] | None:
        """``lines`` answer ``ref``: what to send now if it belongs to a labeled command (its
        whole wrapped answer once the last part is in, else nothing); ``None`` if it does
        not."""
        group = self._labels.get(ref) if isinstance(ref, int) else None
        if group is None:
            return None
        group.lines.extend(lines)
        group.fenced = group.fenced or ref == group.fence
        pending = self._pending
        if group.fenced:
            if any(r in pending and pending[r].verb == "say" for r in group.refs):
                return []  # a stored message's acknowledgement is still to come
        elif not group.early or any(r in pending for r in group.refs):
            return []
        # Done (early: every command had its last answer, so a join's replay, which follows
        # its member list, comes after the labeled answer, not before it).
        for r in (*group.refs, group.fence):
            self._labels.pop(r, None)
        for r in group.refs:
            pending.pop(r, None)  # commands the broker answers with nothing (MONITOR -)
        return wrap(server, group.label, group.name, group.lines, batch="batch" in self.caps)

    def begin_ison(self) -> int:
        batch = self._next_ref
        if self._ison is _NO_ENTRIES:
            self._ison = {}
        self._ison[batch] = []
        return batch

    def begin_pages(self) -> int:
        batch = self._next_ref
        if self._pages is _NO_ENTRIES:
            self._pages = {}
        self._pages[batch] = []
        return batch

    def set_caps(self, changes: dict[str, bool]) -> None:
        caps = set(self.caps)
        for cap, on in changes.items():
            if on:
                caps.add(cap)
            else:
                caps.discard(cap)
        self.caps = frozenset(caps)

    def set_user_mode(self, mode: str, on: bool) -> None:
        self.modes = (self.modes | {mode}) if on else (self.modes - {mode})

    # ------------------------------------------------------------------ from output

    def _take(self, ref: m.Ref, *, final: bool = True) -> Pending | None:
        if not isinstance(ref, int):
            return None
        return self._pending.pop(ref, None) if final else self._pending.get(ref)

    def observe(self, event: m.Event) -> Context:
        """Learn what an outgoing event teaches this connection; say what it answers."""
        if type(event) is m.Ack:  # one per message sent: before the long match below
            return Context(self._take(event.ref))
        match event:
            case m.Message() | m.Quitted() | m.Bye() | m.AwayChanged() | m.AccountChanged():
                return _NOTHING
            case m.RealnameChanged(realname=realname):
                pending = self._take(event.ref)
                if pending is not None:
                    self.realname = realname
                return Context(pending)
            case m.Presence() | m.WatchList() | m.Tagged():
                return Context(self._take(event.ref))
            case m.Joined(room=room):
                pending = self._take(event.ref, final=False) if event.ref is not None else None
                if pending is not None:
                    self.rooms[m.casefold(room)] = room
                return Context(pending)
            case m.Parted(room=room):
                pending = self._take(event.ref)
                if pending is not None:
                    self.rooms.pop(m.casefold(room), None)
                return Context(pending)
            case m.NickChanged(new=new):
                pending = self._take(event.ref)
                if pending is not None:
                    self.nick = new
                return Context(pending)
            case m.Welcome(nick=nick):
                pending = self._take(event.ref)
                self.registered = True
                self.nick = nick
                self.password = None  # checked (or not needed): no reason to keep it
                return Context(pending)
            case m.LoggedIn(nick=nick):
                pending = self._take(event.ref, final=False)
                self.account = nick
                if pending is not None and pending.verb == "sasl":
                    if not self.registered or m.casefold(self.nick) == m.casefold(nick):
                        self._take(event.ref)  # else the nick change to the account's answers
                return Context(pending)
            case m.RoomTopic():
                pending = self._take(event.ref, final=False)
                if pending is None or pending.verb != "join":
                    self._take(event.ref)  # a join's ref also answers its member list
                return Context(pending)
            case m.UserInfo(nick=nick):
                pending = self._take(event.ref)
                return Context(pending, self._ison_step(pending, nick))
            case m.Error():
                pending = self._take(event.ref, final=False)
                if pending is None:
                    return _NOTHING
                if pending.verb != "mode":
                    self._take(event.ref)  # MODE refuses change by change: kept (bounded)
                if pending.verb == "hello":
                    self.hello_sent = False  # back to waiting for a usable NICK
                    hangup = _HANGUPS.get(event.code)
                    if hangup is not None:
                        self.hangup = m.Bye(code=event.code, reason=hangup)
                if pending.verb == "chathistory" and pending.batch:
                    self._pages.pop(pending.batch, None)  # one refusal answers both halves
                return Context(pending, self._ison_step(pending, None))
            case m.Kicked(room=room, nick=nick):
                # Delivered to the kicked member on its own (never fanned out with others).
                if m.casefold(nick) == m.casefold(self.nick):
                    self.rooms.pop(m.casefold(room), None)
                return Context(self._take(event.ref))
            case m.Ack() | m.Members() | m.RoomList() | m.AwayStatus() | m.Pong():
                return Context(self._take(event.ref))
            case m.ServerStats() | m.RoomModes() | m.ModeChanged() | m.BanList() | m.Invited():
                return Context(self._take(event.ref))
            case m.HistoryPage(messages=messages):
                pending = self._take(event.ref)
                if pending is None or pending.verb != "chathistory":
                    return Context(pending)
                since = pending.after_time
                kept = tuple(
                    x
                    for x in messages
                    if x.id > pending.after and (since is None or x.time > since)
                )
                if not pending.batch:
                    return Context(pending, page=kept)
                collected = self._pages.get(pending.batch)
                if collected is None:
                    return Context(pending)
                collected.extend(kept)
                if not pending.last:
                    return Context(pending)
                del self._pages[pending.batch]
                # Two pages overlap at nothing (AROUND: before id+1, after id; BETWEEN: the two
                # readings' windows are disjoint): ordered by id.
                page = sorted(collected, key=lambda x: x.id)
                return Context(pending, page=tuple(page[: pending.limit or None]))
            case m.ConversationList():
                return Context(self._take(event.ref))
        return _NOTHING

    def _ison_step(self, pending: Pending | None, nick: str | None) -> tuple[str, ...] | None:
        """Replies arrive in the order asked (one client, one broker), so the last one answers."""
        if pending is None or pending.verb != "ison":
            return None
        online = self._ison.get(pending.batch)
        if online is None:
            return None
        if nick is not None:
            online.append(nick)
        if not pending.last:
            return None
        del self._ison[pending.batch]
        return tuple(online)
