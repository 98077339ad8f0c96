"""Every sympy symbol symmem creates is made here.

``Symbol("x", positive=True) != Symbol("x")`` in sympy, so a second place that
creates symbols with other assumptions would silently split one quantity in
two.  All DSL sizes are positive integers.
"""

from __future__ import annotations

from functools import cache

import sympy

#: Symbols every program has, declared or not: the two axes users solve and sweep over.
IMPLICIT_FREE = ("batch", "seq_len")


@cache
def sym(name: str) -> sympy.Symbol:
    """The unique symbol for ``name`` (a positive integer)."""
    return sympy.Symbol(name, integer=True, positive=True)


def real_twin(s: sympy.Symbol) -> sympy.Symbol:
    """A positive *real* symbol of the same name, for solving: sympy drops
    fractional roots of integer symbols, so solve over the reals, then floor."""
    return sympy.Symbol(s.name, positive=True)


@cache
def knob(name: str) -> sympy.Symbol:
    """A numeric memory option kept as a symbol (``tp``, bytes per weight, ...), so that one
    expression serves every value of it (:class:`symmem.memory.fast.MemoryEvaluator`).
    Prefixed so that it never meets a model's own symbol of the same name."""
    return sympy.Symbol(f"option_{name}", nonnegative=True)
