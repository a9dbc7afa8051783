"""Presence events for the JSON-lines and text protocols (pure).

IRC shows every presence event to the clients that asked for it (``away-notify``,
``account-notify``, ``setname``, ``invite-notify``, ``MONITOR``). JSON and nc users see that
someone they share a room with went away or came back (docs/protocol.md "Presence"); the other
events are IRC's own (a watch list is only kept for IRC clients, a real name is only shown by
IRC, and a ``TAGMSG``'s client-only tags mean nothing elsewhere), so these codecs write nothing
for them.
"""

from __future__ import annotations

from collections.abc import Callable, Mapping
from typing import Any, Final

from .. import model as m
from ._fields import ref_field as _ref
from ._fields import str_field as _str

__all__ = ["JSON_EVENTS", "event_to_json", "render_text", "unshown"]


def unshown(event: m.Event) -> bool:
    """Events the JSON-lines, WebSocket and text protocols do not show (nothing is written)."""
    match event:
        case m.AccountChanged() | m.RealnameChanged() | m.Presence() | m.WatchList():
            return True
        case m.Tagged():
            return True
        case m.Invited(notice=True):
            return True
    return False


def event_to_json(event: m.Event) -> dict[str, Any] | None:
    match event:
        case m.AwayChanged(nick=nick, text=text):
            return {"type": "user_away", "nick": nick, "text": text}
    return None


#: Event parsers for the client side.
JSON_EVENTS: Final[dict[str, Callable[[Mapping[str, Any]], m.Event]]] = {
    "user_away": lambda o: m.AwayChanged(
        nick=_str(o, "nick"), text=_str(o, "text", ""), ref=_ref(o)
    ),
}


def render_text(event: m.Event, clean: Callable[[str], str]) -> str | None:
    """One line for an nc user, or ``None`` for an event this module does not cover."""
    match event:
        case m.AwayChanged(nick=nick, text=text):
            return f"* {nick} is away: {clean(text)}" if text else f"* {nick} is back"
    return None
