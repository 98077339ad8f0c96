"""Derivatives and leading-order terms of quantities.

``diff(q, "batch")`` is the exact marginal cost of one more sample (memory is
polynomial in sizes, so a derivative is exact per unit step only for linear
terms; for a quadratic in seq_len it is the slope, and docs/solve.md says so).
``leading(q)`` keeps the terms of highest total degree in the "size" symbols:
for GPT parameters that is ``12*n_layers*d_model**2``, the rule of thumb, shown
as the limit of the exact formula together with how far off it is at the
model's own sizes.
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping, Sequence
from fractions import Fraction

import sympy

from symmem.errors import OptionError, suggest
from symmem.quantity import Quantity, as_quantity
from symmem.records import record
from symmem.values import as_name, as_names, powers_are_small, substitute


def _symbol(q: Quantity, name: str) -> sympy.Symbol:
    as_name(name, "symbol", OptionError)
    if name not in q.symbols:
        hint = suggest(name, list(q.symbols))
        raise OptionError(f"unknown symbol '{name}'" + (f": {hint}" if hint else ""))
    return q.symbols[name]


def _follow(q: Quantity, syms: Iterable[sympy.Symbol]) -> sympy.Expr:
    """q.expr with the values that depend on ``syms`` substituted (d_ff = 4*d_model follows
    d_model)."""
    syms = set(syms)
    dependent = {
        s: v for s, v in q.values.items() if s not in syms and sympy.sympify(v).free_symbols & syms
    }
    expr = q.expr
    for _ in range(4):
        new = substitute(expr, dependent)
        if new == expr:
            break
        expr = new
    return expr


def diff(q: Quantity, *names: str) -> Quantity:
    """The (mixed) partial derivative of ``q`` with respect to ``names``, simplified."""
    as_quantity(q)
    if not names:
        raise OptionError("diff needs at least one symbol (--wrt batch)")
    syms = [_symbol(q, n) for n in names]
    expr = _follow(q, syms)
    for s in syms:
        expr = sympy.diff(expr, s)
    if expr.has(sympy.Derivative, sympy.Subs):
        kinds = (sympy.floor, sympy.ceiling, sympy.Min, sympy.Max, sympy.Abs, sympy.Mod)
        steps = sorted({type(f).__name__ for f in expr.atoms(*kinds)}) or ["a step function"]
        raise OptionError(
            f"the quantity has no derivative in {', '.join(names)}: it goes through "
            f"{', '.join(steps)} of it, which jumps instead of changing smoothly; sweep it "
            f"instead (symmem sweep --grid {names[0]}=...) to see how it changes"
        )
    return Quantity(sympy.expand(expr), q.values, q.symbols, q.constraints)


def at_values(q: Quantity, keep: Iterable[str] = ()) -> sympy.Expr:
    """``q.expr`` with every symbol but ``keep`` (and the free ones) at its value: the
    Heaviside, Max and Min parts that those values decide collapse to the branch taken,
    and what is left is a function of ``keep`` alone (``diff --wrt seq_len`` of inference
    memory: ``122880*Heaviside(8192 - seq_len) + 131072`` rather than a page of
    conditions in every size).  The conditions on ``keep`` stay (decided on values only)."""
    kept = {q.symbols[n] for n in keep if n in q.symbols}
    values = {s: v for s, v in q.values.items() if s not in kept}
    expr = q.expr
    for _ in range(4):  # values given in terms of other symbols (d_ff = 4*d_model)
        new = substitute(expr, values)
        if new == expr:
            break
        expr = new
    return sympy.expand(expr)


#: what d(quantity)/d(symbol) means, for the usual symbols
_PER = {
    "batch": "extra sample",
    "seq_len": "extra token of context",
    "n_layers": "extra layer",
    "vocab": "extra vocabulary entry",
    "n_heads": "extra attention head",
    "n_experts": "extra expert",
}


def meaning(names: Sequence[str], quantity: str = "memory") -> str:
    """'bytes per extra sample', 'parameters per unit of d_model', ...; mixed partials chain
    'per'."""
    unit = "parameters" if quantity in ("params", "parameters", "active", "buffers") else "bytes"
    pers = [f"per {_PER.get(n, 'unit of ' + n)}" for n in names]
    return " ".join([unit, *pers])


@record
class Leading:
    """The leading-order part of a quantity in the large-size limit."""

    #: the terms of highest total degree in ``size``
    expr: sympy.Expr
    #: the whole expression in the size symbols (other symbols at their values)
    full: sympy.Expr
    size: tuple[sympy.Symbol, ...]
    degree: int
    #: exact values at the model's values (None when symbols have no value)
    exact_value: int | Fraction | None
    leading_value: int | Fraction | None

    @property
    def relative_error(self) -> float | None:
        """(leading - exact) / exact at the model's values: how far the rule of thumb is off."""
        if self.exact_value in (None, 0) or self.leading_value is None:
            return None
        return float(Fraction(self.leading_value) / Fraction(self.exact_value) - 1)


def _number(expr: sympy.Expr) -> int | Fraction | None:
    expr = sympy.sympify(expr)
    if expr.is_Integer:
        return int(expr)
    if expr.is_Rational:
        return Fraction(int(expr.p), int(expr.q))
    return None


def leading(
    q: Quantity,
    size: Iterable[str] | None = None,
    at: Mapping[sympy.Symbol, sympy.Expr] | None = None,
) -> Leading:
    """Keep the terms of highest total degree in the ``size`` symbols (default: every symbol in q).

    Symbols not in ``size`` take their values first.  The expression must be a
    polynomial in the size symbols (memory and parameter counts are).  The
    relative error is measured at ``at`` (default: q's values).
    """
    as_quantity(q)
    if size is not None:
        size = as_names(size, "size", OptionError)
    if at is not None and not hasattr(at, "items"):
        raise OptionError(f"at: expected a mapping of symbols to values, got {at!r}"[:200])
    if size:
        syms = tuple(_symbol(q, n) for n in size)
    else:
        syms = tuple(sorted(q.expr.free_symbols, key=lambda s: s.name))
    expr = _follow(q, syms)
    others = {s: v for s, v in q.values.items() if s not in syms}
    for _ in range(4):
        new = substitute(expr, others)
        if new == expr:
            break
        expr = new
    expr = sympy.expand(expr)
    if not syms:
        return Leading(expr, expr, (), 0, _number(expr), _number(expr))
    if not powers_are_small(expr):
        raise OptionError(
            "the leading term needs a polynomial of degree at most 1,000 in the size symbols; "
            "this expression has a larger or symbolic power: choose other symbols with --free"
        )
    try:
        poly = sympy.Poly(expr, *syms)
    except sympy.PolynomialError:
        raise OptionError(
            "the leading term needs a polynomial in the size symbols; this expression has "
            "floor/ceiling/Min/Max in them: choose other symbols with --free"
        ) from None
    if poly.is_zero:
        return Leading(sympy.Integer(0), expr, syms, 0, 0, 0)
    terms = poly.terms()
    degree = max(sum(m) for m, _ in terms)
    lead = sympy.Add(
        *[
            c * sympy.Mul(*[s**e for s, e in zip(syms, m, strict=True)])
            for m, c in terms
            if sum(m) == degree
        ]
    )
    point = dict(q.values) if at is None else dict(at)
    if not all(s in point for s in syms):
        return Leading(lead, expr, syms, degree, None, None)
    sub = {s: point[s] for s in syms}
    return Leading(
        lead, expr, syms, degree, _number(substitute(expr, sub)), _number(substitute(lead, sub))
    )
