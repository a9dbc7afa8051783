"""quick_init: the faster __init__ builds exactly what the dataclass's own would, still frozen."""

from __future__ import annotations

import dataclasses
from dataclasses import InitVar, dataclass, field

import pytest

from anychat import effects
from anychat import model as m
from anychat.quickinit import quick_init


def _twins() -> tuple[type, type]:
    """The same dataclass twice: with its generated ``__init__``, and with ``quick_init``'s."""

    def make() -> type:
        @dataclass(frozen=True, slots=True)
        class Sample:
            a: int
            b: str = "b"
            c: tuple[int, ...] = field(default_factory=tuple)
            d: list[int] = field(default_factory=list, compare=False)
            e: str = field(default="e", kw_only=True)
            f: int = field(kw_only=True)

        return Sample

    return make(), quick_init(make())


def _values(obj: object) -> dict[str, object]:
    return {f.name: getattr(obj, f.name) for f in dataclasses.fields(obj)}  # type: ignore[arg-type]


def test_same_fields_as_the_generated_init() -> None:
    plain, quick = _twins()
    cases: list[tuple[tuple[object, ...], dict[str, object]]] = [
        ((1,), {"f": 2}),
        ((1, "x"), {"f": 2}),
        ((1, "x", (3,), [4]), {"e": "y", "f": 2}),
        ((), {"a": 1, "b": "x", "c": (5,), "f": 0}),
    ]
    for args, kwargs in cases:
        assert _values(quick(*args, **kwargs)) == _values(plain(*args, **kwargs))


def test_default_factory_called_each_time() -> None:
    _, quick = _twins()
    first, second = quick(1, f=0), quick(1, f=0)
    assert first.d == [] and first.d is not second.d


@pytest.mark.parametrize(
    ("args", "kwargs"),
    [((), {"f": 1}), ((1,), {}), ((1,), {"f": 1, "g": 2}), ((1, "b", (), [], "e"), {"f": 1})],
)
def test_refuses_what_the_generated_init_refuses(
    args: tuple[object, ...], kwargs: dict[str, object]
) -> None:
    plain, quick = _twins()
    with pytest.raises(TypeError):
        plain(*args, **kwargs)
    with pytest.raises(TypeError):
        quick(*args, **kwargs)


def test_still_frozen_hashable_and_replaceable() -> None:
    msg = m.Message(id=1, time=2.0, sender="ann", target="#general", text="hi")
    with pytest.raises(dataclasses.FrozenInstanceError):
        msg.id = 2  # type: ignore[misc]
    assert hash(msg) == hash(m.Message(id=1, time=2.0, sender="ann", target="#general", text="hi"))
    again = dataclasses.replace(msg, id=3)
    assert (again.id, again.text, again.kind, again.user) == (3, "hi", m.Kind.PLAIN, "")
    assert msg == dataclasses.replace(again, id=1)


@pytest.mark.parametrize(
    "cls", [m.Say, m.Message, m.Ack, effects.Deliver, effects.Persist, effects.Broadcast]
)
def test_the_hot_classes_use_it(cls: type) -> None:
    init = cls.__dict__["__init__"]
    assert init.__qualname__ == f"{cls.__qualname__}.__init__"
    assert init.__code__.co_filename == "<string>"
    assert "_set_" in " ".join(init.__code__.co_names)


def test_refuses_classes_it_cannot_copy() -> None:
    @dataclass(slots=True)
    class Mutable:
        a: int

    @dataclass(frozen=True, slots=True)
    class Checked:
        a: int

        def __post_init__(self) -> None:
            pass

    @dataclass(frozen=True, slots=True)
    class Derived:
        a: int
        b: int = field(init=False, default=0)

    @dataclass(frozen=True)
    class Unslotted:
        a: int

    @dataclass(frozen=True, slots=True)
    class WithInitVar:
        a: int
        b: InitVar[int] = 0

    for cls in (Mutable, Checked, Derived, Unslotted, WithInitVar):
        with pytest.raises(TypeError):
            quick_init(cls)
