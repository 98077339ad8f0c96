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


#: a parameter formula longer than this (LaTeX characters), or one with a negative term, is
#: printed as one ``align`` line per top-level block (``params_latex(grouped=None)``)
ONE_LINE_MAX = 400


def _times(multiplicity: Any, body: sympy.Expr, symbols: Mapping[str, sympy.Symbol]) -> str:
    """``m \\cdot \\left(body\\right)``; ``(n_layers - n_dense)`` kept as a factor, never expanded
    into negative terms."""
    m = sympy.sympify(multiplicity)
    text = latex(body, symbols)
    if m == 1:
        return text
    mult = latex(m, symbols)
    if isinstance(m, sympy.Add):  # positive terms first: (n_layers - n_dense)
        pos = [t for t in m.args if not t.could_extract_minus_sign()]
        neg = [-t for t in m.args if t.could_extract_minus_sign()]
        if pos:
            mult = " + ".join(latex(t, symbols) for t in pos)
            mult += "".join(f" - {latex(t, symbols)}" for t in neg)
        mult = f"\\left({mult}\\right)"
    return f"{mult} \\cdot \\left({text}\\right)"


def _label(lhs: str, path: str) -> str:
    label = path.replace("_", r"\_")
    return rf"{lhs}_{{\text{{{label}}}}}"


def params_latex(
    result: ParamsResult,
    symbols: Mapping[str, sympy.Symbol],
    *,
    per_layer: bool = False,
    grouped: bool | None = None,
    lhs: str = "N",
) -> str:
    """The parameter formula (``N = ...``); an ``align`` environment with one line per layer
    (``per_layer``), or one line per top-level block (a repeat, an embedding...), each with
    its repeat count as a factor (``grouped``; None: when the one line would be longer than
    :data:`ONE_LINE_MAX` or hold a negative term, as a large model's does)."""
    total = latex(result.total.expr, symbols)
    if grouped is None:
        grouped = len(total) > ONE_LINE_MAX or " - " in total
    if not per_layer and not grouped:
        return f"{lhs} = {total}"
    lines = []
    if per_layer:
        for row in result.rows:
            if row.formula != 0:
                body = _times(row.multiplicity, row.formula, symbols)
                lines.append(rf"  {_label(lhs, row.path)} &= {body} \\")
        lines.append(rf"  {lhs} &= {total}")
        return "\\begin{align}\n" + "\n".join(lines) + "\n\\end{align}"
    blocks: dict[str, dict[sympy.Expr, sympy.Expr]] = {}
    for row in result.rows:
        if row.formula == 0:
            continue
        by_mult = blocks.setdefault(row.path.split(".")[0], {})
        m = sympy.sympify(row.multiplicity)
        by_mult[m] = by_mult.get(m, sympy.Integer(0)) + sympy.sympify(row.formula)
    names = []
    for block, by_mult in blocks.items():
        body = " + ".join(_times(m, sympy.expand(f), symbols) for m, f in by_mult.items())
        names.append(_label(lhs, block))
        lines.append(rf"  {names[-1]} &= {body} \\")
    lines.append(rf"  {lhs} &= {' + '.join(names) if names else '0'}")
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
