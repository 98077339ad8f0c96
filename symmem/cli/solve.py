"""`symmem solve`: the largest batch (or any size) whose memory fits a budget, exactly."""

from __future__ import annotations

from typing import Annotated, Any

import typer

from symmem.cli._options import memory_options
from symmem.cli._quantity import (
    BudgetOpt,
    ForOpt,
    GpuOpt,
    HostBudgetOpt,
    RangeOpt,
    Selected,
    budget_bytes,
    host_budget_bytes,
    select,
    symbolic_options,
)
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
    progress_bar,
    user_errors,
    values_doc,
    values_lines,
)
from symmem.errors import OptionError
from symmem.gpus import CATALOGUE
from symmem.grids import parse_values
from symmem.limits import MAX_FRONTIER
from symmem.model import Model
from symmem.options import MemoryOptions
from symmem.remedies import DEGREE_OPTIONS, remedies, smallest_degree
from symmem.solve import SolveResult, default_range, frontier
from symmem.solve import solve as solve_quantity
from symmem.units import format_bytes, marketed_note

QuantityOpt = Annotated[
    str, typer.Option("--quantity", "-q", help="memory (default), a memory component, or params.")
]


@memory_options
def solve(
    model: ModelArg,
    options: MemoryOptions,
    budget: BudgetOpt = None,
    gpu: GpuOpt = None,
    host_budget: HostBudgetOpt = None,
    for_: ForOpt = None,
    quantity: QuantityOpt = "memory",
    range_: RangeOpt = None,
    set_: SetOpt = None,
    batch: BatchOpt = None,
    seq_len: SeqLenOpt = None,
    free: FreeOpt = None,
    json_: JsonOpt = False,
    model_name: ModelNameOpt = None,
) -> None:
    """Find the largest value of a symbol (batch by default) whose memory fits the budget;
    --for tp|dp|pp|ep: the fewest parallel ranks that fit. With --offload, host memory per node
    is a second budget (--host-budget, or the --gpu entry's reference node)."""
    with user_errors():
        names = list(for_ or ["batch"])
        if len(names) > 2:
            raise OptionError("--for at most twice (a frontier of two symbols)")
        b, how = budget_bytes(budget, gpu)
        notes = budget_notes(b, budget)
        if host_budget is not None and (len(names) > 1 or names[0] in DEGREE_OPTIONS):
            raise OptionError("--host-budget applies to solving for one symbol (batch...)")
        if names[0] in DEGREE_OPTIONS:
            if len(names) > 1:
                raise OptionError(f"--for {names[0]} (a number of GPUs) takes no second --for")
            m = load_model(model, set_, free, model_name, batch, seq_len)
            _degree(m, names[0], b, how, options, quantity, json_, notes)
            return
        # --for lora_rank: the option becomes a symbol of the memory model
        model_names, options = symbolic_options(names, options)
        # the solved symbols are kept free so that defaults derived from them follow them
        m = load_model(
            model,
            set_,
            [*(free or []), *[n for n in model_names if n not in (free or [])]],
            model_name,
            batch,
            seq_len,
        )
        for n in model_names:
            m.symbol(n)  # unknown symbol -> a clear error
            if n in m.set_values:
                notes.append(
                    f"{m.origins.get(n, '--set')} {n}={m.set_values[n]} is not used: "
                    f"{n} is what solve looks for"
                )
        sel = select(m, quantity, options)
        used = [s.name for s in sel.quantity.expr.free_symbols if s.name not in model_names]
        if len(names) == 2:
            _frontier(m, sel, b, how, names, range_, json_)
            return
        if range_ is not None:
            raise OptionError("--range applies to the second --for symbol of a frontier")
        hb, host_how = host_budget_bytes(host_budget, gpu, sel.result)
        if hb is not None and sel.result is not None and sel.result.host is not None:
            result = solve_quantity(sel.quantity, b, names[0], host=sel.result.host, host_budget=hb)
            notes.append(f"host budget: {hb:,} bytes ({_fmt(hb)}) per node from {host_how}")
        else:
            result = solve_quantity(sel.quantity, b, names[0])
        if json_:
            cfg = sel.result.config if sel.result is not None else None
            doc = {"values": values_doc(m, used, cfg), **result.as_dict(), "notes": notes}
            if sel.result is not None:
                doc["config"] = sel.result.config.describe()
            if not result.fits and sel.components:
                doc["remedies"] = [
                    {
                        "change": f.change,
                        "options": f.options,
                        "value": f.result.value,
                        "stacked": f.stacked,
                    }
                    for f in remedies(
                        m, result.budget_bytes, result.symbol, options=options, quantity=sel.name
                    )
                ]
            echo_json(doc)
            return
        _report(m, sel, result, how, options, used, notes)


def budget_notes(b: int, budget: str | None) -> list[str]:
    """What to say about the budget: a decimal size equal to a card's marketed one."""
    if budget is None:
        return []
    cards = [(g.key, g.nominal, g.nominal_bytes) for g in CATALOGUE]
    note = marketed_note(b, cards)
    return [note] if note else []


def _degree(
    m: Model,
    option: str,
    b: int,
    how: str,
    options: MemoryOptions,
    quantity: str,
    json_: bool,
    notes: list[str],
) -> None:
    sel = select(m, quantity, options)
    if sel.result is None:
        raise OptionError(f"--for {option} counts GPUs: it needs a memory quantity")
    if option in options.changed():
        notes.append(
            f"--{option} {getattr(options, option)} is not used: {option} is what solve looks for"
        )
    found = smallest_degree(m, b, option, options=options, quantity=sel.name)
    used = [s.name for s in sel.quantity.expr.free_symbols]
    if json_:
        cfg = sel.result.config if sel.result is not None else None
        doc = {"values": values_doc(m, used, cfg), **found.as_dict(), "notes": notes}
        doc["config"] = sel.result.config.describe()
        echo_json(doc)
        return
    _head(m, sel, b, how, used, notes)
    extra = "".join(f", {k}={v}" for k, v in found.implied.items())
    if found.implied:
        typer.echo(
            "(dp shards only under ZeRO: searched with zero=3, FSDP full sharding; "
            "--zero 1|2 to search another stage)"
        )
    if found.value is None:
        if found.largest_tried is None:
            typer.echo(f"no {option} up to {found.limit:,} is one the model accepts")
            return
        typer.echo(
            f"no {option} fits: {sel.name} is still {_b(found.bytes_at_value)} per GPU at "
            f"{option} = {found.largest_tried:,}, the largest the model accepts up to "
            f"{found.limit:,}{extra}"
        )
        return
    typer.echo(f"{option} = {found.value:,}   (the fewest that fit{extra})")
    typer.echo(f"  {sel.name} per GPU at {option} = {found.value:,}: {_b(found.bytes_at_value)}")
    if found.bytes_below is not None:
        typer.echo(
            f"  at the largest smaller {option} the model takes: {_b(found.bytes_below)}  (over)"
        )


def _head(m: Model, sel: Selected, b: int, how: str, used: list[str], notes: list[str]) -> None:
    """What every solve prints first: assumptions, the configuration, the values, the budget."""
    if sel.result is not None:
        assumed = sel.result.config.assumptions()
        if assumed:
            typer.echo(assumed)
        typer.echo(f"{m.name}: {sel.result.config.summary()}")
    for line in values_lines(m, used, sel.result.config if sel.result is not None else None):
        typer.echo(line)
    typer.echo(f"budget: {b:,} bytes ({_fmt(b)}) from {how}")
    for note in notes:
        typer.echo(f"note: {note}")


def _b(n: Any) -> str:
    return f"{int(n):,} bytes ({format_bytes(int(n))})"


def _report(
    m: Model,
    sel: Selected,
    r: SolveResult,
    how: str,
    options: MemoryOptions,
    used: list[str],
    notes: list[str],
) -> None:
    unit = sel.unit
    _head(m, sel, r.budget_bytes, how, used, notes)
    if r.unbounded:
        if r.method == "unbounded":  # grows, then levels off (a window, a Min) below the budget
            typer.echo(
                f"{sel.name} levels off below the budget as {r.symbol} grows (a window or a cap): "
                f"every value of {r.symbol} fits"
            )
        else:
            typer.echo(
                f"{sel.name} does not grow with {r.symbol}: every value of {r.symbol} fits "
                f"({_amount(r.bytes_at_value, unit)} <= budget)"
            )
        return
    if not r.fits and r.largest_fitting is not None:
        typer.echo(
            f"{r.symbol} up to {r.largest_fitting:,} fits, but the model accepts none of those "
            f"values: {r.refused}"
        )
        return
    if not r.fits and r.bound_by == "host" and r.host_budget_bytes is not None:
        over = (r.host_bytes_at_value or 0) - r.host_budget_bytes
        typer.echo(
            f"even {r.symbol} = {r.lower} does not fit the host: host memory per node is "
            f"{_b(r.host_bytes_at_value)}, {_b(over)} over the host budget (--offload keeps it "
            f"there; {sel.name} on the GPU: {_amount(r.bytes_at_value, unit)})"
        )
        return
    if not r.fits:
        over = r.bytes_at_value - r.budget_bytes
        typer.echo(
            f"even {r.symbol} = {r.lower} does not fit: {sel.name} needs "
            f"{_amount(r.bytes_at_value, unit)}, {_amount(over, unit)} over the budget"
        )
        if sel.components:
            at = {r.symbol: r.lower}
            vals = {k: q.evaluate(**at) for k, q in sel.components.items()}
            top = max(vals, key=lambda k: vals[k] if isinstance(vals[k], int) else -1)
            typer.echo(f"largest component: {top} ({_amount(vals[top], unit)})")
            fixes = remedies(m, r.budget_bytes, r.symbol, options=options, quantity=sel.name)
            alone = [f for f in fixes if not f.stacked]
            stacked = [f for f in fixes if f.stacked]
            if alone:
                typer.echo("what would make it fit, cheapest first (each alone):")
                for fix in alone:
                    typer.echo(f"  {fix.change:<40} {r.symbol} <= {fix.result.value:,}")
            if stacked:
                typer.echo("no single change fits; stacked in that order:")
                for fix in stacked:
                    typer.echo(f"  {fix.change}: {r.symbol} <= {fix.result.value:,}")
            if not fixes:
                typer.echo(
                    "nothing tried makes it fit (mixed precision, checkpointing, 8-bit "
                    "optimizer, LoRA, QLoRA, FSDP, tensor parallelism; inference: 8-bit KV "
                    "cache, 8- and 4-bit weights, tensor parallelism)"
                )
        return
    if r.value is None:  # pragma: no cover - r.fits above
        return
    typer.echo(f"{r.symbol} = {r.value:,}   ({r.method})")
    typer.echo(f"  {sel.name} at {r.symbol} = {r.value:,}: {_amount(r.bytes_at_value, unit)}")
    if r.bound_by == "host":
        typer.echo(
            f"  host memory per node at {r.symbol} = {r.value:,}: {_b(r.host_bytes_at_value)}; "
            f"at {r.value + 1:,}: {_b(r.host_bytes_at_next)}  (over the host budget: it binds)"
        )
    elif r.bound_by == "gpu":
        typer.echo(
            f"  host memory per node at {r.symbol} = {r.value:,}: {_b(r.host_bytes_at_value)} "
            f"(within the host budget of {_b(r.host_budget_bytes)})"
        )
    if r.bound_by == "host":
        pass  # the host decides: the GPU's next value is not "over"
    elif r.largest_fitting is not None:
        typer.echo(
            f"  values up to {r.symbol} = {r.largest_fitting:,} fit, but the model refuses "
            f"those above {r.value:,} (as --set would): {r.refused}"
        )
    else:
        typer.echo(
            f"  {sel.name} at {r.symbol} = {r.value + 1:,}: {_amount(r.bytes_at_next, unit)}"
            "  (over)"
        )
    typer.echo(f"  headroom: {_amount(r.headroom, unit)}")
    if sel.components:
        typer.echo(f"breakdown at {r.symbol} = {r.value:,}:")
        at = {r.symbol: r.value}
        for name, q in sel.components.items():
            v = q.evaluate(**at)
            typer.echo(f"  {name:<12} {_amount(v, unit) if isinstance(v, int) else v}")


def _fmt(n: Any) -> str:
    return format_bytes(int(n))


def _amount(n: Any, unit: str) -> str:
    if unit == "bytes":
        return _b(n)
    return f"{int(n):,} {unit}"


def _frontier(
    m: Model, sel: Selected, b: int, how: str, names: list[str], range_: str | None, json_: bool
) -> None:
    if range_ is not None:
        values = parse_values(range_, names[1], "--range", most=MAX_FRONTIER)
    else:  # powers of two up to 4x the symbol's default (the model loaded without --free)
        values = default_range(_defaults(m).quantity(sel.quantity.expr), names[1])
    # a bar from about a second of work (a row costs tens of microseconds)
    fr = frontier(
        sel.quantity, b, names[0], names[1], values, progress=progress_bar(len(values), 20_000)
    )
    if json_:
        echo_json(
            {
                "inner": fr.inner,
                "outer": fr.outer,
                "budget_bytes": fr.budget_bytes,
                "rows": [{fr.outer: w, **r.as_dict()} for w, r in fr.rows],
                "refused": [{fr.outer: w, "reason": why} for w, why in fr.refused],
            }
        )
        return
    typer.echo(f"budget: {b:,} bytes ({_fmt(b)}) from {how}")
    if fr.refused:
        w, why = fr.refused[0]
        typer.echo(
            f"note: {len(fr.refused):,} values of {fr.outer} left out: the model refuses them, "
            f"as --set would ({why})",
            err=True,
        )
    if not fr.rows:
        raise OptionError(f"the model accepts none of the values of {fr.outer} given")
    typer.echo(f"largest {fr.inner} for each {fr.outer}:")
    w1 = max(len(fr.outer), *(len(f"{w:,}") for w, _ in fr.rows))
    typer.echo(f"  {fr.outer.rjust(w1)}  {fr.inner}")
    for w, r in fr.rows:
        if r.unbounded:
            shown = "any (does not grow)"
        elif r.fits:
            shown = f"{r.value:,}"
            if r.largest_fitting is not None:
                shown += f" (up to {r.largest_fitting:,} fits; the model refuses those above)"
        elif r.largest_fitting is not None:
            shown = f"none the model accepts (up to {r.largest_fitting:,} fits)"
        else:
            shown = f"none ({fr.inner}={r.lower} is {_fmt(r.bytes_at_value - b)} over)"
        typer.echo(f"  {f'{w:,}'.rjust(w1)}  {shown}")


def _defaults(m: Model) -> Model:
    return Model(m.graph, set_values=m.set_values, source=m.source, filename=m.filename)
