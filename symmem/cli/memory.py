"""`symmem memory`: where every byte of a training step or of inference goes, per GPU."""

from __future__ import annotations

from typing import Annotated, Any

import typer

from symmem.cli._options import memory_options
from symmem.cli.common import (
    FreeOpt,
    JsonOpt,
    ModelArg,
    ModelNameOpt,
    SetOpt,
    echo_json,
    load_model,
    user_errors,
)
from symmem.memory import MemoryResult
from symmem.model import Model
from symmem.options import MemoryOptions
from symmem.units import format_bytes

PerLayerOpt = Annotated[
    bool, typer.Option("--per-layer", help="Also print the bytes of each layer.")
]


@memory_options
def memory(
    model: ModelArg,
    options: MemoryOptions,
    per_layer: PerLayerOpt = False,
    set_: SetOpt = None,
    free: FreeOpt = None,
    json_: JsonOpt = False,
    model_name: ModelNameOpt = None,
) -> None:
    """Print the memory per GPU of a training step or of inference: each component exactly, in
    binary units, with its formula."""
    with user_errors():
        m = load_model(model, set_, free, model_name)
        result = m.memory(options=options)
        if json_:
            echo_json(result.to_json())
            return
        _render(m, result, per_layer)


def _show(value: Any) -> tuple[str, str]:
    """(exact bytes, binary units) of an evaluated component."""
    if isinstance(value, int):
        return f"{value:,}", format_bytes(value)
    try:
        number = float(value)
    except TypeError:
        return str(value), ""
    return f"{value} (= {number:,.1f})", format_bytes(number)


def _render(m: Model, result: MemoryResult, per_layer: bool) -> None:
    typer.echo(f"{m.name}: {result.config.summary()}")
    typer.echo("")
    rows = []
    for name, q in result.components().items():
        exact, binary = _show(q.evaluate())
        rows.append((name, exact, binary))
    w = [max(len(r[i]) for r in rows) for i in range(3)]
    w[0], w[2] = max(w[0], len("component")), max(w[2], len("binary"))
    typer.echo(f"{'component'.ljust(w[0])}  {'bytes'.rjust(w[1])}  {'binary'.rjust(w[2])}")
    for name, exact, binary in rows:
        if name == "total":
            typer.echo("-" * (w[0] + w[1] + w[2] + 4))
        typer.echo(f"{name.ljust(w[0])}  {exact.rjust(w[1])}  {binary.rjust(w[2])}")
    if result.config.offload and result.host is not None:
        exact, binary = _show(result.host.evaluate())
        typer.echo(f"host memory per node (offloaded, not in total): {exact} ({binary})")
    typer.echo("")
    typer.echo("formulas (bytes):")
    for name, q in result.components().items():
        typer.echo(f"  {name} = {q.expr}")
    for note in result.notes:
        typer.echo(f"note: {note}")
    if per_layer:
        typer.echo("")
        typer.echo(
            "per layer (all repeat instances; pipeline stages and full recompute not applied):"
        )
        cols = ("weights", "gradients", "optimizer", "activations", "kv_cache")
        used = [c for c in cols if any(getattr(r, c) != 0 for r in result.rows)]
        table = [("layer", *used)]
        for r in result.rows:
            vals = []
            for c in used:
                v = m.quantity(getattr(r, c)).evaluate()
                vals.append(_show(v)[1] or str(v) if v != 0 else "0")
            table.append((r.path, *vals))
        widths = [max(len(row[i]) for row in table) for i in range(len(table[0]))]
        for row in table:
            typer.echo(
                "  ".join(
                    c.ljust(widths[0]) if i == 0 else c.rjust(widths[i]) for i, c in enumerate(row)
                )
            )
