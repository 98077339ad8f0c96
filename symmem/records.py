"""``@record``: a frozen dataclass, built with one compilation instead of six.

symmem's values between stages are frozen dataclasses: syntax nodes, layer arguments,
options, results.  ``@record`` is ``@dataclass(frozen=True)`` with the same result (the class
is a dataclass: ``fields``, ``replace`` and ``asdict`` work; its ``__init__``, ``__repr__``,
``__eq__``, ``__hash__`` and frozen ``__setattr__`` / ``__delattr__`` behave as the ones
dataclasses writes), made faster to create.

Why: Python 3.11 and 3.12 compile each method a dataclass gets with its own ``exec``, six per
frozen class, and a command creates about 60 of these classes before it computes anything:
about 55 ms of a 0.45 s cold ``symmem memory`` (issue 8's goal is 1.5x a bare ``import
sympy``).  CPython 3.13 compiles all of a class's methods in a single ``exec``
(``_FuncBuilder`` in Lib/dataclasses.py).  Here only ``__init__`` is compiled per class (its
signature is the fields'); ``__eq__``, ``__hash__`` and ``__repr__`` are closures over the
field names, and the frozen pair, the same text for every class, is compiled once per
process: a third of dataclasses' cost.  On 3.13+ ``@record`` is ``dataclass(frozen=True)``.

Supported: defaults, ``field(default_factory=...)``, ``field(compare=False)``,
``field(repr=False)``, ``field(hash=...)``, ``field(metadata=...)``, ``ClassVar``,
inheritance between records and ``__post_init__``.  Not supported (a ``TypeError`` at class
creation says so, use ``dataclass``): ``init=False`` fields, ``kw_only`` and ``InitVar``.
tests/test_records.py compares every behaviour with ``dataclass(frozen=True)``.
"""

from __future__ import annotations

import dataclasses
import inspect
import operator
import reprlib
import sys
from collections.abc import Callable
from typing import Any, TypeVar, dataclass_transform

_T = TypeVar("_T")

_FIELDS = "__dataclass_fields__"


class _Factory:
    """The default of a ``default_factory`` field in the signature (dataclasses' sentinel)."""

    def __repr__(self) -> str:
        return "<factory>"


_FACTORY = _Factory()


def _frozen_pair_factory() -> Callable[..., tuple[Any, Any]]:
    """dataclasses' frozen ``__setattr__`` / ``__delattr__`` (Lib/dataclasses.py,
    ``_frozen_get_del_attr``), compiled once per process and closed over each class."""
    source = """
def pair(cls, fields, FrozenInstanceError):
    def __setattr__(self, name, value):
        if type(self) is cls or name in fields:
            raise FrozenInstanceError(f"cannot assign to field {name!r}")
        super(cls, self).__setattr__(name, value)
    def __delattr__(self, name):
        if type(self) is cls or name in fields:
            raise FrozenInstanceError(f"cannot delete field {name!r}")
        super(cls, self).__delattr__(name)
    return __setattr__, __delattr__
"""
    made: dict[str, Any] = {}
    exec(compile(source, "<record frozen pair>", "exec"), {}, made)  # noqa: S102
    return made["pair"]


_frozen_pair = _frozen_pair_factory()


def _fields_of(names: tuple[str, ...]) -> Callable[[Any], tuple[Any, ...]]:
    """The tuple ``(obj.a, obj.b, ...)`` of these fields (``attrgetter``: C speed)."""
    if len(names) >= 2:
        return operator.attrgetter(*names)
    if names:
        name = names[0]
        return lambda obj: (getattr(obj, name),)
    return lambda obj: ()


def _value_methods(
    compared: tuple[str, ...], hashed: tuple[str, ...], shown: tuple[str, ...]
) -> dict[str, Callable[..., Any]]:
    """``__eq__``, ``__hash__`` and ``__repr__`` as dataclasses writes them, as closures over
    the field names: no compilation.  Equality compares the tuples of the compared fields of
    two objects of the same class, the hash is the hash of the tuple of the hashed fields,
    the repr ``Name(a=1, b='x')`` (recursion shown as ``...``)."""
    key, hash_key = _fields_of(compared), _fields_of(hashed)

    def __eq__(self: Any, other: Any) -> Any:
        if other.__class__ is self.__class__:
            return key(self) == key(other)
        return NotImplemented

    def __hash__(self: Any) -> int:
        return hash(hash_key(self))

    @reprlib.recursive_repr()
    def __repr__(self: Any) -> str:
        inner = ", ".join(f"{name}={getattr(self, name)!r}" for name in shown)
        return f"{self.__class__.__qualname__}({inner})"

    return {"__eq__": __eq__, "__hash__": __hash__, "__repr__": __repr__}


@dataclass_transform(frozen_default=True, field_specifiers=(dataclasses.field, dataclasses.Field))
def record(cls: type[_T]) -> type[_T]:
    """``@dataclass(frozen=True)``, built with one ``exec`` instead of six (module docstring)."""
    if sys.version_info >= (3, 13):
        return dataclasses.dataclass(frozen=True)(cls)
    return _build(cls)


def _build(cls: type[_T]) -> type[_T]:
    documented = cls.__dict__.get("__doc__") is not None
    if not documented:
        cls.__doc__ = ""  # dataclasses would compute it from a signature not yet written
    own = dict(cls.__dict__)  # the methods the class body defines
    for name in ("__setattr__", "__delattr__"):
        if name in own:
            raise TypeError(f"Cannot overwrite attribute {name} in class {cls.__name__}")
    # dataclasses collects the fields; every method is written here.  Asked for a frozen
    # class it would compile the frozen pair twice per class (the same text each time), so
    # it is asked for a plain one, over bases shown as not frozen for that moment (its
    # check that frozen and non-frozen dataclasses do not mix is made here instead)
    bases = [b.__dict__["__dataclass_params__"] for b in cls.__mro__[1:] if _FIELDS in b.__dict__]
    if not all(p.frozen for p in bases):
        raise TypeError("cannot inherit frozen dataclass from a non-frozen one")
    for p in bases:
        p.frozen = False
    try:
        cls = dataclasses.dataclass(init=False, repr=False, eq=False)(cls)
    finally:
        for p in bases:
            p.frozen = True
    built = cls.__dataclass_params__  # type: ignore[attr-defined]
    built.init = built.repr = built.eq = built.frozen = True  # what the class is once built
    every = getattr(cls, _FIELDS).values()
    for f in every:
        if f._field_type is dataclasses._FIELD_INITVAR:  # type: ignore[attr-defined]
            raise TypeError(f"{cls.__name__}.{f.name}: @record does not take InitVar")
    fields = dataclasses.fields(cls)  # type: ignore[arg-type]
    for f in fields:
        if not f.init or f.kw_only is True:
            raise TypeError(
                f"{cls.__name__}.{f.name}: @record takes neither init=False nor kw_only"
            )

    env: dict[str, Any] = {
        "__set": object.__setattr__,
        "__factory": _FACTORY,
    }
    params: list[str] = []
    body: list[str] = []
    seen_default = False
    for f in fields:
        if f.default is not dataclasses.MISSING:
            env[f"__d_{f.name}"] = f.default
            params.append(f"{f.name}=__d_{f.name}")
            value = f.name
            seen_default = True
        elif f.default_factory is not dataclasses.MISSING:
            env[f"__f_{f.name}"] = f.default_factory
            params.append(f"{f.name}=__factory")
            value = f"__f_{f.name}() if {f.name} is __factory else {f.name}"
            seen_default = True
        else:
            if seen_default:
                raise TypeError(f"non-default argument {f.name!r} follows default argument")
            params.append(f.name)
            value = f.name
        body.append(f"  __set(self, {f.name!r}, {value})")
    if hasattr(cls, "__post_init__"):
        body.append("  self.__post_init__()")

    source = "\n".join([f"def __init__(self, {', '.join(params)}):", *(body or ["  pass"])])
    made: dict[str, Any] = {}
    exec(compile(source, f"<record {cls.__qualname__}>", "exec"), env, made)  # noqa: S102
    made["__init__"].__annotations__ = {f.name: f.type for f in fields} | {"return": None}
    made.update(
        _value_methods(
            tuple(f.name for f in fields if f.compare),
            tuple(f.name for f in fields if (f.compare if f.hash is None else f.hash)),
            tuple(f.name for f in fields if f.repr),
        )
    )
    explicit_hash = "__hash__" in own and not (own["__hash__"] is None and "__eq__" in own)
    made["__setattr__"], made["__delattr__"] = _frozen_pair(
        cls, frozenset(f.name for f in fields), dataclasses.FrozenInstanceError
    )
    for name, fn in made.items():
        if name in own and not (name == "__hash__" and not explicit_hash):
            continue  # the class's own method stays, as dataclasses leaves it
        fn.__qualname__ = f"{cls.__qualname__}.{name}"
        fn.__module__ = cls.__module__
        setattr(cls, name, fn)
    if not documented:
        cls.__doc__ = cls.__name__ + str(inspect.signature(cls)).replace(" -> None", "")
    return cls
