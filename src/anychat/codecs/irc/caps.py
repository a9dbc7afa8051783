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
    # ACCOUNT when someone sharing a channel logs in (or its account is deleted).
    "account-notify": "",
    # account= on messages from logged-in users.
    "account-tag": "",
    # AWAY when someone sharing a channel goes away or comes back, and after it joins away.
    "away-notify": "",
    # Replays and CHATHISTORY answers come in chathistory batches.
    "batch": "",
    # Capability changes are announced with CAP NEW/DEL (the set never changes at run time).
    "cap-notify": "",
    # Hosts never change (they are cloaked), so no CHGHOST is ever needed; clients may ask.
    "chghost": "",
    # CHATHISTORY: every subcommand, TARGETS too, by msgid= or timestamp= (ISUPPORT
    # CHATHISTORY, MSGREFTYPES); TARGETS answers in draft/chathistory-targets batches.
    "draft/chathistory": "",
    "echo-message": "",
    "extended-join": "",
    # INVITE to a channel's members when one of them invites someone.
    "invite-notify": "",
    # Answers to @label= commands labeled, in a labeled-response batch when several.
    "labeled-response": "",
    "message-tags": "",
    "multi-prefix": "",
    "sasl": "PLAIN",
    "server-time": "",
    # SETNAME to change one's real name; shown to whoever shares a channel (and asked).
    "setname": "",
    "userhost-in-names": "",
}
#: Capabilities that change how fanned-out events are rendered: part of the encoding key.
RENDERING: Final = frozenset(
    {
        "account-notify",
        "account-tag",
        "away-notify",
        "batch",
        "extended-join",
        "invite-notify",
        "message-tags",
        "server-time",
        "setname",
    }
)
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
