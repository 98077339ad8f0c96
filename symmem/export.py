"""Outputs that are data, not text for a terminal: LaTeX and JSON-ready dicts.

Never imports lark: it reads results of the API only.
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

import sympy

from symmem.counts import ParamsResult
from symmem.quantity import Quantity
from symmem.rich import expr_latex, latex_symbol_names

__all__ = [
    "latex",
    "latex_symbol_names",
    "memory_latex",
    "params_json",
    "params_latex",
    "quantity_latex",
]


def latex(expr: sympy.Expr, symbols: Mapping[str, sympy.Symbol]) -> str:
    """``sympy.latex`` with readable symbol names and powers of terms in a stable order."""
    return expr_latex(expr, symbols)


def params_latex(
    result: ParamsResult,
    symbols: Mapping[str, sympy.Symbol],
    *,
    per_layer: bool = False,
    lhs: str = "N",
) -> str:
    """The parameter formula (``N = ...``), or an ``align`` environment with one line per layer."""
    if not per_layer:
        return f"{lhs} = {latex(result.total.expr, symbols)}"
    lines = []
    for row in result.rows:
        if row.formula == 0:
            continue
        m = sympy.sympify(row.multiplicity)
        mult = "" if m == 1 else latex(m, symbols)
        if isinstance(
            m, sympy.Add
        ):  # (n_layers - n_dense) \cdot (...), never -n_dense + n_layers \cdot (...)
            mult = f"\\left({mult}\\right)"
        mult = mult + r" \cdot " if mult else ""
        body = latex(row.formula, symbols)
        body = f"{mult}\\left({body}\\right)" if mult else body
        label = row.path.replace("_", r"\_")
        lines.append(rf"  N_{{\text{{{label}}}}} &= {body} \\")
    lines.append(rf"  {lhs} &= {latex(result.total.expr, symbols)}")
    return "\\begin{align}\n" + "\n".join(lines) + "\n\\end{align}"


def memory_latex(
    components: Mapping[str, Quantity], symbols: Mapping[str, sympy.Symbol], *, lhs: str = "M"
) -> str:
    """An ``align`` environment with one line per memory component (zero ones left out)
    and the total as their sum; bytes per GPU."""
    lines = []
    names = []
    for name, q in components.items():
        if name == "total" or sympy.sympify(q.expr) == 0:
            continue
        label = name.replace("_", r"\_")
        names.append(rf"{lhs}_{{\text{{{label}}}}}")
        lines.append(rf"  {names[-1]} &= {latex(q.expr, symbols)} \\")
    lines.append(rf"  {lhs} &= {' + '.join(names) if names else '0'}")
    return "\\begin{align}\n" + "\n".join(lines) + "\n\\end{align}"


def _number(q: Quantity) -> int | None:
    value = q.evaluate()
    return value if isinstance(value, int) else None


def params_json(
    result: ParamsResult,
    symbols: Mapping[str, sympy.Symbol],
    values: Mapping[sympy.Symbol, sympy.Expr],
) -> dict[str, Any]:
    """The ``symmem params --json`` document (keys documented in docs/api.md, "JSON documents")."""

    def show(v: Any) -> Any:
        v = sympy.sympify(v)
        return int(v) if v.is_Integer else str(v)

    return {
        "total": _number(result.total),
        "active": _number(result.active),
        "buffers": _number(result.buffers),
        "formula": str(sympy.expand(result.total.expr)),
        "active_formula": str(sympy.expand(result.active.expr)),
        "active_embeddings": result.active_embeddings,
        "symbols": {name: show(values[s]) if s in values else None for name, s in symbols.items()},
        "layers": [
            {
                "path": row.path,
                "kind": row.kind,
                "count": _number(Quantity(row.count, values, symbols)),
                "formula": str(row.formula),
                "multiplicity": str(row.multiplicity),
                "active": _number(Quantity(row.multiplicity * row.active_formula, values, symbols)),
                "buffers": _number(
                    Quantity(row.multiplicity * row.buffers_formula, values, symbols)
                ),
                "tied_to": row.tied_to,
            }
            for row in result.rows
        ],
    }


def quantity_latex(q: Quantity) -> str:
    """A quantity's expression as LaTeX with its model's readable symbol names."""
    return latex(q.expr, q.symbols)
