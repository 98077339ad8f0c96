"""Exact JavaScript from sympy expressions: rationals over BigInt, never doubles.

The calculator page (:mod:`symmem.page`) evaluates the memory model's own expressions in the
browser.  A JavaScript number is a double, exact only for integers below 2**53, and a memory
term can exceed that in its intermediate products (a coefficient times ``batch * seq_len``)
or be a fraction before its sum is whole (``weights / tp`` when tp does not divide a
tensor).  So every value here is a rational ``[numerator, denominator]`` of BigInts, always
reduced, with a positive denominator; the page's runtime (``symmem/_page/page.js``) defines
the operations the printed code calls: ``add``, ``mul``, ``pow``, ``min``, ``max``,
``floor``, ``ceil`` and ``pw`` (Piecewise).

The printer is sympy's :class:`~sympy.printing.jscode.JavascriptCodePrinter` with every
arithmetic node redirected to those operations; a function it does not know (``sin``,
``log``: none occurs in a memory expression) is an error instead of a silent ``Math.*``
double.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from typing import Any

import sympy
from sympy.printing.jscode import JavascriptCodePrinter

from symmem.errors import SymmemError


class ExactJavascriptPrinter(JavascriptCodePrinter):
    """JavaScript over the page's exact rationals; ``args`` maps each free symbol to its
    JavaScript name (an element of the argument array)."""

    def __init__(self, args: Mapping[sympy.Symbol, str]) -> None:
        super().__init__({"strict": False})
        self._args = dict(args)

    def _print_Symbol(self, expr: sympy.Symbol) -> str:
        if expr in self._args:
            return self._args[expr]
        name = expr.name
        if name.startswith("_c") and name[2:].isdigit():  # a common subexpression's name
            return name
        raise SymmemError(f"page compiler: symbol '{name}' has no value and is not an input")

    def _print_Integer(self, expr: sympy.Integer) -> str:
        return f"[{int(expr)}n,1n]"

    def _print_Rational(self, expr: sympy.Rational) -> str:
        return f"[{int(expr.p)}n,{int(expr.q)}n]"

    def _print_Float(self, expr: sympy.Float) -> str:
        # a decimal a user wrote (--set p=0.1) denotes the rational it spells, as
        # symmem.quantity.exact reads it
        return self._print_Rational(sympy.nsimplify(expr, rational=True))

    def _print_Zero(self, expr: Any) -> str:
        return "[0n,1n]"

    def _print_One(self, expr: Any) -> str:
        return "[1n,1n]"

    def _print_NegativeOne(self, expr: Any) -> str:
        return "[-1n,1n]"

    def _print_Half(self, expr: Any) -> str:
        return "[1n,2n]"

    def _call(self, name: str, args: Sequence[sympy.Basic]) -> str:
        return f"{name}({', '.join(self._print(a) for a in args)})"

    def _print_Add(self, expr: sympy.Add, order: Any = None) -> str:
        return self._call("add", expr.args)

    def _print_Mul(self, expr: sympy.Mul) -> str:
        return self._call("mul", expr.args)

    def _print_Pow(self, expr: sympy.Pow) -> str:
        base, exp = expr.args
        if not exp.is_Integer:
            raise SymmemError(f"page compiler: a non-integer power {expr} cannot be exact")
        return f"pow({self._print(base)}, {int(exp)})"

    def _print_Min(self, expr: sympy.Expr) -> str:
        return self._call("min", expr.args)

    def _print_Max(self, expr: sympy.Expr) -> str:
        return self._call("max", expr.args)

    def _print_floor(self, expr: sympy.Expr) -> str:
        return self._call("floor", expr.args)

    def _print_ceiling(self, expr: sympy.Expr) -> str:
        return self._call("ceil", expr.args)

    def _print_Piecewise(self, expr: sympy.Piecewise) -> str:
        parts = []
        for value, cond in expr.args:
            parts.append(self._print_condition(cond))
            parts.append(self._print(value))
        return f"pw({', '.join(parts)})"

    def _print_condition(self, cond: sympy.Basic) -> str:
        if cond is sympy.true:
            return "true"
        if cond is sympy.false:
            return "false"
        if isinstance(cond, sympy.Symbol):  # a shared condition (js_function's cse)
            return self._print_Symbol(cond)
        ops = {"<": "lt", "<=": "le", ">": "gt", ">=": "ge", "==": "eq", "!=": "ne"}
        if isinstance(cond, sympy.core.relational.Relational) and cond.rel_op in ops:
            return f"{ops[cond.rel_op]}({self._print(cond.lhs)}, {self._print(cond.rhs)})"
        if isinstance(cond, sympy.And):
            return "(" + " && ".join(self._print_condition(c) for c in cond.args) + ")"
        if isinstance(cond, sympy.Or):
            return "(" + " || ".join(self._print_condition(c) for c in cond.args) + ")"
        if isinstance(cond, sympy.Not):
            return f"!{self._print_condition(cond.args[0])}"
        raise SymmemError(f"page compiler: cannot print the condition {cond}")

    def _print_Relational(self, expr: sympy.Basic) -> str:
        return self._print_condition(expr)

    _print_And = _print_Or = _print_Not = _print_Relational
    _print_BooleanTrue = _print_BooleanFalse = _print_Relational

    def _print_Function(self, expr: sympy.Expr) -> str:
        raise SymmemError(f"page compiler: no exact JavaScript for {type(expr).__name__}")

    def _print_not_supported(self, expr: Any) -> str:
        raise SymmemError(f"page compiler: no exact JavaScript for {type(expr).__name__}")


def js_function(exprs: Sequence[sympy.Expr], args: Sequence[sympy.Symbol]) -> str:
    """``function(a){...; return [e0, e1, ...];}``: the expressions over ``a[i]`` (the
    rational value of ``args[i]``), with their common subexpressions computed once."""
    names = {s: f"a[{i}]" for i, s in enumerate(args)}
    shared, reduced = sympy.cse(
        [sympy.sympify(e) for e in exprs], symbols=sympy.numbered_symbols("_c")
    )
    printer = ExactJavascriptPrinter(names)
    body = [f"const {s}={printer.doprint(e)};" for s, e in shared]
    body.append(f"return [{','.join(printer.doprint(e) for e in reduced)}];")
    return "function(a){" + "".join(body) + "}"
