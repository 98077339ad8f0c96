"""`symmem latex`: formulas as LaTeX, ready to paste into a paper."""

from __future__ import annotations

from collections.abc import Iterable
from typing import Annotated

import sympy
import typer

from symmem.cli._options import memory_options
from symmem.cli._quantity import select
from symmem.cli.common import (
    BatchOpt,
    FreeOpt,
    ModelArg,
    ModelNameOpt,
    SeqLenOpt,
    SetOpt,
    head_lines,
    load_model,
    user_errors,
)
from symmem.errors import OptionError
from symmem.export import memory_latex, params_latex
from symmem.memory.config import MemoryConfig
from symmem.model import Model
from symmem.options import MemoryOptions

PerLayerOpt = Annotated[
    bool, typer.Option("--per-layer", help="One line per layer in an align environment.")
]
QuantityOpt = Annotated[
    str,
    typer.Option(
        "--quantity", "-q", help="params (default) or memory (one align line per component)."
    ),
]


@memory_options
def latex(
    model: ModelArg,
    options: MemoryOptions,
    set_: SetOpt = None,
    batch: BatchOpt = None,
    seq_len: SeqLenOpt = None,
    free: FreeOpt = None,
    model_name: ModelNameOpt = None,
    per_layer: PerLayerOpt = False,
    quantity: QuantityOpt = "params",
) -> None:
    """Print the parameter formula (or the memory components) as LaTeX."""
    with user_errors():
        m = load_model(model, set_, free, model_name, batch, seq_len)
        if quantity.strip().lower() == "memory":
            sel = select(m, "memory", options)
            config = sel.result.config if sel.result is not None else None
            _comments(m, sel.quantity.expr.free_symbols, config)
            typer.echo(memory_latex(sel.components, m.symbols))
            return
        if quantity.strip().lower() != "params":
            raise OptionError(f"latex --quantity: use params or memory, not '{quantity}'")
        p = m.params()
        _comments(m, p.total.expr.free_symbols, None)
        typer.echo(params_latex(p, m.symbols, per_layer=per_layer))


def _comments(m: Model, used: Iterable[sympy.Basic], config: MemoryConfig | None) -> None:
    """What was assumed and the values of the symbols, as LaTeX comment lines."""
    for line in head_lines(m, [str(x) for x in used], config):
        typer.echo(f"% {line}")
