"""`symmem latex`: formulas as LaTeX, ready to paste into a paper."""

from __future__ import annotations

from typing import Annotated

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
    load_model,
    user_errors,
)
from symmem.errors import OptionError
from symmem.export import memory_latex, params_latex
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
            typer.echo(memory_latex(sel.components, m.symbols))
            return
        if quantity.strip().lower() != "params":
            raise OptionError(f"latex --quantity: use params or memory, not '{quantity}'")
        typer.echo(params_latex(m.params(), m.symbols, per_layer=per_layer))
