"""Reading typed fields out of a decoded JSON object, shared by the JSON codecs.

Each helper returns the field or raises :class:`BadField` naming what is wrong, which the codec
turns into one ``bad_command`` answer for that line.
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any, Final

from .. import model as m

__all__ = [
    "BadField",
    "int_field",
    "opt_id_field",
    "opt_int_field",
    "opt_str_field",
    "ref_field",
    "str_field",
]


class BadField(Exception):
    """A field is missing or has the wrong type; becomes an Invalid/ProtocolError upstream."""


def str_field(obj: Mapping[str, Any], key: str, default: str | None = None) -> str:
    value = obj.get(key, default)
    if not isinstance(value, str):
        raise BadField(f"{key!r} must be a string")
    return value


def opt_str_field(obj: Mapping[str, Any], key: str) -> str | None:
    value = obj.get(key)
    if value is not None and not isinstance(value, str):
        raise BadField(f"{key!r} must be a string or null")
    return value


def int_field(obj: Mapping[str, Any], key: str) -> int:
    value = obj.get(key)
    if not isinstance(value, int) or isinstance(value, bool):
        raise BadField(f"{key!r} must be an integer")
    return value


def opt_int_field(obj: Mapping[str, Any], key: str) -> int | None:
    return None if obj.get(key) is None else int_field(obj, key)


#: Message ids are 64-bit signed integers in every store.
_MAX_ID: Final = 2**63 - 1


def opt_id_field(obj: Mapping[str, Any], key: str) -> int | None:
    """A message id bound: JSON integers have no limit, a database column has."""
    value = opt_int_field(obj, key)
    if value is not None and not -_MAX_ID <= value <= _MAX_ID:
        raise BadField(f"{key!r} is out of range")
    return value


def ref_field(obj: Mapping[str, Any]) -> m.Ref:
    value = obj.get("ref")
    if value is None or (isinstance(value, str | int) and not isinstance(value, bool)):
        return value
    raise BadField("'ref' must be a string or an integer")
