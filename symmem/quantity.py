"""A quantity: a sympy expression with the values it is usually evaluated at.

A plain value on a low floor.  The verbs over it live in their own modules and
take it as an argument, as sympy keeps ``latex(expr)`` outside the expression
classes: :func:`symmem.solve.solve`, :func:`symmem.calculus.diff` and
:func:`~symmem.calculus.leading`, :func:`symmem.export.quantity_latex`,
:func:`symmem.sweep.sweep`.
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

import sympy

from symmem.constraints import Constraint
from symmem.errors import OptionError, SemanticError, SymmemError, suggest
from symmem.limits import check_int
from symmem.records import record
from symmem.rich import expr_latex
from symmem.values import as_value, substitute


def as_expr(expr: Any) -> sympy.Expr:
    """A sympy expression made by symmem, or a number; never text (sympify would run it)."""
    if isinstance(expr, sympy.Expr):
        return expr
    return as_value(expr, "expression", OptionError)


def exact(expr: Any) -> int | sympy.Expr:
    """An int when the expression is an integer number, else the expression (a Rational stays
    exact; floats that came from a user's decimal value become the rationals they denote).

    :class:`~symmem.limits.LimitError` when the number has more than
    :data:`~symmem.limits.MAX_DIGITS` digits."""
    expr = sympy.sympify(expr, strict=True)
    if expr.is_Integer:
        return check_int(int(expr), "the result")
    if expr.is_number and expr.has(sympy.Float):
        # rational=True: 0.1 -> 1/10; never the radical guesses of plain nsimplify, which made
        # 842539008/47 into 94478400000*2**(43/78)*... (a pipeline-parallel byte count)
        expr = sympy.nsimplify(expr, rational=True)
        if expr.is_Integer:
            return check_int(int(expr), "the result")
    return expr


def as_quantity(q: Any, what: str = "quantity") -> Quantity:
    """``q`` when it is a :class:`Quantity`, else OptionError (a verb was given something else)."""
    if not isinstance(q, Quantity):
        raise OptionError(
            f"{what}: expected a Quantity (such as model.memory().total), got {q!r}"[:200]
        )
    return q


@record
class Quantity:
    """A sympy expression together with the values it is usually evaluated at."""

    expr: sympy.Expr
    values: Mapping[sympy.Symbol, sympy.Expr]
    symbols: Mapping[str, sympy.Symbol]
    #: what the model requires of its values (:mod:`symmem.constraints`): solve and sweep
    #: answer only with values that satisfy them
    constraints: tuple[Constraint, ...] = ()

    def _subs(self, overrides: Mapping[str, Any]) -> dict[sympy.Symbol, sympy.Expr]:
        values = dict(self.values)
        for name, v in overrides.items():
            if name not in self.symbols:
                hint = suggest(name, list(self.symbols))
                raise SemanticError(f"unknown symbol '{name}'" + (f": {hint}" if hint else ""))
            values[self.symbols[name]] = as_value(v, f"the value of '{name}'")
        return values

    def evaluate(self, **values: Any) -> int | sympy.Expr:
        """The exact value at the model's values, overridden by ``values``.

        Returns an int when every symbol has a value, else the remaining expression.
        """
        subs = self._subs(values)
        out = self.expr
        for _ in range(3):  # values may refer to symbols that have values
            new = substitute(out, subs)
            if new == out:
                break
            out = new
        return exact(out)

    def simplified(self) -> sympy.Expr:
        return sympy.expand(self.expr)

    def with_expr(self, expr: Any) -> Quantity:
        """Another expression at the same values and symbols."""
        return Quantity(as_expr(expr), self.values, self.symbols, self.constraints)

    def _repr_latex_(self) -> str:
        """Jupyter: the expression in LaTeX, and its value when every symbol has one."""
        tex = expr_latex(self.expr, self.symbols)
        value = self.evaluate()
        if isinstance(value, int) and not sympy.sympify(self.expr).is_number:
            tex += f" = {value:,}".replace(",", "{,}")
        return f"${tex}$"

    def __int__(self) -> int:
        value = self.evaluate()
        if not isinstance(value, int):
            raise SymmemError(f"not a number: free symbols remain in {value}")
        return value
