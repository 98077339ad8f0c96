"""What a model requires of its values, as data: whole sizes, divisibility, positivity.

The semantic pass (:mod:`symmem.graph`) and the layers' ``validate`` state each condition
once, as a :class:`Constraint` over sympy expressions; the same objects then serve three
purposes, so that no rule is written twice:

* at build time, each is checked at the values the model is loaded at (``--set``), and a
  violation is a :class:`~symmem.errors.SemanticError` pointing at the statement;
* :meth:`symmem.model.Model.check_values` checks them at other values;
* :func:`symmem.solve.solve` and :func:`symmem.sweep.sweep` keep only the values the model
  accepts (a solve steps down to the largest accepted value, a sweep leaves out the points
  the model refuses), so that every answer is one ``--set`` would take.

A constraint is a conjunction of primitive tests on expressions: ``whole`` (an integer),
``positive`` (> 0) and ``nonneg`` (>= 0).  Its message is written from the values of its
arguments, so that a violation reads the same wherever it is found.
"""

from __future__ import annotations

import decimal
import math
from collections.abc import Callable, Mapping, Sequence
from dataclasses import field
from fractions import Fraction
from typing import Any

import sympy
from sympy.printing.pycode import PythonCodePrinter

from symmem.errors import SemanticError, Span
from symmem.limits import checked_power
from symmem.records import record
from symmem.values import substitute

#: a test: ("whole" | "positive" | "nonneg", expression)
Test = tuple[str, sympy.Expr]
Number = int | Fraction


@record
class Constraint:
    """A condition the model puts on its values: every test holds.

    ``args`` are the expressions the message is written from; ``message(*values)`` is the
    complaint given their values; ``where`` prefixes it ("linear 'blocks.fc': ") and
    ``span`` points at the statement that asked for it.
    """

    tests: tuple[Test, ...]
    args: tuple[sympy.Expr, ...]
    message: Callable[..., str] = field(compare=False)
    where: str = ""
    span: Span | None = None

    def at(self, where: str, span: Span | None) -> Constraint:
        return Constraint(self.tests, self.args, self.message, where, span)

    def symbols(self) -> set[sympy.Symbol]:
        out: set[sympy.Symbol] = set()
        for _, e in self.tests:
            out |= e.free_symbols
        return out

    def violation(
        self,
        ev: Callable[[sympy.Expr], Any],
        exact: Callable[[sympy.Expr], Number | None] | None = None,
    ) -> str | None:
        """The complaint at the values ``ev`` evaluates with, or None when the constraint
        holds or cannot be decided there (symbols without a value).  ``exact``, when given,
        evaluates the tests without floats (``ev`` may round a large fraction to a whole)."""
        for kind, e in self.tests:
            value = exact(e) if exact is not None else None
            if value is None:
                value = _exact(ev(e))
            if value is None:
                if kind == "whole" and sympy.sympify(e).is_integer is False:
                    return self.where + self.message(*(ev(a) for a in self.args))
                continue
            if not holds(kind, value):
                shown = (_shown(ev(a), exact(a) if exact is not None else None) for a in self.args)
                return self.where + self.message(*shown)
        return None


def holds(kind: str, value: Number) -> bool:
    if kind == "whole":
        return isinstance(value, int) or value.denominator == 1
    if kind == "positive":
        return value > 0
    return value >= 0


def _exact(v: Any) -> Number | None:
    """An evaluator's answer as an exact number (floats that are whole become ints)."""
    if v is None:
        return None
    if isinstance(v, int | Fraction):
        return v
    if isinstance(v, float):
        return int(v) if v.is_integer() else Fraction(v)
    if isinstance(v, sympy.Integer):
        return int(v)
    if isinstance(v, sympy.Rational):
        return Fraction(int(v.p), int(v.q))
    return None


def _shown(v: Any, exact: Number | None = None) -> Any:
    """A value for a message (formatted with ``:g``): whole floats as ints; a value beyond a
    float's range from its exact value, as a Decimal (10^999 / 12 is 8.33333E+997, not inf)."""
    if isinstance(v, float) and math.isinf(v) and exact is not None:
        with decimal.localcontext() as ctx:
            ctx.prec = 6
            return decimal.Decimal(exact.numerator) / decimal.Decimal(exact.denominator)
    if isinstance(v, float) and v.is_integer():
        return int(v)
    return v


# ---------------------------------------------------------------- recording


class Recorder:
    """An evaluator that knows no value (every expression stays symbolic) and keeps the
    constraints a layer's ``validate`` states, instead of checking them."""

    def __init__(self) -> None:
        self.found: list[Constraint] = []

    def __call__(self, expr: sympy.Expr) -> None:
        return None

    def add(self, c: Constraint) -> None:
        self.found.append(c)


def require(ev: Callable[[sympy.Expr], Any], c: Constraint) -> None:
    """State ``c``: recorded by a :class:`Recorder`, else checked at ``ev``'s values."""
    if isinstance(ev, Recorder):
        ev.add(c)
        return
    message = c.violation(ev, getattr(ev, "exact", None))
    if message is not None:
        raise SemanticError(message, c.span)


# ---------------------------------------------------------------- the usual constraints


def whole(expr: sympy.Expr, message: Callable[..., str]) -> Constraint:
    return Constraint((("whole", expr),), (expr,), message)


def positive(expr: sympy.Expr, message: Callable[..., str]) -> Constraint:
    return Constraint((("positive", expr),), (expr,), message)


def nonneg(expr: sympy.Expr, message: Callable[..., str]) -> Constraint:
    return Constraint((("nonneg", expr),), (expr,), message)


def divides(a: sympy.Expr, b: sympy.Expr, message: Callable[..., str]) -> Constraint:
    """``b`` divides ``a`` (``message(a, b)``); a zero ``b`` is refused by its own size check."""
    return Constraint((("whole", a / b),), (a, b), message)


def at_most(a: sympy.Expr, b: sympy.Expr, message: Callable[..., str]) -> Constraint:
    """``a <= b`` (``message(a, b)``)."""
    return Constraint((("nonneg", b - a),), (a, b), message)


def unit_interval(p: sympy.Expr, message: Callable[..., str]) -> Constraint:
    """``0 <= p < 1`` (a dropout probability)."""
    return Constraint((("nonneg", p), ("positive", 1 - p)), (p,), message)


# ---------------------------------------------------------------- checking many values


def first_violation(
    constraints: Sequence[Constraint], ev: Callable[[sympy.Expr], Any]
) -> Constraint | None:
    for c in constraints:
        if c.violation(ev) is not None:
            return c
    return None


class _ExactPrinter(PythonCodePrinter):
    """Python source over ints and Fractions: rationals never become floats."""

    def _print_Rational(self, expr: sympy.Rational) -> str:
        return f"Fraction({expr.p}, {expr.q})"

    def _print_Integer(self, expr: sympy.Integer) -> str:
        return str(int(expr))

    def _print_Pow(self, expr: sympy.Pow, rational: bool = False) -> str:
        base, exp = expr.args
        if exp.is_Integer and -1000 <= exp < 0:
            return f"_div(1, ({self._print(base)}) ** {-int(exp)})"
        if exp.is_Integer and exp <= 1000:
            return f"({self._print(base)}) ** {int(exp)}"
        if exp.is_Rational and exp.q == 2 and abs(exp.p) <= 1000:
            return str(super()._print_Pow(expr, rational=rational))
        # an exponent that may be large: judged by size before it is computed
        return f"checked_power({self._print(base)}, {self._print(exp)})"

    def _print_Mul(self, expr: sympy.Mul) -> str:
        num, den = sympy.fraction(expr)
        if den == 1:
            return str(super()._print_Mul(expr))
        return f"_div({self._print(num)}, {self._print(den)})"

    def _print_floor(self, expr: sympy.Expr) -> str:
        return f"math.floor({self._print(expr.args[0])})"

    def _print_ceiling(self, expr: sympy.Expr) -> str:
        return f"math.ceil({self._print(expr.args[0])})"

    def _print_Mod(self, expr: sympy.Expr) -> str:
        return f"(({self._print(expr.args[0])}) % ({self._print(expr.args[1])}))"

    def _print_Min(self, expr: sympy.Expr) -> str:
        return f"min({', '.join(self._print(a) for a in expr.args)})"

    def _print_Max(self, expr: sympy.Expr) -> str:
        return f"max({', '.join(self._print(a) for a in expr.args)})"

    def _print_Function(self, expr: sympy.Expr) -> str:
        if isinstance(expr, _InertMax | _InertMin):
            name = "max" if isinstance(expr, _InertMax) else "min"
            return f"{name}({', '.join(self._print(a) for a in expr.args)})"
        return str(super()._print_Function(expr))


def _div(num: Any, den: Any) -> Any:
    """``num / den`` exactly: an int when both are ints and the division is exact (most
    byte counts over a parallel degree are), else a Fraction; ints keep an evaluation
    several times faster than Fraction arithmetic."""
    if type(num) is int and type(den) is int:
        q, r = divmod(num, den)
        if not r:
            return q
    return Fraction(num) / den


class _InertMax(sympy.Function):
    """``Max`` held as a plain function while compiling: rebuilding a sympy ``Max`` (in
    ``xreplace``, in ``cse``) compares every pair of its arguments under assumptions, which
    takes a tenth of a second on an inference working set, for the same value."""


class _InertMin(sympy.Function):
    """``Min`` held as a plain function while compiling (as :class:`_InertMax`)."""


def _inert(
    e: sympy.Expr, names: Mapping[sympy.Expr, sympy.Expr], memo: dict[sympy.Expr, sympy.Expr]
) -> sympy.Expr:
    """``e`` with ``names`` put in and every ``Max`` / ``Min`` made inert (same values)."""
    if e in names:
        return names[e]
    if not e.args:
        return e
    done = memo.get(e)
    if done is not None:
        return done
    args = [_inert(a, names, memo) for a in e.args]
    if isinstance(e, sympy.Max):
        out: sympy.Expr = _InertMax(*args)
    elif isinstance(e, sympy.Min):
        out = _InertMin(*args)
    elif all(a is b for a, b in zip(args, e.args, strict=True)):
        out = e
    else:
        out = e.func(*args)
    memo[e] = out
    return out


def compile_exact(
    exprs: Sequence[sympy.Expr], args: Sequence[sympy.Symbol], *, shared: bool = True
) -> Callable[..., tuple[Any, ...]]:
    """One function of ``args`` (ints or Fractions) returning every expression exactly: every
    rational constant a Fraction and every negative power a Fraction division, never a float.
    The source is printed by sympy from symmem's own expressions, never from user text.

    ``shared``: common subexpressions computed once (``sympy.cse``).  Without, each term is
    one ``_div`` of int products, so whole-number knobs stay ints: for a sum of many short
    terms over reciprocals of degrees (the memory components), the shared reciprocals would
    make every product a Fraction, about thirty times slower."""
    names = {s: sympy.Symbol(f"a{i}") for i, s in enumerate(args)}
    replaced = [_inert(sympy.sympify(e), names, {}) for e in exprs]
    common, reduced = sympy.cse(replaced) if shared else ([], replaced)
    printer = _ExactPrinter({"fully_qualified_modules": False, "standard": "python3"})
    lines = [f"def f({', '.join(str(n) for n in names.values())}):"]
    lines += [f"    {s} = {printer.doprint(e)}" for s, e in common]
    lines.append(f"    return ({', '.join(printer.doprint(e) for e in reduced)},)")
    namespace: dict[str, Any] = {
        "Fraction": Fraction,
        "math": math,
        "checked_power": checked_power,
        "_div": _div,
    }
    exec("\n".join(lines), namespace)  # noqa: S102 - printed from symmem's expressions
    fn: Callable[..., tuple[Any, ...]] = namespace["f"]
    return fn


class Checker:
    """Which values of some symbols the model accepts, with the others at their values.

    Each constraint's tests are substituted once and compiled to exact Python, so one
    check costs microseconds (a solve may step down through thousands of values)."""

    def __init__(
        self,
        constraints: Sequence[Constraint],
        values: Mapping[sympy.Symbol, sympy.Expr],
        symbols: Sequence[sympy.Symbol],
    ) -> None:
        self.symbols = tuple(symbols)
        mine = set(self.symbols)
        fixed = {s: v for s, v in values.items() if s not in mine}
        self._constraints: list[Constraint] = []
        self._values = dict(fixed)
        tests: list[tuple[str, sympy.Expr]] = []
        owners: list[int] = []
        self.fixed_violation: str | None = None
        seen: set[tuple[str, sympy.Expr]] = set()
        for c in constraints:
            subbed = [(k, _subs(e, fixed)) for k, e in c.tests]
            if any(e.free_symbols - mine for _, e in subbed):
                continue  # a symbol without a value: nothing to decide here
            if not any(e.free_symbols for _, e in subbed):  # decided by the fixed values
                if self.fixed_violation is None:
                    self.fixed_violation = c.violation(
                        lambda e: _shown_value(e, fixed), lambda e: _value(e, fixed)
                    )
                continue
            idx = len(self._constraints)
            self._constraints.append(c)
            for k, e in subbed:
                if (k, e) in seen:
                    continue
                seen.add((k, e))
                tests.append((k, e))
                owners.append(idx)
        self._kinds = [k for k, _ in tests]
        self._test_exprs = [e for _, e in tests]
        self._owners = owners
        #: every accepted value divides this number (a test ``whole(a / x)``), or None
        self.divisor_of: int | None = None
        if len(self.symbols) == 1:
            x = self.symbols[0]
            for kind, e in tests:
                num, den = sympy.fraction(sympy.together(e))
                if kind == "whole" and den == x and num.is_Integer and num != 0:
                    g = abs(int(num))
                    self.divisor_of = g if self.divisor_of is None else math.gcd(self.divisor_of, g)
        self._fn = compile_exact([e for _, e in tests], self.symbols) if tests else None

    def tests(self) -> list[Test]:
        """The tests left to decide, over :attr:`symbols` only."""
        return list(zip(self._kinds, self._test_exprs, strict=True))

    def _failing(self, point: Sequence[int]) -> int | None:
        """None when every test holds at ``point``; else the failing constraint's index
        (-1: the tests could not be evaluated there, a division by zero)."""
        if self._fn is None:
            return None
        try:
            results = self._fn(*point)
        except (ZeroDivisionError, ValueError, TypeError):
            return -1
        for kind, owner, value in zip(self._kinds, self._owners, results, strict=True):
            if not isinstance(value, int | Fraction) or not holds(kind, value):
                return owner
        return None

    def refusal(self, *point: int) -> str | None:
        """None when the model accepts the symbols at ``point``, else why not."""
        failing = self._failing(point)
        if failing is None:
            return None
        return self._explain(point, None if failing < 0 else failing)

    def accepts(self, *point: int) -> bool:
        return self._failing(point) is None

    def _explain(self, point: Sequence[int], owner: int | None = None) -> str:
        at = {**self._values, **dict(zip(self.symbols, map(sympy.Integer, point), strict=True))}
        where = ", ".join(f"{s} = {v}" for s, v in zip(self.symbols, point, strict=True))
        candidates = self._constraints if owner is None else [self._constraints[owner]]
        for c in candidates:
            message = c.violation(lambda e: _shown_value(e, at), lambda e: _value(e, at))
            if message is not None:
                return f"at {where}: {message}"
        return f"at {where}: a division by zero"


def divisors(n: int) -> list[int]:
    """The divisors of ``n`` (> 0), in increasing order; trial division up to sqrt(n)."""
    small, large = [], []
    d = 1
    while d * d <= n:
        if n % d == 0:
            small.append(d)
            if d * d != n:
                large.append(n // d)
        d += 1
    return small + large[::-1]


def _subs(e: sympy.Expr, values: Mapping[sympy.Symbol, sympy.Expr]) -> sympy.Expr:
    out = sympy.sympify(e)
    for _ in range(4):
        new = substitute(out, values)
        if new == out:
            break
        out = new
    return out


def _shown_value(e: sympy.Expr, values: Mapping[sympy.Symbol, sympy.Expr]) -> Any:
    """A value for a message: messages format with ``:g``, which Fractions do not take."""
    v = _value(e, values)
    return float(v) if isinstance(v, Fraction) else v


def _value(e: sympy.Expr, values: Mapping[sympy.Symbol, sympy.Expr]) -> Any:
    out = _subs(e, values)
    if out.has(sympy.zoo, sympy.nan, sympy.oo):
        return None
    if out.is_Integer:
        return int(out)
    if out.is_Rational:
        return Fraction(int(out.p), int(out.q))
    return None
