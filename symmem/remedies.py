"""When nothing fits: the changes users try, cheapest first, alone and stacked; and how many
GPUs it takes.

A verb over the memory model and the solver: each change is a
:class:`symmem.options.MemoryOptions` derived from the user's, built and solved.

Training, in the order people reach for them (each costs more than the one before: speed,
then quality, then hardware): mixed precision in the model's 16-bit dtype; activation
checkpointing; an 8-bit optimizer; LoRA; QLoRA; ZeRO-3 / FSDP over the data-parallel GPUs
named; more GPUs (the fewest FSDP ranks, or tensor-parallel ranks, that fit).  Inference:
the model's own dtype, an 8-bit KV cache, 8-bit then 4-bit weights, tensor parallelism.
"""

from __future__ import annotations

import contextlib
from collections.abc import Mapping
from fractions import Fraction
from typing import Any

import sympy

from symmem.errors import OptionError, SymmemError
from symmem.memory import HasGraph, build
from symmem.memory.config import resolve
from symmem.memory.fast import MemoryEvaluator
from symmem.options import MemoryOptions
from symmem.records import record
from symmem.solve import SolveResult, solve
from symmem.units import parse_budget
from symmem.values import as_name

#: the LoRA rank and targets a remedy tries (PEFT users' common r = 16 on every linear)
LORA_TRY: dict[str, Any] = {"lora_rank": 16, "lora_targets": "all-linear"}
#: the parallel degrees ``smallest_degree`` searches, and how far
DEGREE_OPTIONS = ("tp", "pp", "dp", "ep")
DEGREE_LIMIT = 4096


@record
class Remedy:
    """One change of memory options (or a stack of them), and what the solve gives with it."""

    change: str
    options: dict[str, Any]
    result: SolveResult
    #: a stack of the cheaper changes, in order (not one change alone)
    stacked: bool = False


@record
class DegreeResult:
    """The smallest parallel degree whose memory fits (``value`` None: none up to ``limit``)."""

    option: str
    value: int | None
    #: bytes per GPU at ``value`` (at the largest degree tried when none fits)
    bytes_at_value: int | Fraction
    #: bytes per GPU at the degree below ``value`` (None when ``value`` is 1 or None)
    bytes_below: int | Fraction | None
    budget_bytes: int
    limit: int
    #: options the search added (``zero = 3`` for dp when none was given)
    implied: dict[str, Any]
    #: the largest degree the model accepted (None when it accepted none up to ``limit``)
    largest_tried: int | None = None

    def as_dict(self) -> dict[str, Any]:
        def num(x: int | Fraction | None) -> int | float | None:
            if x is None or isinstance(x, int):
                return x
            return int(x) if x.denominator == 1 else float(x)

        return {
            "symbol": self.option,
            "value": self.value,
            "bytes_at_value": num(self.bytes_at_value),
            "bytes_below": num(self.bytes_below),
            "budget_bytes": self.budget_bytes,
            "method": "smallest degree",
            "implied_options": self.implied,
            "largest_tried": self.largest_tried,
        }


def smallest_degree(
    model: HasGraph,
    budget: int | str,
    option: str,
    *,
    options: MemoryOptions | Mapping[str, Any] | None = None,
    quantity: str = "total",
    at: Mapping[str, Any] | None = None,
    limit: int = DEGREE_LIMIT,
) -> DegreeResult:
    """The smallest ``tp``, ``pp``, ``dp`` or ``ep`` whose ``quantity`` (bytes per GPU) fits
    ``budget`` at the model's values (``at`` sets more: ``{"batch": 1}``).

    ``dp`` shards only under ZeRO: with ``zero = 0`` the search uses ZeRO-3 (FSDP full
    sharding) and says so in ``implied``.  A degree the model refuses (tp not dividing its
    heads) is skipped.  Exact integers, from :class:`MemoryEvaluator` (microseconds a try).
    """
    if option not in DEGREE_OPTIONS:
        raise OptionError(f"smallest degree of {option}: one of {', '.join(DEGREE_OPTIONS)}")
    budget_bytes = parse_budget(budget)
    base = _options(options)
    implied: dict[str, Any] = {}
    if option == "dp" and base.zero == 0:
        implied["zero"] = 3
        base = base.replace(zero=3)
    ev = _evaluator(model, at)
    key = "total" if quantity in ("memory", "total") else quantity
    last: int | Fraction = 0
    below: int | Fraction | None = None
    tried: int | None = None
    for degree in range(1, limit + 1):
        try:
            got = ev.bytes(base, **{option: degree})[key]
        except OptionError:  # tp not dividing the heads, ep not dividing the experts
            continue
        if got <= budget_bytes:
            return DegreeResult(option, degree, got, below, budget_bytes, limit, implied, degree)
        below = last = got
        tried = degree
    return DegreeResult(option, None, last, None, budget_bytes, limit, implied, tried)


def _evaluator(model: HasGraph, at: Mapping[str, Any] | None) -> MemoryEvaluator:
    """The model's :class:`MemoryEvaluator` with ``at`` put in, shared by the searches of
    one process (each structure is compiled once: a tenth of a second on a large model)."""
    values = dict(model.values)
    graph = model.graph
    for name, v in (at or {}).items():
        values[graph.symbols[name]] = sympy.sympify(v)
    key = (id(graph), tuple(values.items()))
    cached = _EVALUATORS.get(key)
    if cached is None or cached[0] is not graph:
        if len(_EVALUATORS) >= 8:
            _EVALUATORS.pop(next(iter(_EVALUATORS)))
        cached = _EVALUATORS[key] = (graph, MemoryEvaluator(graph, values))
    return cached[1]


#: (graph id, values) -> (the graph, its evaluator): the graph is held so that its id stays its
_EVALUATORS: dict[tuple[Any, ...], tuple[Any, MemoryEvaluator]] = {}


def _options(options: MemoryOptions | Mapping[str, Any] | None) -> MemoryOptions:
    if isinstance(options, MemoryOptions):
        return options
    return MemoryOptions.from_user(dict(options or {}))


def _ladder(model: HasGraph, base: MemoryOptions) -> list[tuple[str, dict[str, Any]]]:
    """The changes to try, cheapest first, skipping what the options already do."""
    cfg, _, _ = resolve(base, model.graph.options)
    declared = model.graph.options.get("dtype")
    sixteen = declared if declared in ("fp16", "bf16") else "bf16"
    steps: list[tuple[str, dict[str, Any]]] = []
    if cfg.mode == "train":
        if cfg.weight_dtype == "fp32" and cfg.lora_rank is None:
            steps.append(
                (f"mixed precision (precision=mixed-{sixteen})", {"precision": f"mixed-{sixteen}"})
            )
        if cfg.checkpointing != "full":
            steps.append(("checkpointing=full", {"checkpointing": "full"}))
        if cfg.lora_rank is None and cfg.optimizer != "adam8bit":
            steps.append(("8-bit optimizer (optimizer=adam8bit)", {"optimizer": "adam8bit"}))
        if cfg.lora_rank is None:
            steps.append(("LoRA r=16 on all linears", dict(LORA_TRY)))
        if cfg.quant is None:
            qlora = {"quant": "nf4", "double_quant": True, **LORA_TRY}
            if base.lora_rank is not None:
                qlora = {"quant": "nf4", "double_quant": True}
            steps.append(("QLoRA (nf4 base, LoRA r=16)", qlora))
        dp = cfg.parallel.dp
        if dp != 1 and cfg.parallel.zero < 3:
            steps.append((f"ZeRO-3 / FSDP over the dp={dp} GPUs", {"zero": 3}))
    else:
        if cfg.weight_dtype == "fp32" and cfg.quant is None:
            steps.append(
                (f"the model's 16-bit dtype (precision={sixteen})", {"precision": sixteen})
            )
        if cfg.kv_dtype not in ("fp8", "int8"):
            steps.append(("8-bit KV cache (kv_dtype=fp8)", {"kv_dtype": "fp8"}))
        if cfg.quant is None:
            steps.append(("8-bit weights (quant=int8)", {"quant": "int8"}))
            steps.append(("4-bit weights (quant=awq)", {"quant": "awq"}))
    return steps


def remedies(
    model: HasGraph,
    budget: int | str,
    for_: str = "batch",
    *,
    mode: str | None = None,
    options: MemoryOptions | Mapping[str, Any] | None = None,
    quantity: str = "memory",
) -> list[Remedy]:
    """When ``for_ = 1`` does not fit: each change of :func:`_ladder` that fits alone (cheapest
    first), then the first stack of them, in that order, that fits when no single one does;
    then more GPUs: the fewest FSDP (ZeRO-3) data-parallel ranks (training) and the fewest
    tensor-parallel ranks that fit, alone, and on top of the stack when nothing else fits.
    A change the model refuses (tp that does not divide its heads) is skipped.
    """
    budget_bytes = parse_budget(budget)
    as_name(for_, "for_", OptionError)
    as_name(quantity, "quantity", OptionError)
    if not (hasattr(model, "graph") and hasattr(model, "values")):
        raise OptionError(f"remedies() takes a model (symmem.load), not {model!r}"[:200])
    if options is not None and not isinstance(options, MemoryOptions | Mapping):
        raise OptionError(f"options: expected MemoryOptions or a mapping, got {options!r}"[:200])
    base = _options(options)
    if mode is not None:
        base = base.replace(mode=mode)
    cache: dict[tuple[tuple[str, Any], ...], SolveResult | None] = {}
    ev = _precheck_evaluator(model, for_, quantity)
    if ev is not None and not base.sp:
        # the tensor-parallel search below compiles this structure anyway: compile it first,
        # and the changes that keep it (a KV dtype, a precision) are decided without a build
        with contextlib.suppress(SymmemError, KeyError):
            ev.bytes(base)

    def over_at_one(opts: MemoryOptions) -> bool:
        """``for_ = 1`` provably does not fit (then the solve finds nothing): decided by the
        compiled evaluator in microseconds, when it already holds this structure."""
        if ev is None:
            return False
        try:
            if not ev.compiled(opts):
                return False
            return ev.bytes(opts)["total"] > budget_bytes
        except (SymmemError, KeyError):
            return False

    def attempt(change: Mapping[str, Any]) -> SolveResult | None:
        key = tuple(sorted((k, str(v)) for k, v in change.items()))
        if key not in cache:
            if over_at_one(base.replace(**change)):
                cache[key] = None  # the build and solve would say: does not fit
                return None
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
    steps = _ladder(model, base)
    for label, change in steps:
        r = attempt(change)
        if r is not None and r.fits:
            out.append(Remedy(label, change, r))
    stack: dict[str, Any] = {}
    labels: list[str] = []
    if not out:
        for label, change in steps:
            stack.update(change)
            if "quant" in change and labels and labels[-1].startswith("LoRA"):
                labels.pop()  # QLoRA is LoRA over a quantized base: it replaces the LoRA step
            labels.append(label)
            r = attempt(dict(stack))
            if r is not None and r.fits:
                out.append(Remedy(" + ".join(labels), dict(stack), r, stacked=True))
                return out
    # more GPUs: the fewest that fit, alone (and on the full stack when nothing else fits)
    gpus = ["dp", "tp"] if base.mode == "train" else ["tp"]
    for option in gpus:
        for extra, prefix in (({}, []), (stack, labels)) if not out else (({}, []),):
            found = _more_gpus(model, budget_bytes, option, base.replace(**extra), quantity, for_)
            if found is None:
                continue
            label, change = found
            r = attempt({**extra, **change})
            if r is not None and r.fits:
                out.append(
                    Remedy(" + ".join([*prefix, label]), {**extra, **change}, r, bool(prefix))
                )
                break
    return out


def _precheck_evaluator(model: HasGraph, for_: str, quantity: str) -> MemoryEvaluator | None:
    """The evaluator the GPU searches use (``for_ = 1``), compiled for the user's options'
    structure; None when the quantity is not the total or a symbol has no value."""
    if quantity not in ("memory", "total") or for_ not in model.graph.symbols:
        return None
    try:
        return _evaluator(model, {for_: 1})
    except (SymmemError, KeyError):
        return None


def _more_gpus(
    model: HasGraph,
    budget_bytes: int,
    option: str,
    base: MemoryOptions,
    quantity: str,
    for_: str,
) -> tuple[str, dict[str, Any]] | None:
    """The fewest ``option`` ranks with which ``for_ = 1`` fits, as a labelled change."""
    if option == "tp" and base.sp:
        return None
    try:
        found = smallest_degree(
            model, budget_bytes, option, options=base, quantity=quantity, at={for_: 1}, limit=1024
        )
    except (SymmemError, KeyError):  # a symbol without a value: no fast search
        return None
    if found.value is None or found.value == 1:
        return None
    change: dict[str, Any] = {option: found.value, **found.implied}
    if option == "dp":
        zero = change.get("zero", base.zero)
        what = "FSDP / ZeRO-3" if zero == 3 else f"ZeRO-{zero}"
        return f"{what} over {found.value} GPUs (dp={found.value})", change
    return f"{option}={found.value} ({found.value} GPUs)", change
