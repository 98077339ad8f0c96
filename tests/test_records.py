"""``@record`` against ``@dataclass(frozen=True)``: the same class, built faster.

Each test builds the same class body twice, once with each decorator, and checks that what
users and symmem observe is the same: the signature, defaults and factories, equality and
hashing (``compare``/``hash`` fields), ``repr``, frozenness, ``replace``/``fields``/``asdict``,
inheritance, ``__post_init__``, copying (pickle's protocol), and the cases dataclasses refuses.
"""

from __future__ import annotations

import copy
import dataclasses
import inspect
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, ClassVar

import pytest

import symmem
from symmem.records import record

FROZEN = dataclass(frozen=True)


def both(body: Any) -> tuple[type, type]:
    """The class ``body(decorator)`` made by ``@record`` and by ``@dataclass(frozen=True)``."""
    return body(record), body(FROZEN)


def _point(deco: Any) -> type:
    @deco
    class Point:
        """A point."""

        x: int
        y: int = 2
        tags: tuple[str, ...] = field(default_factory=tuple)
        note: str = field(default="", compare=False)
        secret: str = field(default="s", repr=False)
        meta: dict[str, int] = field(default_factory=dict, hash=False)
        unit: ClassVar[str] = "px"

    return Point


def _observe(cls: Any) -> dict[str, Any]:
    a = cls(1)
    b = cls(1, 2, (), "other note")
    c = cls(1, 3)
    out: dict[str, Any] = {
        "signature": str(inspect.signature(cls)),
        "fields": [(f.name, f.default, f.compare, f.repr) for f in dataclasses.fields(cls)],
        "repr": repr(cls(1, 2, ("a",), "n", "hidden")),
        "eq": (a == b, a == c, a != c, a == (1, 2)),
        "hash": (hash(a) == hash(b), hash(a) == hash(cls(1, 2, (), "", "s", {}))),
        "replace": dataclasses.replace(a, y=5).y,
        "asdict": dataclasses.asdict(a),
        "copy": (copy.deepcopy(b) == b, copy.copy(b) == b),
        "factory_fresh": cls(1).meta is not cls(1).meta,
        "classvar": (cls.unit, "unit" not in [f.name for f in dataclasses.fields(cls)]),
        "doc": cls.__doc__,
        "match_args": cls.__match_args__,
        "params": repr(cls.__dataclass_params__),
    }
    for action in (lambda: setattr(a, "x", 9), lambda: delattr(a, "x"), lambda: setattr(a, "z", 1)):
        with pytest.raises(dataclasses.FrozenInstanceError) as e:
            action()
        out.setdefault("frozen", []).append(str(e.value))
    return out


def test_a_record_is_a_frozen_dataclass() -> None:
    fast, slow = both(_point)
    assert hash(fast(1, 2, ("a",))) == hash(slow(1, 2, ("a",)))
    assert dataclasses.is_dataclass(fast)
    assert _observe(fast) == _observe(slow)


def test_inheritance_post_init_and_own_methods() -> None:
    def body(deco: Any) -> type:
        @deco
        class Base:
            """Base."""

            a: int

            def __post_init__(self) -> None:
                if self.a < 0:
                    raise ValueError("negative")

        @deco
        class Child(Base):
            """Child."""

            b: str = "x"

            def __repr__(self) -> str:  # a class's own method stays
                return f"child {self.a}"

        return Child

    fast, slow = both(body)
    for cls in (fast, slow):
        with pytest.raises(ValueError, match="negative"):
            cls(-1)
    assert repr(fast(1)) == repr(slow(1)) == "child 1"
    assert str(inspect.signature(fast)) == str(inspect.signature(slow))
    assert fast(1, "y") == fast(1, "y") and fast(1) != fast(2)
    assert [f.name for f in dataclasses.fields(fast)] == ["a", "b"]


def test_an_own_eq_keeps_the_generated_hash_rules() -> None:
    def body(deco: Any) -> type:
        @deco
        class Loose:
            """Equal to everything of its class."""

            v: int

            def __eq__(self, other: object) -> bool:
                return isinstance(other, Loose)

        return Loose

    fast, slow = both(body)
    assert fast(1) == fast(2) and slow(1) == slow(2)
    assert (hash(fast(1)) == hash(fast(1))) and (hash(fast(1)) == hash((1,)))
    assert hash(slow(1)) == hash((1,))


def test_an_undocumented_record_gets_dataclasses_docstring() -> None:
    def body(deco: Any) -> type:
        @deco
        class Bare:
            n: int
            m: str = "q"

        return Bare

    fast, slow = both(body)
    assert fast.__doc__ == slow.__doc__ == "Bare(n: 'int', m: 'str' = 'q')"


def test_refusals() -> None:
    with pytest.raises(TypeError, match="non-default argument 'b' follows default argument"):

        @record
        class Order:
            a: int = 1
            b: int  # type: ignore[misc]

    with pytest.raises(TypeError, match="init=False"):

        @record
        class NoInit:
            a: int = field(default=1, init=False)

    with pytest.raises(TypeError, match="Cannot overwrite attribute __setattr__"):

        @record
        class Mutating:
            a: int

            def __setattr__(self, name: str, value: Any) -> None:
                object.__setattr__(self, name, value)


def test_symmems_frozen_dataclasses_are_records() -> None:
    """One way to write a value class, so each is built at ``@record``'s cost (the generated
    lark runtime aside)."""
    root = Path(symmem.__file__).parent
    slow = [
        f"{p.relative_to(root)}:{n}"
        for p in sorted(root.rglob("*.py"))
        if p.name not in ("_lark_parser.py", "records.py")
        for n, line in enumerate(p.read_text(encoding="utf-8").splitlines(), 1)
        if "dataclass(frozen=True)" in line
    ]
    assert not slow, f"use @symmem.records.record: {slow}"
