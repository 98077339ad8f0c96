"""`symmem show`: a quantity's simplified expression, or its leading-order terms."""

from __future__ import annotations

from typing import Annotated

import sympy
import typer

from symmem.calculus import leading as leading_terms
from symmem.cli._options import memory_options
from symmem.cli._quantity import default_values, select
from symmem.cli.common import (
    BatchOpt,
    FreeOpt,
    JsonOpt,
    ModelArg,
    ModelNameOpt,
    SeqLenOpt,
    SetOpt,
    echo_json,
    head_doc,
    head_lines,
    load_model,
    user_errors,
)
from symmem.options import MemoryOptions
from symmem.units import format_bytes

QuantityOpt = Annotated[
    str,
    typer.Option(
        "--quantity",
        "-q",
        help="params (default), active, memory, or a memory component (weights, activations, "
        "kv_cache...).",
    ),
]
LeadingOpt = Annotated[
    bool,
    typer.Option(
        "--leading",
        help="Only the terms of highest total degree in the size symbols (all symbols, or those "
        "given with --free), and how far they are from the exact value.",
    ),
]


@memory_options
def show(
    model: ModelArg,
    options: MemoryOptions,
    quantity: QuantityOpt = "params",
    leading: LeadingOpt = False,
    set_: SetOpt = None,
    batch: BatchOpt = None,
    seq_len: SeqLenOpt = None,
    free: FreeOpt = None,
    json_: JsonOpt = False,
    model_name: ModelNameOpt = None,
) -> None:
    """Print the simplified expression of a quantity (with --free: in those symbols only)."""
    with user_errors():
        m = load_model(model, set_, free, model_name, batch, seq_len)
        sel = select(m, quantity, options)
        q = sel.quantity
        used = [x.name for x in q.expr.free_symbols]
        config = sel.result.config if sel.result is not None else None
        if not json_:
            for line in head_lines(m, used, config):
                typer.echo(line)
        if leading:
            lead = leading_terms(q, free or None, default_values(m))
            err = lead.relative_error
            if json_:
                echo_json(
                    {
                        **head_doc(m, used, config),
                        "quantity": sel.name,
                        "leading": str(lead.expr),
                        "degree": lead.degree,
                        "size_symbols": [s.name for s in lead.size],
                        "exact": _num(lead.exact_value),
                        "leading_value": _num(lead.leading_value),
                        "relative_error": err,
                    }
                )
                return
            typer.echo(
                f"{sel.name} ~ {lead.expr}   (degree {lead.degree} in "
                f"{', '.join(s.name for s in lead.size)})"
            )
            if lead.exact_value is not None and lead.leading_value is not None:
                typer.echo(
                    f"  leading term at the model's values: {_show(lead.leading_value, sel.unit)}"
                )
                typer.echo(
                    f"  exact:                              {_show(lead.exact_value, sel.unit)}"
                )
                if err is not None:
                    typer.echo(f"  relative error of the leading term: {err:+.2%}")
            return
        expr = q.evaluate() if free else sympy.expand(q.expr)
        value = q.evaluate()
        if json_:
            echo_json(
                {
                    **head_doc(m, used, config),
                    "quantity": sel.name,
                    "expression": str(expr),
                    "value": _num(value),
                }
            )
            return
        typer.echo(f"{sel.name} = {expr}")
        if not free and isinstance(value, int):
            extra = f"  ({format_bytes(value)})" if sel.unit == "bytes" else ""
            typer.echo(f"at the model's values: {value:,} {sel.unit}{extra}")


def _num(v: object) -> object:
    if v is None or isinstance(v, int):
        return v
    return str(v)


def _show(v: object, unit: str) -> str:
    return f"{v:,} {unit}" if isinstance(v, int) else f"{v} {unit}"
