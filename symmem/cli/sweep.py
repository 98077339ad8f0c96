"""`symmem sweep`: a quantity over a grid of symbol values, to a table, a file or a plot."""

from __future__ import annotations

import textwrap
from collections.abc import Sequence
from typing import Annotated, Any

import numpy as np
import typer

from symmem.cli._options import memory_options
from symmem.cli._quantity import (
    BudgetOpt,
    GpuOpt,
    Selected,
    budget_bytes,
    select,
    symbolic_options,
)
from symmem.cli.common import (
    BatchOpt,
    FreeOpt,
    ModelArg,
    ModelNameOpt,
    SeqLenOpt,
    SetOpt,
    head_doc,
    head_lines,
    load_model,
    progress_bar,
    user_errors,
)
from symmem.errors import OptionError
from symmem.grids import parse_grid
from symmem.model import Model
from symmem.options import MemoryOptions
from symmem.plot import check_target, plot_sweep
from symmem.solve import SolveResult, solve
from symmem.sweep import check_out, sweep_arrays, write_table
from symmem.units import format_bytes

GridOpt = Annotated[
    list[str] | None,
    typer.Option(
        "--grid",
        help="name=values: batch=1:64 (inclusive), batch=1:64:8 (with a step) or "
        "seq_len=512,1024,2048 (repeatable).",
    ),
]
QuantityOpt = Annotated[
    str,
    typer.Option(
        "--quantity", "-q", help="memory (default), a memory component, params or active."
    ),
]
OutOpt = Annotated[
    str | None,
    typer.Option("--out", help="Write .csv, .json or .parquet (atomically) instead of a table."),
]
PlotOpt = Annotated[
    str | None,
    typer.Option("--plot", help="Draw memory against the first grid symbol (.png/.pdf/.svg)."),
]
StackedOpt = Annotated[bool, typer.Option("--stacked", help="Plot the memory components stacked.")]
ComponentsOpt = Annotated[
    bool, typer.Option("--components", help="Add one column per memory component.")
]

#: grids at least this large get a progress bar (on a terminal)
PROGRESS_POINTS = 2_000_000
#: tables longer than this are shortened on stdout
MAX_ROWS = 60


@memory_options
def sweep(
    model: ModelArg,
    options: MemoryOptions,
    grid: GridOpt = None,
    quantity: QuantityOpt = "memory",
    out: OutOpt = None,
    plot: PlotOpt = None,
    budget: BudgetOpt = None,
    gpu: GpuOpt = None,
    stacked: StackedOpt = False,
    components: ComponentsOpt = False,
    set_: SetOpt = None,
    batch: BatchOpt = None,
    seq_len: SeqLenOpt = None,
    free: FreeOpt = None,
    model_name: ModelNameOpt = None,
) -> None:
    """Evaluate a quantity exactly at every point of a grid (vectorised)."""
    with user_errors():
        if not grid:
            raise OptionError(
                "give at least one --grid name=values (for example --grid batch=1:64)"
            )
        grids: dict[str, list[int]] = {}
        for item in grid:
            name, values = parse_grid(item)
            if name in grids:
                raise OptionError(f"--grid {name} given twice")
            grids[name] = values
        if out is not None:  # checked before any work: a bad --out or --plot writes nothing
            check_out(out)
        if (
            plot is not None
        ):  # checked before any work: nothing is computed or written on a bad plot request
            check_target(plot)
            if len(grids) > 2:
                raise OptionError(
                    "--plot draws one or two grid symbols (x axis, one line per value of the "
                    "second)"
                )
            if stacked and len(grids) == 2 and len(list(grids.values())[1]) > 1:
                raise OptionError(
                    "--stacked draws one line: sweep one symbol, or give the second a single value"
                )
        elif stacked:
            raise OptionError("--stacked goes with --plot")
        b = how = None
        if budget is not None or gpu is not None:
            b, how = budget_bytes(budget, gpu)
        model_names, options = symbolic_options(list(grids), options)
        m = load_model(
            model,
            set_,
            [*(free or []), *[n for n in model_names if n not in (free or [])]],
            model_name,
            batch,
            seq_len,
        )
        for n in model_names:
            m.symbol(n)
        sel = select(m, quantity, options)
        quantities = {sel.name: sel.quantity}
        comp_names: list[str] = []
        if (components or stacked) and sel.components:
            comp_names = [c for c in sel.components if c != sel.name]
            quantities.update({c: sel.components[c] for c in comp_names})
        elif stacked:
            raise OptionError("--stacked needs --quantity memory (the components of memory)")
        n_points = 1
        for v in grids.values():
            n_points *= len(v)
        cols = sweep_arrays(
            quantities,
            grids,
            progress=progress_bar(n_points, PROGRESS_POINTS),
            refused=_report_refused(n_points),
        )
        n_points = len(next(iter(cols.values())))
        used = [x.name for x in sel.quantity.expr.free_symbols if x.name not in grids]
        config = sel.result.config if sel.result is not None else None
        spans = {k: _span(v) for k, v in grids.items()}
        for line in head_lines(m, used, config):  # what the table's numbers assume
            typer.echo(line)
        typer.echo("grid: " + "; ".join(f"{k} = {v} (--grid)" for k, v in spans.items()))
        if out is not None:
            meta = head_doc(m, used, config)
            meta["grid"] = {k: [int(x) for x in v] for k, v in grids.items()}
            meta["unit"] = sel.unit
            fmt = write_table(cols, out, meta)
            typer.echo(f"wrote {n_points:,} rows x {len(cols)} columns to {out} ({fmt})")
        if plot is not None:
            title = _title(m, sel, used)
            _plot(sel, cols, list(grids), plot, b, how, comp_names if stacked else [], title)
            typer.echo(f"wrote {plot}")
        if out is None and plot is None:
            _table(cols, n_points, list(quantities) if sel.unit == "bytes" else [])


def _title(m: Model, sel: Selected, used: list[str]) -> str:
    """The plot's title: the model and quantity; precision and parallelism (memory); the
    values of the symbols the grid does not sweep, batch and seq_len first."""
    lines = [f"{m.name}: {sel.name}"]
    if sel.result is not None:
        c = sel.result.config
        p = c.parallel
        par = ", ".join(f"{k}={v}" for k, v in (("tp", p.tp), ("pp", p.pp), ("dp", p.dp)))
        lines[0] += f" ({c.mode}, {c.precision}; {par}, zero={p.zero})"
    fixed = [
        f"{k}={vs.value:,}" if isinstance(vs.value, int) else f"{k}={vs.value}"
        for k, vs in m.value_sources(used).items()
        if vs.value is not None
    ]
    lines += textwrap.wrap(", ".join(fixed), 100)[:2]
    return "\n".join(lines)


def _report_refused(n_points: int) -> Any:
    def report(count: int, why: str) -> None:
        typer.echo(
            f"note: {count:,} of {n_points:,} points left out: the model refuses them, "
            f"as --set would ({why})",
            err=True,
        )

    return report


def _table(cols: dict[str, Any], n: int, in_bytes: list[str]) -> None:
    """The rows (the first and last when many), exact, each byte column followed by its GiB."""
    cols = dict(cols)
    for name in in_bytes:  # a GiB column beside each byte column (the exact bytes stay)
        at = list(cols).index(name) + 1
        try:
            gib = {f"{name} GiB": np.array([float(v) / 2**30 for v in cols[name]], dtype=float)}
        except OverflowError:  # bytes beyond a float (a size of 10^400): the exact bytes only
            continue
        items = list(cols.items())
        cols = dict(items[:at] + list(gib.items()) + items[at:])
    names = list(cols)
    idx = (
        list(range(n))
        if n <= MAX_ROWS
        else [*range(MAX_ROWS // 2), -1, *range(n - MAX_ROWS // 2, n)]
    )
    rows = [
        [
            f"{int(cols[c][i]):,}"
            if cols[c].dtype.kind in "iuO"
            else f"{float(cols[c][i]):,.2f}"
            if c.endswith(" GiB")
            else f"{float(cols[c][i]):,.6g}"
            for c in names
        ]
        if i >= 0
        else ["..."] * len(names)
        for i in idx
    ]
    widths = [max(len(c), *(len(r[j]) for r in rows)) for j, c in enumerate(names)]
    typer.echo("  ".join(c.rjust(w) for c, w in zip(names, widths, strict=True)))
    for r in rows:
        typer.echo("  ".join(v.rjust(w) for v, w in zip(r, widths, strict=True)))
    if n > MAX_ROWS:
        typer.echo(f"({n:,} rows; --out FILE.csv writes them all)")


def _plot(
    sel: Selected,
    cols: dict[str, Any],
    names: list[str],
    path: str,
    b: int | None,
    how: str | None,
    stack: list[str],
    title: str,
) -> dict[str, str]:
    solved: dict[Any, SolveResult] = {}
    if b is not None:
        if len(names) == 2:
            for w in sorted(set(int(v) for v in cols[names[1]])):
                solved[w] = solve(sel.quantity, b, names[0], fixed={names[1]: w})
        else:
            solved[None] = solve(sel.quantity, b, names[0])
    label = None
    if b is not None:
        label = f"budget {format_bytes(b)} ({(how or '').split(' (')[0]})"
    return plot_sweep(
        cols,
        names,
        sel.name,
        path,
        budget_bytes=b,
        budget_label=label,
        solved=solved,
        components=stack,
        title=title,
        unit=sel.unit,
    )


def _span(values: Sequence[int]) -> str:
    """A grid for people: a few values listed, an even range as a..b, else its bounds."""
    v = sorted(values)
    if len(v) <= 6:
        return ", ".join(f"{x:,}" for x in v)
    step = v[1] - v[0]
    if all(b - a == step for a, b in zip(v, v[1:], strict=False)):
        by = "" if step == 1 else f" step {step:,}"
        return f"{v[0]:,}..{v[-1]:,}{by} ({len(v):,} values)"
    return f"{v[0]:,} to {v[-1]:,} ({len(v):,} values)"
