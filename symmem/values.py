"""Values a user gives a symbol, made exact without ever evaluating their text.

``sympy.sympify("__import__('os')...")`` runs Python, and ``sympify("abc")`` silently
makes a new symbol: user values never go near it.  A value is a number (``int``,
:class:`~fractions.Fraction`, a finite ``float`` read as the decimal it prints as, a numpy
integer), a decimal literal as text (``"768"``, ``"1e23"``: read by
:func:`symmem.limits.parse_decimal`), or a sympy expression (a symbol or formula built by
symmem itself).  Anything else is an error of the caller's choosing
(:class:`~symmem.errors.SemanticError` for symbol values, OptionError for options).
"""

from __future__ import annotations

import math
import numbers
from collections.abc import Mapping
from fractions import Fraction
from functools import lru_cache
from typing import Any

import sympy

from symmem.errors import SemanticError, SymmemError
from symmem.limits import (
    MAX_EXPONENT,
    check_number,
    exponent_too_large,
    parse_decimal,
    power_too_large,
    too_large,
)


def as_value(value: Any, what: str, error: type[SymmemError] = SemanticError) -> sympy.Expr:
    """``value`` as an exact sympy number (or a symmem-made sympy expression).

    ``what`` names the value in the message ("d_model", "--set d_model").
    """
    if isinstance(value, sympy.Basic):
        if not isinstance(value, sympy.Expr):
            raise error(f"{what}: expected a number, got {type(value).__name__} {value}")
        if value.is_Integer:
            check_number(int(value), what)
        elif value.is_Rational:
            check_number(Fraction(int(value.p), int(value.q)), what)
        elif value.is_Float:
            return as_value(float(value), what, error)
        return value
    if isinstance(value, bool) or value is None:
        raise error(f"{what}: expected a number, got {value!r}")
    if isinstance(value, int | Fraction):
        return _exact(check_number(value, what))
    if isinstance(value, float):
        if not math.isfinite(value):
            raise error(f"{what}: expected a finite number, got {value!r}")
        parsed = parse_decimal(repr(value).replace("e+", "e"), what)
        if parsed is None:  # pragma: no cover - repr of a finite float is a decimal
            parsed = Fraction(value)
        return _exact(parsed)
    if isinstance(value, numbers.Integral):  # numpy integers
        return _exact(check_number(int(value), what))
    if isinstance(value, numbers.Real):  # numpy floats
        return as_value(float(value), what, error)
    if isinstance(value, str):
        try:
            parsed = parse_decimal(value, what)
        except SymmemError as exc:
            raise error(exc.message) from None
        if parsed is None:
            shown = value if len(value) <= 40 else value[:37] + "..."
            raise error(
                f"{what}: expected a number, got the text {shown!r} (symmem never evaluates "
                "text; give a number such as 768 or 1e23)"
            )
        return _exact(parsed)
    raise error(f"{what}: expected a number, got {type(value).__name__} {value!r}"[:200])


def _exact(value: int | Fraction) -> sympy.Expr:
    if isinstance(value, Fraction):
        return sympy.Rational(value.numerator, value.denominator)
    return sympy.Integer(value)


def as_name(value: Any, what: str, error: type[SymmemError] = SemanticError) -> str:
    """A symbol's name: a string, or :class:`SymmemError`."""
    if not isinstance(value, str):
        raise error(f"{what}: expected a symbol name, got {value!r}"[:200])
    return value


def as_names(values: Any, what: str, error: type[SymmemError] = SemanticError) -> tuple[str, ...]:
    """Symbol names: an iterable of strings (a lone string is one name)."""
    if isinstance(values, str):
        return (values,)
    if values is None:
        return ()
    try:
        items = tuple(values)
    except TypeError:
        raise error(f"{what}: expected symbol names, got {values!r}"[:200]) from None
    return tuple(as_name(v, what, error) for v in items)


def as_mapping(values: Any, what: str, error: type[SymmemError] = SemanticError) -> dict[str, Any]:
    """A mapping of symbol names to values (None: empty)."""
    if values is None:
        return {}
    if not hasattr(values, "items"):
        raise error(f"{what}: expected a mapping of symbol names to values, got {values!r}"[:200])
    out: dict[str, Any] = {}
    for k, v in values.items():
        out[as_name(k, what, error)] = v
    return out


def as_whole(value: Any, what: str, error: type[SymmemError] = SemanticError) -> int:
    """A whole number (an int, or a number whose value is whole: ``64.0``, ``"1e3"``)."""
    v = as_value(value, what, error)
    if not v.is_Integer:
        raise error(f"{what}: expected a whole number, got {value!r}"[:200])
    return int(v)


def require(value: Any, kind: type | tuple[type, ...], what: str, error: type[SymmemError]) -> Any:
    """``value`` when it is an instance of ``kind``, else ``error`` naming what was expected."""
    if not isinstance(value, kind) or (isinstance(value, bool) and bool not in _kinds(kind)):
        names = " or ".join(k.__name__ for k in _kinds(kind))
        raise error(f"{what}: expected {names}, got {type(value).__name__} {value!r}"[:200])
    return value


def _kinds(kind: type | tuple[type, ...]) -> tuple[type, ...]:
    return kind if isinstance(kind, tuple) else (kind,)


def substitute(expr: Any, values: Mapping[Any, Any]) -> Any:
    """``expr.xreplace(values)``, except that a power whose base and exponent become numbers
    is judged by size before sympy computes it: ``10^400^d`` at ``d = 8`` is a
    :class:`~symmem.limits.LimitError`, where ``xreplace`` would compute a number of 10^20
    digits and never return.  Every place that binds values to symmem's expressions goes
    through here (tests/test_hostile.py)."""
    if not isinstance(expr, sympy.Basic) or not values:
        return expr
    if powers_are_small(expr):
        return expr.xreplace(values)  # no power can explode: sympy's own substitution
    return _substitute(expr, values)


def _substitute(expr: sympy.Basic, values: Mapping[Any, Any]) -> sympy.Basic:
    if expr in values:
        return values[expr]
    if not expr.args:
        return expr
    args = [_substitute(a, values) for a in expr.args]
    if all(a is b for a, b in zip(args, expr.args, strict=True)):
        return expr
    if isinstance(expr, sympy.Pow):
        base, exp = args
        if exp.is_Rational and (
            power_too_large(_fraction(base), _fraction(exp))
            if base.is_Rational
            else exponent_too_large(_fraction(exp))
        ):
            raise too_large(f"the power {base}^{exp}"[:120])
    return expr.func(*args)


@lru_cache(maxsize=4096)  # a constraint is checked at many values: its powers once
def powers_are_small(expr: sympy.Basic) -> bool:
    """Every power in ``expr`` has an exponent that cannot make a power of an accepted
    number (below 10^MAX_DIGITS) take long to compute: a rational whose numerator is at
    most :data:`~symmem.limits.MAX_EXPONENT`."""
    return all(p.exp.is_Rational and abs(p.exp.p) <= MAX_EXPONENT for p in expr.atoms(sympy.Pow))


def _fraction(x: sympy.Rational) -> Fraction:
    return Fraction(int(x.p), int(x.q))
