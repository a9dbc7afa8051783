"""What a node's bus events look like on the wire: one JSON object each (pure).

Only the events other nodes act on cross the bus (room messages, topics and mode changes, private
messages, invites, the news about users the directory needs, a take-over of a nick by its
account's owner), each tagged with the node that sent it, so a node can ignore its own and tell
which node a user lives on. Decoding accepts only those types: a malformed payload raises
``ValueError`` and the bus drops it with a log line, never the node.
"""

from __future__ import annotations

import dataclasses
import json
import math
from typing import Any, Final

from .. import model as m
from .directory import BusEvent, Present, RoomState, TakeOver

__all__ = [
    "batch_note",
    "decode",
    "encode",
    "encode_batch_note",
    "encode_numbered",
    "numbered_echo",
    "own_prefix",
]

_TYPES: Final[dict[str, type[Any]]] = {
    cls.__name__: cls
    for cls in (m.Message, m.Joined, m.Parted, m.Kicked, m.Quitted, m.NickChanged, m.RoomTopic,
                m.ModeChanged, m.Invited, Present, TakeOver, RoomState)
}  # fmt: skip


#: Fields that are not text; every other field must be a string.
_FIELD_TYPES: Final[dict[str, type | tuple[type, ...]]] = {
    "id": int,
    "time": (int, float),
    "since": (int, float),
    "history": bool,
    "notice": bool,
    "rooms": list,
    "changes": list,
}


def _fields(event: BusEvent) -> dict[str, Any]:
    fields = {f.name: getattr(event, f.name) for f in dataclasses.fields(event)}
    fields.pop("ref", None)  # a reply's ref is for its sender, never for other nodes
    fields.pop("key", None)  # an idempotency key is the sender's business
    if isinstance(event, m.Message):
        fields["kind"] = event.kind.value
    elif isinstance(event, m.ModeChanged):
        fields["changes"] = [[c.mode, c.on, c.arg] for c in event.changes]
    return fields


def encode(node: str, event: BusEvent) -> bytes:
    return json.dumps({"n": node, "t": type(event).__name__, "f": _fields(event)}).encode()


_NUMBERED: Final = ',"t":"Message","f":{"id":'


def own_prefix(node: str) -> str:
    """How every numbered message ``node`` publishes begins."""
    return '{"n":' + json.dumps(node) + ',"s":'


def encode_numbered(node: str, seq: int, msg: m.Message) -> tuple[str, str]:
    """``msg`` as two halves of JSON, to be published as ``head + str(id) + tail`` by the
    script that numbers it (so its id is taken and published in one step). ``seq`` is the
    sending node's own count: it tells that node which of its messages came back."""
    fields = _fields(msg)
    del fields["id"]
    head = own_prefix(node) + str(seq) + _NUMBERED
    return head, "," + json.dumps(fields, separators=(",", ":"))[1:] + "}"


def numbered_echo(data: str, prefix: str) -> tuple[int, int]:
    """The sequence number and id of a numbered message that begins with ``prefix`` (this
    node's own, back from Redis: read without decoding the rest, which may be missing: a
    private message to another node comes back as its head and id alone); ``ValueError`` if
    it is not one."""
    seq, _, rest = data[len(prefix) :].partition(",")
    if not rest.startswith(_NUMBERED[1:]):
        raise ValueError("not a numbered message")
    return int(seq), int(rest[len(_NUMBERED) - 1 :].partition(",")[0])


_NOTE: Final = ',"c":'


def encode_batch_note(node: str, first_seq: int, count: int) -> tuple[str, str]:
    """The note a batch script ends with on ``node``'s own channel, as two halves to be
    published as ``head + str(first id) + tail``: the batch numbered ``count`` messages of
    ``node`` from sequence number ``first_seq`` on (heard after all of them that come back)."""
    return f'{own_prefix(node)}{first_seq}{_NOTE}{count},"b":', "}"


def batch_note(data: str, prefix: str) -> tuple[int, int, int]:
    """(first sequence number, count, first id) of a batch note beginning with ``prefix``;
    ``ValueError`` if it is not one."""
    seq, _, rest = data[len(prefix) :].partition(",")
    if not rest.startswith(_NOTE[1:]):
        raise ValueError("not a batch note")
    count, _, first_id = rest[len(_NOTE) - 1 :].partition(',"b":')
    return int(seq), int(count), int(first_id.rstrip("}"))


def _mode_change(obj: Any) -> m.ModeChange:
    mode, on, arg = obj
    if not (isinstance(mode, str) and isinstance(on, bool) and isinstance(arg, str)):
        raise TypeError(f"bad mode change {obj!r}")
    if len(mode) != 1 or mode not in m.ROOM_MODES:
        raise ValueError(f"unknown mode {mode!r}")
    return m.ModeChange(mode=mode, on=on, arg=arg)


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
            if isinstance(value, float) and not math.isfinite(value):
                raise ValueError(f"{name} is {value}")
        if cls is m.Message:
            fields["kind"] = m.Kind(fields.get("kind", "plain"))
        elif cls is Present:
            fields["rooms"] = tuple(r for r in fields.get("rooms", ()) if isinstance(r, str))
        elif cls is m.ModeChanged:
            fields["changes"] = tuple(_mode_change(c) for c in fields.get("changes", ()))
        event: BusEvent = cls(**fields)
    except (TypeError, ValueError) as exc:
        raise ValueError(f"bad bus event {kind}: {exc}") from None
    return node, event
