"""What a node's bus events look like on the wire: one JSON object each (pure).

Only the events other nodes act on cross the bus (room messages and topics, private messages,
and the news about users the directory needs), each tagged with the node that sent it, so a
node can ignore its own and tell which node a user lives on. Decoding accepts only those types:
a malformed payload raises ``ValueError`` and the bus drops it with a log line, never the node.
"""

from __future__ import annotations

import dataclasses
import json
from typing import Any, Final

from .. import model as m
from .directory import BusEvent, Present

__all__ = ["decode", "encode"]

_TYPES: Final[dict[str, type[Any]]] = {
    cls.__name__: cls
    for cls in (m.Message, m.Joined, m.Parted, m.Kicked, m.Quitted, m.NickChanged, m.RoomTopic,
                Present)
}  # fmt: skip


#: Fields that are not text; every other field must be a string.
_FIELD_TYPES: Final[dict[str, type | tuple[type, ...]]] = {
    "id": int,
    "time": (int, float),
    "since": (int, float),
    "history": bool,
    "rooms": list,
}


def encode(node: str, event: BusEvent) -> bytes:
    fields = {f.name: getattr(event, f.name) for f in dataclasses.fields(event)}
    fields.pop("ref", None)  # a reply's ref is for its sender, never for other nodes
    fields.pop("key", None)  # an idempotency key is the sender's business
    if isinstance(event, m.Message):
        fields["kind"] = event.kind.value
    return json.dumps({"n": node, "t": type(event).__name__, "f": fields}).encode()


def decode(data: bytes | str) -> tuple[str, BusEvent]:
    """The sending node and the event; ``ValueError`` for anything else."""
    try:
        obj = json.loads(data)
        node, kind, fields = obj["n"], obj["t"], obj["f"]
    except (ValueError, KeyError, TypeError) as exc:
        raise ValueError(f"bad bus payload: {exc}") from None
    cls = _TYPES.get(kind) if isinstance(kind, str) else None
    if cls is None or not isinstance(node, str) or not isinstance(fields, dict):
        raise ValueError(f"unknown bus event {kind!r}")
    try:
        for name, value in fields.items():
            expected = _FIELD_TYPES.get(name, str)
            if not isinstance(value, expected) or isinstance(value, bool) is not (expected is bool):
                raise TypeError(f"{name} is {type(value).__name__}")
        if cls is m.Message:
            fields["kind"] = m.Kind(fields.get("kind", "plain"))
        elif cls is Present:
            fields["rooms"] = tuple(r for r in fields.get("rooms", ()) if isinstance(r, str))
        event: BusEvent = cls(**fields)
    except (TypeError, ValueError) as exc:
        raise ValueError(f"bad bus event {kind}: {exc}") from None
    return node, event
