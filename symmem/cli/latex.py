"""`symmem latex`: formulas as LaTeX, ready to paste into a paper."""

from __future__ import annotations

from typing import Annotated

import typer

from symmem.cli.common import FreeOpt, ModelArg, ModelNameOpt, SetOpt, load_model, user_errors


def latex(
    model: ModelArg,
    set_: SetOpt = None,
    free: FreeOpt = None,
    model_name: ModelNameOpt = None,
    per_layer: Annotated[bool, typer.Option("--per-layer", help="One line per layer in an align environment.")] = False,
) -> None:
    """Print the parameter formula as LaTeX."""
    from symmem.export import params_latex

    with user_errors():
        m = load_model(model, set_, free, model_name)
        typer.echo(params_latex(m.params(), m.symbols, per_layer=per_layer))
