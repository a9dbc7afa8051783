"""IRCv3 capability negotiation (``CAP LS/LIST/REQ/END``, capability-negotiation 3.2) as pure data.

Only capabilities the server really implements are offered, with their values for ``CAP LS 302``
clients. ``CAP REQ`` is all or nothing: one unknown capability (or one that may not be turned
off) and the whole request is refused with ``NAK`` echoing it exactly as sent.
"""

from __future__ import annotations

from typing import Final

__all__ = ["CAPABILITIES", "RENDERING", "STICKY_302", "ls_tokens", "parse_request"]

#: Offered capabilities and their ``CAP LS 302`` values ("" = none).
CAPABILITIES: Final[dict[str, str]] = {
    # Replays and CHATHISTORY answers come in chathistory batches.
    "batch": "",
    # Capability changes are announced with CAP NEW/DEL (the set never changes at run time).
    "cap-notify": "",
    # Hosts never change (they are cloaked), so no CHGHOST is ever needed; clients may ask.
    "chghost": "",
    # CHATHISTORY with msgid= references (no timestamps, no TARGETS).
    "draft/chathistory": "",
    "echo-message": "",
    "extended-join": "",
    "message-tags": "",
    "multi-prefix": "",
    "sasl": "PLAIN",
    "server-time": "",
    "userhost-in-names": "",
}
#: Capabilities that change how fanned-out events are rendered: part of the encoding key.
RENDERING: Final = frozenset({"server-time", "message-tags", "extended-join", "batch"})
#: IRCv3: a client that negotiated with 302 has cap-notify and cannot turn it off.
STICKY_302: Final = frozenset({"cap-notify"})


def ls_tokens(cap_302: bool) -> list[str]:
    """What ``CAP LS`` lists: values only for 302 clients."""
    return [f"{c}={v}" if v and cap_302 else c for c, v in CAPABILITIES.items()]


def parse_request(text: str, cap_302: bool) -> dict[str, bool] | None:
    """``CAP REQ :a -b`` as ``{"a": True, "b": False}``; ``None`` means NAK the whole request."""
    words = text.split()
    if not words:
        return None
    changes: dict[str, bool] = {}
    for word in words:
        on = not word.startswith("-")
        name = word.removeprefix("-")
        if name not in CAPABILITIES or (not on and cap_302 and name in STICKY_302):
            return None
        changes[name] = on
    return changes
