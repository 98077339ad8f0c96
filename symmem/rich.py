"""Rich display in notebooks: LaTeX for expressions, HTML tables for results.

Jupyter shows an object through its ``_repr_latex_`` / ``_repr_html_`` methods, so the
value classes (:class:`symmem.quantity.Quantity`, :class:`symmem.counts.ParamsResult`,
:class:`symmem.memory.MemoryResult`) carry one-line methods that call the printers here.
This module sits on a low floor (sympy and :mod:`symmem.units` only) so that the values
can import it; :mod:`symmem.export` re-exports :func:`latex_symbol_names`.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from typing import Any

import sympy

from symmem.units import format_bytes


def _escape(text: str) -> str:
    """``html.escape``: written out, because importing :mod:`html` (2 ms, for its entity
    table) would slow every command, and only notebooks render these tables."""
    return (
        text.replace("&", "&amp;")
        .replace("<", "&lt;")
        .replace(">", "&gt;")
        .replace('"', "&quot;")
        .replace("'", "&#x27;")
    )


def latex_symbol_names(symbols: Mapping[str, sympy.Symbol]) -> dict[sympy.Symbol, str]:
    """Readable LaTeX for DSL names: ``d_model`` -> ``d_{model}``,
    ``kv_lora_rank`` -> ``kv_{lora\\_rank}``, ``vocab`` -> ``\\mathrm{vocab}``."""
    out: dict[sympy.Symbol, str] = {}
    for name, s in symbols.items():
        head, _, tail = name.partition("_")
        head_tex = head if len(head) == 1 else rf"\mathrm{{{head}}}"
        out[s] = f"{head_tex}_{{{tail.replace('_', chr(92) + '_')}}}" if tail else head_tex
    return out


def expr_latex(expr: sympy.Expr, symbols: Mapping[str, sympy.Symbol]) -> str:
    """``sympy.latex`` with readable symbol names, expanded (a stable order of terms)."""
    return sympy.latex(
        sympy.expand(expr), symbol_names=latex_symbol_names(symbols), mul_symbol="dot"
    )


def _value_html(value: Any) -> tuple[str, float | None]:
    """(exact value as HTML, a float for the bar or None when symbolic)."""
    if isinstance(value, int):
        return f"{value:,}", float(value)
    v = sympy.sympify(value)
    if v.is_number:
        return _escape(str(v)), float(v)
    return f"<math>{sympy.mathml(v, printer='presentation')}</math>", None


def table_html(
    rows: Sequence[tuple[str, Any]],
    *,
    caption: str,
    bytes_column: bool,
    total: str | None = None,
    label: str = "component",
) -> str:
    """A table of (name, exact value) with, for bytes, binary units and a small bar of each
    row's share of ``total`` (the row of that name)."""
    values = [(name, *_value_html(v)) for name, v in rows]
    whole = next((x for n, _, x in values if n == total), None)
    head = "<th>bytes</th><th>binary</th><th></th>" if bytes_column else "<th>count</th>"
    out = [
        '<table class="symmem">',
        f"<caption style='text-align:left'>{_escape(caption)}</caption>",
        f"<thead><tr><th style='text-align:left'>{_escape(label)}</th>{head}</tr></thead>",
        "<tbody>",
    ]
    for name, shown, number in values:
        cells = f"<td style='text-align:right'>{shown}</td>"
        if bytes_column:
            binary = format_bytes(number) if number is not None else ""
            share = number / whole if number is not None and whole and name != total else None
            bar = (
                f"<div style='background:#4e79a7;height:.7em;width:{100 * share:.1f}px'></div>"
                if share is not None
                else ""
            )
            cells += f"<td style='text-align:right'>{binary}</td><td>{bar}</td>"
        weight = "font-weight:bold;" if name == total else ""
        out.append(f"<tr><td style='text-align:left;{weight}'>{_escape(name)}</td>{cells}</tr>")
    out.append("</tbody></table>")
    return "".join(out)
