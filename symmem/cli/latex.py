"""`symmem latex`: formulas as LaTeX, ready to paste into a paper."""

from __future__ import annotations

from typing import Annotated, Any

import typer

from symmem.cli.common import (
    FreeOpt,
    ModelArg,
    ModelNameOpt,
    SetOpt,
    load_model,
    user_errors,
    with_memory_options,
)


@with_memory_options
def latex(
    model: ModelArg,
    set_: SetOpt = None,
    free: FreeOpt = None,
    model_name: ModelNameOpt = None,
    per_layer: Annotated[bool, typer.Option("--per-layer", help="One line per layer in an align environment.")] = False,
    quantity: Annotated[str, typer.Option("--quantity", "-q", help="params (default) or memory (one align line per component).")] = "params",
    mode: Annotated[str | None, typer.Option("--mode", help="Memory mode (with --quantity memory): train or infer.")] = None,
    memory_options: dict[str, Any] | None = None,
) -> None:
    """Print the parameter formula (or the memory components) as LaTeX."""
    from symmem.export import params_latex

    with user_errors():
        m = load_model(model, set_, free, model_name)
        if quantity.strip().lower() == "memory":
            from symmem.cli._quantity import select
            from symmem.export import memory_latex

            sel = select(m, "memory", mode, memory_options or {})
            typer.echo(memory_latex(sel.components, m.symbols))
            return
        if quantity.strip().lower() != "params":
            from symmem.errors import OptionError

            raise OptionError(f"latex --quantity: use params or memory, not '{quantity}'")
        typer.echo(params_latex(m.params(), m.symbols, per_layer=per_layer))
