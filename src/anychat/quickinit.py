"""A faster ``__init__`` for the frozen, slotted dataclasses made for every message.

A frozen dataclass's generated ``__init__`` sets each field with ``object.__setattr__(self,
name, value)``: a call that looks the name up on the class before it finds the slot, about 70 ns
a field. A message is five such objects (the ``Say`` a codec parses, the ``Message``, its
``Ack``, the ``Deliver`` and ``Persist`` effects), about 25 fields in all, several microseconds of
a message's ~20 µs at full load. :func:`quick_init` replaces that ``__init__`` with one that
calls each slot's descriptor directly (``Message.id.__set__(self, id)``): the same fields,
defaults and signature, instances exactly as frozen (assigning still raises
``FrozenInstanceError``), in about half the time. ``tests/test_quickinit.py`` checks the
replacement against the generated one field by field.
"""

from __future__ import annotations

import dataclasses
from typing import Any, TypeVar

__all__ = ["quick_init"]

T = TypeVar("T")


def quick_init(cls: type[T]) -> type[T]:
    """Give the frozen slotted dataclass ``cls`` an ``__init__`` that sets its slots directly.

    Only for classes without ``__post_init__``, ``InitVar`` or ``init=False`` fields (refused
    with ``TypeError``, so a class that grows one cannot silently lose it).
    """
    params = getattr(cls, "__dataclass_params__", None)
    if params is None or not params.frozen or "__slots__" not in cls.__dict__:
        raise TypeError(f"{cls.__name__} is not a frozen, slotted dataclass")
    if hasattr(cls, "__post_init__"):
        raise TypeError(f"{cls.__name__} has __post_init__")
    fields = dataclasses.fields(cls)  # type: ignore[arg-type]
    declared = cls.__dataclass_fields__  # type: ignore[attr-defined]  # InitVars too
    if any(not f.init for f in fields) or len(fields) != len(declared):
        raise TypeError(f"{cls.__name__} has fields that __init__ does not set")
    namespace: dict[str, Any] = {"_MISSING": dataclasses.MISSING}
    positional: list[str] = []
    keyword: list[str] = []
    body: list[str] = []
    for f in fields:
        name = f.name
        namespace[f"_set_{name}"] = cls.__dict__[name].__set__
        if f.default is not dataclasses.MISSING:
            namespace[f"_default_{name}"] = f.default
            param = f"{name}=_default_{name}"
            body.append(f"    _set_{name}(self, {name})")
        elif f.default_factory is not dataclasses.MISSING:
            namespace[f"_factory_{name}"] = f.default_factory
            param = f"{name}=_MISSING"
            body.append(
                f"    _set_{name}(self, _factory_{name}() if {name} is _MISSING else {name})"
            )
        else:
            param = name
            body.append(f"    _set_{name}(self, {name})")
        (keyword if f.kw_only else positional).append(param)
    signature = ", ".join(["self", *positional, *(["*", *keyword] if keyword else [])])
    source = f"def __init__({signature}):\n" + ("\n".join(body) or "    pass") + "\n"
    exec(source, namespace)  # generated from the class's own fields, as dataclasses does
    init = namespace["__init__"]
    init.__qualname__ = f"{cls.__qualname__}.__init__"
    init.__module__ = cls.__module__
    init.__doc__ = cls.__init__.__doc__
    cls.__init__ = init  # type: ignore[method-assign]
    return cls
