"""The memory model: bytes per GPU of a training step or of inference, as sympy expressions.

Layers give counts (parameter tensors with shapes, saved activations with a
dtype class, KV-cache elements); this package applies, once, the named
choices (:class:`symmem.options.MemoryOptions`) that turn counts into bytes:

* precision (:mod:`symmem.precision`): the dtype of weights, gradients,
  activations; fp32 master weights; an fp32 gradient copy; weight quantization;
* optimizer state (:mod:`symmem.optimizers`);
* activation checkpointing: none, full, selective (Korthikanti et al. 2022);
* parallelism per GPU (:mod:`symmem.parallel`): tp, sp, pp (1F1B), dp with
  ZeRO stages, ep;
* LoRA / QLoRA adapters.

Its rooms: :mod:`.config` (options resolved into dtypes), :mod:`.placement`
(layers on pipeline stages), :mod:`.states` (weights, gradients, optimizer
state; ZeRO as data), :mod:`.activations` (saved tensors, recompute, the
training transient), :mod:`.inference` (KV cache, the forward working set) and
:mod:`.result`.  Every formula, its source and its conventions are in
docs/memory.md.  ``total`` is the exact sum of the components.
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any, Protocol

import sympy

from symmem.constraints import Constraint
from symmem.errors import OptionError
from symmem.graph import LayerGraph
from symmem.memory.compose import components, host
from symmem.memory.config import DEFAULT_CUDA_OVERHEAD, Knobs, MemoryConfig, knobs_of, resolve
from symmem.memory.context import Build
from symmem.memory.fast import MemoryEvaluator
from symmem.memory.result import COMPONENTS, MemoryResult, MemoryRow
from symmem.memory.states import ZERO_SHARDS
from symmem.options import CHECKPOINTING, MODES, MemoryOptions, option_names
from symmem.quantity import Quantity

__all__ = [
    "CHECKPOINTING",
    "COMPONENTS",
    "DEFAULT_CUDA_OVERHEAD",
    "MODES",
    "Knobs",
    "MemoryEvaluator",
    "ZERO_SHARDS",
    "MemoryConfig",
    "MemoryOptions",
    "MemoryResult",
    "MemoryRow",
    "build",
    "components",
    "memory",
    "option_names",
]


class HasGraph(Protocol):
    """What the memory model needs of a model: its layer graph and its symbols' values."""

    @property
    def graph(self) -> LayerGraph: ...

    @property
    def values(self) -> Mapping[sympy.Symbol, sympy.Expr]: ...


def memory(model: HasGraph, mode: str = "train", **options: Any) -> MemoryResult:
    """Bytes per GPU of a training step (``mode="train"``) or of inference (``"infer"``).

    ``options`` are the fields of :class:`symmem.options.MemoryOptions` (an unknown
    name is an OptionError).  ``batch`` is the micro-batch per data-parallel rank
    and ``seq_len`` the sequence (training) or context (inference) length; both
    stay symbols unless the model gives them values.  ``lora_rank`` may be a sympy
    symbol (``symmem.symbols.sym("lora_rank")``): the result's quantities then know
    it by name, so it can be solved for.  See docs/memory.md.
    """
    if not (hasattr(model, "graph") and hasattr(model, "values")):
        raise OptionError(f"memory() takes a model (symmem.load), not {model!r}"[:200])
    return build(model.graph, model.values, MemoryOptions.from_user({"mode": mode, **options}))


def build(
    graph: LayerGraph, values: Mapping[sympy.Symbol, sympy.Expr], options: MemoryOptions
) -> MemoryResult:
    """The memory of ``graph`` at ``values`` under ``options``."""
    cfg, opt, quant = resolve(options, graph.options)
    b = Build(graph, values, cfg, opt, quant, options.policy, knobs_of(cfg))
    comps = components(b)
    symbols = _symbols(graph, cfg)
    rows = tuple(
        MemoryRow(
            p.node.path,
            p.node.layer.kind,
            p.mult,
            **{k: v.value() for k, v in b.rows[p.node.path].items()},
        )
        for p in b.places
        if p.node.path in b.rows
    )

    constraints = (*graph.constraints, *b.constraints, *_option_constraints(cfg))

    def q(expr: sympy.Expr) -> Quantity:
        # b.values: the model's values with the MTP modules the options count (Build)
        return Quantity(sympy.sympify(expr), b.values, symbols, constraints)

    return MemoryResult(
        mode=cfg.mode,
        weights=q(comps["weights"]),
        gradients=q(comps["gradients"]),
        optimizer=q(comps["optimizer"]),
        activations=q(comps["activations"]),
        transient=q(comps["transient"]),
        kv_cache=q(comps["kv_cache"]),
        overhead=q(comps["overhead"]),
        total=q(comps["total"]),
        config=cfg,
        rows=rows,
        notes=tuple(b.notes),
        host=q(host(b)),
    )


def _option_constraints(cfg: MemoryConfig) -> list[Constraint]:
    """An option made a symbol (``lora_rank``, a parallel degree) is a whole number >= 1."""
    par = cfg.parallel
    out = []
    for name, option in (
        ("lora_rank", cfg.lora_rank),
        ("tp", par.tp),
        ("pp", par.pp),
        ("dp", par.dp),
        ("ep", par.ep),
    ):
        if isinstance(option, sympy.Basic) and option.free_symbols:
            out.append(
                Constraint(
                    (("whole", option), ("positive", option)),
                    (option,),
                    lambda v, name=name: f"{name} must be a whole number >= 1, got {v}",
                )
            )
    return out


def _symbols(graph: LayerGraph, cfg: MemoryConfig) -> dict[str, sympy.Symbol]:
    """The model's symbols, and those an option brought in (a symbolic LoRA rank or parallel
    degree) by name, so that they can be solved for and evaluated."""
    par = cfg.parallel
    symbols = dict(graph.symbols)
    for option in (cfg.lora_rank, par.tp, par.pp, par.dp, par.ep):
        if isinstance(option, sympy.Basic):
            for s in option.free_symbols:
                if isinstance(s, sympy.Symbol) and s.name not in symbols:
                    symbols[s.name] = s
    return symbols
