"""`symmem diff`: the derivative of a quantity, with what it means and its value."""

from __future__ import annotations

from typing import Annotated

import typer

from symmem.calculus import diff as differentiate
from symmem.calculus import meaning
from symmem.cli._options import memory_options
from symmem.cli._quantity import default_values, select, symbolic_options
from symmem.cli.common import (
    BatchOpt,
    FreeOpt,
    JsonOpt,
    ModelArg,
    ModelNameOpt,
    SeqLenOpt,
    SetOpt,
    echo_json,
    load_model,
    user_errors,
)
from symmem.model import Model
from symmem.options import MemoryOptions

WrtOpt = Annotated[
    list[str],
    typer.Option(
        "--wrt", help="Differentiate with respect to this symbol (repeatable: mixed partials)."
    ),
]
QuantityOpt = Annotated[
    str,
    typer.Option(
        "--quantity", "-q", help="memory (default), a memory component, params or active."
    ),
]


@memory_options
def diff(
    model: ModelArg,
    wrt: WrtOpt,
    options: MemoryOptions,
    quantity: QuantityOpt = "memory",
    set_: SetOpt = None,
    batch: BatchOpt = None,
    seq_len: SeqLenOpt = None,
    free: FreeOpt = None,
    json_: JsonOpt = False,
    model_name: ModelNameOpt = None,
) -> None:
    """Print d(quantity)/d(symbol), simplified, its meaning, and its value at the model's values."""
    with user_errors():
        # --wrt lora_rank: the option becomes a symbol (its value, if --lora-rank gave one, is the
        # point)
        given_options = options
        model_names, options = symbolic_options(list(wrt), options)
        m = load_model(
            model,
            set_,
            [*(free or []), *[w for w in model_names if w not in (free or [])]],
            model_name,
            batch,
            seq_len,
        )
        for w in model_names:
            m.symbol(w)
        sel = select(m, quantity, options)
        d = differentiate(sel.quantity, *wrt)
        text = meaning(wrt, "params" if sel.unit == "parameters" else "memory")
        given = {w: given_options.changed().get(w) for w in wrt if w not in model_names}
        at = {w: v for w, v in {**_defaults(m, model_names), **given}.items() if v is not None}
        value = d.evaluate(**at)
        partial = "".join(f"/d {w}" for w in wrt)
        if json_:
            echo_json(
                {
                    "quantity": sel.name,
                    "wrt": list(wrt),
                    "derivative": str(d.expr),
                    "meaning": text,
                    "at": {k: int(v) for k, v in at.items()},
                    "value": value if isinstance(value, int) else str(value),
                }
            )
            return
        typer.echo(f"d {sel.name}{partial} = {d.expr}")
        typer.echo(f"meaning: {text}")
        where = ", ".join(f"{k}={v:,}" for k, v in at.items()) or "the model's values"
        shown = f"{value:,}" if isinstance(value, int) else str(value)
        typer.echo(f"at {where}: {shown} {text}")


def _defaults(m: Model, names: list[str]) -> dict[str, int | None]:
    """The default of each differentiated symbol (the model loaded them free)."""
    values = default_values(m)
    out: dict[str, int | None] = {}
    for n in names:
        v = values.get(m.graph.symbols[n])
        out[n] = int(v) if v is not None and v.is_Integer else None
    return out
