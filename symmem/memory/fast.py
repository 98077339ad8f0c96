"""Fast re-evaluation: the memory of one model under many options, in microseconds.

A layout search or a sweep over options asks the same model the same question
thousands of times with other numbers (tp, dp, bytes per weight...).  What
does not depend on those numbers is built once: for each *structure* (the
choices that decide which terms exist: mode, checkpointing, activation dtype,
ZeRO stage, pipeline on or off, quantization, LoRA...), the memory model runs
once with the numeric options as symbols (:func:`symmem.memory.config.symbolic_knobs`),
the model's values are substituted, and the components are compiled to one
Python function over exact ``Fraction`` arithmetic.  A re-evaluation is then
that function's call: the same expressions as :func:`symmem.memory.build`, the
same exact integers, without sympy in the loop.
"""

from __future__ import annotations

from collections.abc import Callable, Mapping
from dataclasses import fields
from fractions import Fraction
from typing import Any

import sympy

from symmem.constraints import compile_exact as compile_symbols
from symmem.errors import OptionError
from symmem.graph import LayerGraph, evaluator
from symmem.memory.compose import components
from symmem.memory.config import KNOB_ARGS, MemoryConfig, knob_values, resolve, symbolic_knobs
from symmem.memory.context import Build, mtp_values, pipeline_split
from symmem.memory.placement import StageSplit, at_values, places, stage_constraints
from symmem.memory.result import COMPONENTS
from symmem.options import MemoryOptions
from symmem.symbols import knob

#: the fields of MemoryConfig that only change numbers (the knobs); every other field is structure
_NUMERIC = frozenset(
    {
        "weight_dtype",
        "grad_dtype",
        "state_dtype",
        "kv_dtype",
        "master",
        "grad_fp32_copy",
        "overhead",
        "precision",
        "parallel",
        "offload",
        "gpus_per_node",
    }
)


#: knobs the structure key decides (the ZeRO stage is part of it; offload and GPUs per node
#: are not: they stay knobs, so that a layout search varies them without compiling)
_PINNED = ("zero_weights", "zero_grads", "zero_optimizer")


def compile_exact(
    exprs: Mapping[str, sympy.Expr], args: tuple[str, ...]
) -> Callable[..., tuple[Any, ...]]:
    """One function of the knobs ``args`` returning every expression, exactly
    (:func:`symmem.constraints.compile_exact`: ints and Fractions, never a float; terms not
    shared, so that whole-number knobs evaluate in ints)."""
    return compile_symbols(list(exprs.values()), [knob(a) for a in args], shared=False)


def _options(options: Any, kw: dict[str, Any]) -> MemoryOptions:
    if options is None:
        return MemoryOptions.from_user(kw)
    if not isinstance(options, MemoryOptions):
        raise OptionError(f"options: expected MemoryOptions, got {options!r}"[:200])
    return options.replace(**kw)


def _structure(cfg: MemoryConfig, options: MemoryOptions, split: Any = None) -> tuple[Any, ...]:
    """What decides which terms exist; an uneven pipeline split (its layers per stage) too."""
    p = cfg.parallel
    key = tuple(getattr(cfg, f.name) for f in fields(cfg) if f.name not in _NUMERIC)
    # fp8 weights keep their non-GEMM tensors in bf16 (Build.fp8_keeps_16bit): other terms
    return (
        *key,
        p.zero,
        p.sp,
        sympy.sympify(p.pp) != 1,
        options.policy,
        cfg.weight_dtype == "fp8",
        # the precision is a knob, but autocast decides LoRA's adapter copies (a term)
        cfg.autocast if cfg.lora_rank is not None else None,
        # an uneven split's stages, and whether DualPipe pairs them (Build.share)
        None if split is None else (split.sizes, p.schedule == "dualpipe"),
    )


def _int(x: int | Fraction) -> int | Fraction:
    if isinstance(x, Fraction) and x.denominator == 1:
        return x.numerator
    return x


class MemoryEvaluator:
    """The memory of one model at its values, re-evaluated under other options in microseconds.

    >>> ev = MemoryEvaluator(model.graph, model.values)            # doctest: +SKIP
    >>> ev.bytes(precision="mixed-bf16", tp=8, zero=1, dp=64)["total"]  # doctest: +SKIP

    Every symbol of the model must have a value.  The answers equal
    ``build(graph, values, options).bytes()`` exactly (tests/test_memory_fast.py).
    """

    def __init__(self, graph: LayerGraph, values: Mapping[sympy.Symbol, sympy.Expr]) -> None:
        self.graph = graph
        self.values = dict(values)
        self._compiled: dict[tuple[Any, ...], Callable[..., tuple[Any, ...]]] = {}
        self._notes: dict[tuple[Any, ...], tuple[str, ...]] = {}
        ev = evaluator(self.values)
        self._places, self._repeats = places(graph)
        #: (option, size, its value, path) a parallel degree must divide, at the model's values
        self._sizes: list[tuple[str, sympy.Expr, int, str]] = []
        for place in self._places:
            for opt, size in place.node.layer.parallel_sizes().items():
                value = ev(size)
                if isinstance(value, int):
                    self._sizes.append((opt, size, value, place.node.path))

    def bytes(self, options: MemoryOptions | None = None, **kw: Any) -> dict[str, int | Fraction]:
        """Each component and ``total`` in bytes per GPU under ``options`` (or keywords)."""
        opts = _options(options, kw)
        cfg, opt, quant = resolve(opts, self.graph.options)
        split = self._check(cfg)
        key = _structure(cfg, opts, split)
        fn = self._compiled.get(key)
        if fn is None:
            fn = self._compile(cfg, opts, key)
        out = [_int(v) for v in fn(*knob_values(cfg))]
        return {**dict(zip(COMPONENTS, out, strict=True)), "total": sum(out)}

    def compiled(self, options: MemoryOptions | None = None, **kw: Any) -> bool:
        """Whether the structure of these options is compiled already (an evaluation is then
        microseconds; else its first one compiles it, as long as a full build)."""
        opts = _options(options, kw)
        cfg, _, _ = resolve(opts, self.graph.options)
        return _structure(cfg, opts) in self._compiled

    def notes(self, options: MemoryOptions | None = None, **kw: Any) -> tuple[str, ...]:
        """The notes the memory model attaches under these options' structure."""
        opts = _options(options, kw)
        cfg, _, _ = resolve(opts, self.graph.options)
        key = _structure(cfg, opts, self._check(cfg))
        if key not in self._compiled:
            self._compile(cfg, opts, key)
        return self._notes[key]

    def _check(self, cfg: MemoryConfig) -> StageSplit | None:
        """What the full build refuses, checked on numbers (Build.check_divisible); the uneven
        pipeline split, if any."""
        p = cfg.parallel
        degrees = {"tp": sympy.sympify(p.tp), "ep": sympy.sympify(p.ep)}
        if cfg.cp_comm == "ulysses":  # Ulysses re-shards the sequence into heads (Build)
            degrees["tp"] = degrees["tp"] * sympy.sympify(p.cp)
        for opt, size, value, path in self._sizes:
            degree = degrees.get(opt)
            if degree is not None and degree.is_Integer and degree != 1 and value % int(degree):
                raise OptionError(
                    f"{opt} = {degree} does not divide {size} = {value} of layer {path}"
                )
        if sympy.sympify(p.pp) != 1 and not self._repeats:
            raise OptionError(
                "pipeline parallelism splits repeated layers over stages: the model has no repeat"
            )
        if sympy.sympify(p.pp) != 1:
            ev = evaluator(mtp_values(self.graph, self.values, cfg))
            split = pipeline_split(self._repeats, p, ev)
            if split is not None:
                return split
            for c in stage_constraints(self._repeats, sympy.sympify(p.pp)):
                message = c.violation(ev, ev.exact)  # type: ignore[attr-defined]
                if message is not None:
                    raise OptionError(message)
        return None

    def _compile(
        self, cfg: MemoryConfig, opts: MemoryOptions, key: tuple[Any, ...]
    ) -> Callable[..., tuple[Any, ...]]:
        _, opt, quant = resolve(opts, self.graph.options)
        b = Build(self.graph, self.values, cfg, opt, quant, opts.policy, symbolic_knobs())
        comps = components(b)
        # knobs that the structure key already fixes (the ZeRO stage's flags) are put in now:
        # a shorter polynomial to evaluate
        fixed = dict(zip(KNOB_ARGS, knob_values(cfg), strict=True))
        pinned = {knob(a): sympy.sympify(fixed[a]) for a in _PINNED}
        exprs = {}
        # pinned with the values, not before them: a Max rebuilt by xreplace would compare its
        # arguments under assumptions (tens of ms), for the same value
        at = {**b.values, **pinned}
        for name in COMPONENTS:
            expr = at_values(comps[name], at)
            free = {s for s in expr.free_symbols if not s.name.startswith("option_")}
            if free:
                names = ", ".join(sorted(s.name for s in free))
                raise OptionError(f"fast evaluation needs every symbol's value: {names} have none")
            # like terms collected: a short polynomial in the knobs
            exprs[name] = sympy.expand(expr)
        fn = compile_exact(exprs, KNOB_ARGS)
        self._compiled[key] = fn
        self._notes[key] = tuple(b.notes)
        return fn
