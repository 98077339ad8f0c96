"""`symmem diff`: the derivative of a quantity, with what it means and its value."""

from __future__ import annotations

from typing import Annotated

import typer

from symmem.calculus import at_values, meaning
from symmem.calculus import diff as differentiate
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
    head_doc,
    head_lines,
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
        here = at_values(d, wrt)
        used = [x.name for x in sel.quantity.expr.free_symbols if x.name not in wrt]
        config = sel.result.config if sel.result is not None else None
        point = {w: _point_source(m, w, w in model_names, at) for w in wrt}
        if json_:
            doc = head_doc(m, used, config)
            merged = {**doc["values"], **point}  # batch and seq_len first, as everywhere
            first = [k for k in ("batch", "seq_len") if k in merged]
            doc["values"] = {k: merged[k] for k in [*first, *merged] if k in merged}
            echo_json(
                {
                    **doc,
                    "quantity": sel.name,
                    "wrt": list(wrt),
                    "derivative": str(d.expr),
                    "at_values": str(here),
                    "meaning": text,
                    "at": {k: int(v) for k, v in at.items()},
                    "value": value if isinstance(value, int) else str(value),
                }
            )
            return
        lines = head_lines(m, used, config)
        top = 1 if config is not None and config.assumed else 0
        # the point of the derivative, before the other values
        lines[top:top] = [f"point: {w} = {v['value']} ({v['source']})" for w, v in point.items()]
        for line in lines:
            typer.echo(line)
        typer.echo(f"d {sel.name}{partial} = {here}")
        if here != d.expr:
            general = str(d.expr)
            typer.echo(
                f"  (every other symbol at its value above; in all symbols: {general})"
                if len(general) <= GENERAL_MAX
                else "  (every other symbol at its value above; --json's derivative holds it in "
                "all symbols, --free NAME keeps NAME symbolic)"
            )
        typer.echo(f"meaning: {text}")
        where = ", ".join(f"{k}={v:,}" for k, v in at.items()) or "the model's values"
        shown = f"{value:,}" if isinstance(value, int) else str(value)
        typer.echo(f"at {where}: {shown} {text}")


#: the derivative in every symbol is printed beside the one at the model's values up to this length
GENERAL_MAX = 200


def _point_source(m: Model, name: str, symbol: bool, at: dict[str, int]) -> dict[str, object]:
    """The value a derivative is evaluated at, and where it came from (the symbol is loaded free
    so that the conditions on it stay; its value is still the model's)."""
    if name not in at:
        return {"value": None, "source": "no value (symbolic)"}
    if not symbol:
        source = f"--{name.replace('_', '-')}"
    elif name in m.set_values:
        source = m.origins.get(name, "--set")
    else:
        source = f"default in {m.filename or m.name}"
    return {"value": at[name], "source": source}


def _defaults(m: Model, names: list[str]) -> dict[str, int | None]:
    """The default of each differentiated symbol (the model loaded them free)."""
    values = default_values(m)
    out: dict[str, int | None] = {}
    for n in names:
        v = values.get(m.graph.symbols[n])
        out[n] = int(v) if v is not None and v.is_Integer else None
    return out
