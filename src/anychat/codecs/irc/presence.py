"""IRCv3 presence: ``MONITOR`` (730-734), ``SETNAME``, and the AWAY/ACCOUNT/SETNAME/INVITE
notifications of ``away-notify``, ``account-notify``, ``setname`` and ``invite-notify``.

Commands become model commands (:class:`~anychat.model.Watch`, :class:`~anychat.model.SetRealname`);
the broker keeps the watch list and decides who hears what. Rendering is pure: each
notification is shown only to clients that negotiated its capability, and that choice is part
of the codec's encoding key (:data:`.caps.RENDERING`), so a rendering shared by many clients is
right for all of them. Monitor numerics name their recipient, so the broker sends each watcher
its own event.
"""

from __future__ import annotations

from typing import Final

from ... import model as m
from .. import Inbound, LocalReply
from .state import Pending
from .wire import Wire, clean

__all__ = ["monitor", "render_presence", "setname"]

#: RFC 2812 §2.3: a line, CRLF included, is at most 512 bytes (tags aside).
_LINE_BYTES: Final = 510


def monitor(w: Wire, params: tuple[str, ...]) -> list[Inbound]:
    """``MONITOR +|- nick[,nick...]``, ``MONITOR C|L|S`` (IRCv3 monitor)."""
    if not params or not params[0]:
        return w.need_params("MONITOR")
    op = params[0].upper()
    if op in ("+", "-"):
        if len(params) < 2 or not params[1].strip(","):
            return w.need_params("MONITOR")
        nicks = tuple(n for n in params[1].split(",") if n)
        return [m.Watch(op=op, nicks=nicks, ref=w.state.track(Pending("monitor", extra=op)))]
    if op in ("C", "L", "S"):
        return [m.Watch(op=op, ref=w.state.track(Pending("monitor", extra=op)))]
    fail = f"FAIL MONITOR INVALID_PARAMS {clean(params[0])[:20]} :Unknown MONITOR subcommand"
    return [LocalReply(f":{w.server} {fail}\r\n".encode())]


def setname(w: Wire, params: tuple[str, ...]) -> list[Inbound]:
    """``SETNAME :realname`` (IRCv3 setname)."""
    if not params or not params[0]:
        return w.need_params("SETNAME")
    return [m.SetRealname(realname=params[0], ref=w.state.track(Pending("setname")))]


def _joined_lists(w: Wire, code: str, items: list[str], *before: str) -> list[str]:
    """``items`` comma-joined in as few numeric lines of at most 512 bytes as they fit."""
    head = len(w.num(code, *before, ":").encode())
    lines: list[str] = []
    batch: list[str] = []
    size = head
    for item in items:
        if batch and size + len(item) + 1 > _LINE_BYTES:
            lines.append(w.num(code, *before, ":" + ",".join(batch)))
            batch, size = [], head
        batch.append(item)
        size += len(item) + 1
    if batch:
        lines.append(w.num(code, *before, ":" + ",".join(batch)))
    return lines


def _presence(w: Wire, event: m.Presence) -> list[str]:
    masks = [w.mask_of(n, u) for n, u in zip(event.online, event.users, strict=False)]
    lines = _joined_lists(w, "730", masks) + _joined_lists(w, "731", list(event.offline))
    if event.refused:
        lines += [
            w.num("734", str(m.MAX_WATCHED), t, ":Monitor list is full")
            for t in _joined_lists_raw(list(event.refused))
        ]
    return lines


def _joined_lists_raw(items: list[str]) -> list[str]:
    """Comma-joined chunks short enough to be a middle parameter of one line."""
    chunks: list[str] = []
    batch: list[str] = []
    size = 0
    for item in items:
        if batch and size + len(item) + 1 > 400:
            chunks.append(",".join(batch))
            batch, size = [], 0
        batch.append(item)
        size += len(item) + 1
    if batch:
        chunks.append(",".join(batch))
    return chunks


def render_presence(w: Wire, event: m.Event, pending: Pending | None) -> list[str] | None:
    """The lines for a presence event, or ``None`` if ``event`` is not one."""
    caps = w.state.caps
    match event:
        case m.Presence():
            return _presence(w, event)
        case m.WatchList(nicks=nicks):
            return [*_joined_lists(w, "732", list(nicks)), w.num("733", ":End of MONITOR list")]
        case m.AwayChanged(nick=nick, text=text):
            if "away-notify" not in caps:
                return []
            line = f":{w.mask_of(nick, event.user)} AWAY"
            return [f"{line} :{clean(text)}" if text else line]
        case m.AccountChanged(nick=nick, account=account):
            if "account-notify" not in caps:
                return []
            return [f":{w.mask_of(nick, event.user)} ACCOUNT {account or '*'}"]
        case m.RealnameChanged(nick=nick, realname=realname):
            if "setname" not in caps:
                return []
            return [f":{w.mask_of(nick, event.user)} SETNAME :{clean(realname)}"]
    return None
