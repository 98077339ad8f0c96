"""What solve, sweep, diff and show share: picking the quantity (params, memory,
one memory component) and the budget (--budget or --gpu).  No formula here."""

from __future__ import annotations

from dataclasses import field
from typing import Annotated

import sympy
import typer

from symmem.errors import OptionError, suggest
from symmem.gpus import gpu as lookup
from symmem.graph import resolve_values
from symmem.memory import MemoryResult
from symmem.model import Model
from symmem.options import MemoryOptions
from symmem.quantity import Quantity
from symmem.records import record
from symmem.symbols import sym
from symmem.units import parse_budget

BudgetOpt = Annotated[
    str | None,
    typer.Option(
        "--budget", "-b", help="Memory budget: 24GB (powers of 1000), 24GiB (powers of 1024), ..."
    ),
]
GpuOpt = Annotated[
    str | None,
    typer.Option(
        "--gpu", "-g", help="Use a catalogued accelerator's capacity as the budget (symmem gpus)."
    ),
]
HostBudgetOpt = Annotated[
    str | None,
    typer.Option(
        "--host-budget",
        help="Host memory per node (1.5TiB...): a second budget beside the GPU's, for what "
        "--offload keeps there (default with --gpu: its reference node's, where catalogued).",
    ),
]
ForOpt = Annotated[
    list[str] | None,
    typer.Option("--for", help="Symbol to solve for (default batch); twice for a frontier."),
]
RangeOpt = Annotated[
    str | None,
    typer.Option(
        "--range",
        help="Values of the second --for symbol: 1:64 (inclusive), 1:64:8 (with a step) or "
        "512,1024,2048 (default: powers of two up to 4x its default).",
    ),
]

PARAM_QUANTITIES = ("params", "active")
#: memory options that --for / --grid accept like a symbol: the option becomes a sympy symbol
#: (docs/solve.md: the largest LoRA rank that fits)
OPTION_SYMBOLS = ("lora_rank",)


def symbolic_options(names: list[str], options: MemoryOptions) -> tuple[list[str], MemoryOptions]:
    """Split ``names`` into the model's symbols and memory options made symbolic (``lora_rank``)."""
    symbolic = {n: sym(n) for n in names if n in OPTION_SYMBOLS}
    return [n for n in names if n not in OPTION_SYMBOLS], options.replace(**symbolic)


@record
class Selected:
    """The quantity a command works on, and the memory components when it is memory."""

    name: str
    quantity: Quantity
    unit: str  # "bytes" or "parameters"
    components: dict[str, Quantity] = field(default_factory=dict)
    result: MemoryResult | None = None


def components_of(result: MemoryResult) -> dict[str, Quantity]:
    """name -> Quantity for a :class:`symmem.memory.MemoryResult`, total excluded."""
    return dict(result.components(with_total=False))


def select(model: Model, quantity: str, options: MemoryOptions) -> Selected:
    """params | active | memory | a memory component (weights, activations, kv_cache...)."""
    q = quantity.strip().lower().replace("-", "_")
    if q in PARAM_QUANTITIES:
        changed = [name for name in options.changed() if name != "mode"]
        if changed:
            raise OptionError(
                f"memory options ({', '.join(changed)}) do not apply to --quantity {q}"
            )
        p = model.params()
        return Selected(q, p.total if q == "params" else p.active, "parameters")
    result = model.memory(options=options)
    comps = components_of(result)
    if q in ("memory", "total"):
        return Selected("memory", result.total, "bytes", comps, result)
    if q in comps:
        return Selected(q, comps[q], "bytes", comps, result)
    hint = suggest(q, ["params", "active", "memory", *comps])
    raise OptionError(
        f"unknown quantity '{quantity}'"
        + (f": {hint}" if hint else "")
        + f"; use params, active, memory or a memory component ({', '.join(comps)})"
    )


def budget_bytes(budget: str | None, gpu: str | None) -> tuple[int, str]:
    """(bytes, how it was given) from --budget or --gpu (exactly one)."""
    if budget is not None and gpu is not None:
        raise OptionError("give either --budget or --gpu, not both")
    if gpu is not None:
        g = lookup(gpu)
        return g.capacity_bytes, f"--gpu {g.key} ({g.name}, {g.capacity_kind} capacity)"
    if budget is None:
        raise OptionError(
            "give a memory budget: --budget 24GB, or --gpu h100-80gb (symmem gpus lists them)"
        )
    return parse_budget(budget), f"--budget {budget.strip()}"


def host_budget_bytes(
    host_budget: str | None, gpu: str | None, result: MemoryResult | None
) -> tuple[int | None, str]:
    """(bytes, how it was given) of the host budget per node: --host-budget, else with --gpu and
    offloaded states the catalogued reference node's host memory, else None (no second budget)."""
    if host_budget is not None:
        if result is None:
            raise OptionError("--host-budget applies to memory (host memory of --offload)")
        return parse_budget(host_budget, what="host budget"), f"--host-budget {host_budget.strip()}"
    if gpu is None or result is None or not result.config.offload:
        return None, ""
    g = lookup(gpu)
    if g.node_host_bytes is None:
        return None, ""
    return g.node_host_bytes, f"--gpu {g.key}: a {g.node} node's host memory (nominal)"


def default_values(m: Model) -> dict[sympy.Symbol, sympy.Expr]:
    """Every symbol's value as the model gives it (defaults and --set), ignoring --free."""
    return resolve_values(m.graph.defaults, m.graph.symbols, m.set_values)
