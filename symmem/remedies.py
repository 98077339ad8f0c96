"""When nothing fits: the changes of memory options users try, and what each one buys.

A verb over the memory model and the solver: each change is a
:class:`symmem.options.MemoryOptions` derived from the user's, built and solved.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any

from symmem.errors import OptionError
from symmem.memory import HasGraph, build
from symmem.options import MemoryOptions
from symmem.solve import SolveResult, solve
from symmem.units import parse_budget
from symmem.values import as_name


@dataclass(frozen=True)
class Remedy:
    """One change of memory options, and what the solve gives with it."""

    change: str
    options: dict[str, Any]
    result: SolveResult


def remedies(
    model: HasGraph,
    budget: int | str,
    for_: str = "batch",
    *,
    mode: str | None = None,
    options: MemoryOptions | Mapping[str, Any] | None = None,
    quantity: str = "memory",
) -> list[Remedy]:
    """When nothing fits: the smallest change of each kind that makes ``for_ = 1`` fit.

    Tried in order: full activation checkpointing; ZeRO stage 1, 2, 3 (with the
    given data parallel degree, or 8 when none is given); tensor parallel 2, 4, 8;
    int8 then int4 weights (inference).  For each kind the first that fits is kept;
    when no single change is enough, the strongest of each kind are stacked in order.
    A change the model refuses (tp that does not divide its heads) is skipped.
    """
    budget_bytes = parse_budget(budget)
    as_name(for_, "for_", OptionError)
    as_name(quantity, "quantity", OptionError)
    if not (hasattr(model, "graph") and hasattr(model, "values")):
        raise OptionError(f"remedies() takes a model (symmem.load), not {model!r}"[:200])
    if options is not None and not isinstance(options, MemoryOptions | Mapping):
        raise OptionError(f"options: expected MemoryOptions or a mapping, got {options!r}"[:200])
    if isinstance(options, MemoryOptions):
        base = options
    else:
        base = MemoryOptions.from_user(dict(options or {}))
    if mode is not None:
        base = base.replace(mode=mode)
    infer = base.mode == "infer"
    kinds: list[list[tuple[str, dict[str, Any]]]] = []
    if not infer:
        kinds.append([("checkpointing=full", {"checkpointing": "full"})])
        dp = base.dp if base.dp != 1 else 8
        kinds.append([(f"zero={z} (dp={dp})", {"zero": z, "dp": dp}) for z in (1, 2, 3)])
    kinds.append([(f"tp={t}", {"tp": t}) for t in (2, 4, 8)])
    if infer:
        kinds.append([(f"quant={w}", {"quant": w}) for w in ("int8", "int4")])
    cache: dict[tuple[tuple[str, Any], ...], SolveResult | None] = {}

    def attempt(change: Mapping[str, Any]) -> SolveResult | None:
        key = tuple(sorted(change.items()))
        if key not in cache:
            try:
                result = build(model.graph, model.values, base.replace(**change))
            except OptionError:  # a change this model refuses (tp not dividing its heads)
                cache[key] = None
                return None
            q = (
                result.total
                if quantity in ("memory", "total")
                else getattr(result, quantity, result.total)
            )
            cache[key] = solve(q, budget_bytes, for_)
        return cache[key]

    out: list[Remedy] = []
    for kind in kinds:
        # each kind is ordered weakest to strongest: if the strongest does not fit, none does
        strongest = attempt(kind[-1][1])
        if strongest is None or not strongest.fits:
            continue
        for label, change in kind:
            r = attempt(change)
            if r is not None and r.fits:
                out.append(Remedy(label, change, r))
                break
    if out:
        return out
    # no single change is enough: stack the strongest of each kind, in order, until it fits
    stacked: dict[str, Any] = {}
    labels: list[str] = []
    for kind in kinds:
        label, change = kind[-1]
        stacked.update(change)
        labels.append(label)
        r = attempt(dict(stacked))
        if r is not None and r.fits:
            return [Remedy(" + ".join(labels), dict(stacked), r)]
    return out
