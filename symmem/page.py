"""A self-contained calculator page: the memory model's own expressions, compiled to JavaScript.

``symmem html MODEL -o page.html`` writes one HTML file that needs no network, no
server and no script library: a form over the options that change memory, and on
every change each component in exact bytes and in GiB, a stacked bar against a
budget, the largest batch (or context) that fits, and each component's formula
(MathML, which browsers render natively).  docs/page.md describes it.

How the numbers stay the CLI's numbers
--------------------------------------
Nothing is re-derived in JavaScript.  The memory model is built here, in Python,
once per *structure* (the discrete choices that decide which terms exist), with the
numeric options as symbols (:func:`symmem.memory.config.symbolic_knobs`: tp, pp, dp,
ep, cp, bytes per weight / gradient / state / KV element, the master and gradient-copy
flags, the overhead, and the 0/1 knobs of ZeRO, offload, context parallelism and
DualPipe) and the model's free symbols (``batch``, ``seq_len``, any the user kept free)
and the LoRA rank as symbols too; every other symbol takes the model's value.  Each
component is then printed as JavaScript over exact rationals (:mod:`symmem.jscode`),
and the page only calls those functions.

Reductions keep the number of builds small; they are checked against full builds
(tests/test_page.py):

* the model states (weights, gradients, optimizer) never read the activation dtype,
  the checkpointing or the implementation (``impl``), and the activation side
  (activations, transient, KV cache) never reads the optimizer (the quantization only
  which matrices keep their inputs under LoRA, :attr:`symmem.quant.Quant.keeps_input`):
  each side is built once per its own structure and the two are put together per
  combination of choices; only the activation side is built per implementation;
* ZeRO, offload, context parallelism and the pipeline schedule enter the expressions
  only through knobs (:data:`SCALE_KNOBS`): the states are built at ZeRO 3, the
  activation side at ZeRO 0, and a small table of knob rows (from resolving the
  options, so the CLI's refusals are in it) gives each choice its values.

The serving mode (vLLM) is one more function: :func:`symmem.serving.vllm.
single_stage_terms` over the memory model's weights, KV bytes per token and forward
peak (:func:`_serving`).

Exactness: every value on the page is a reduced fraction of two BigInts, so a
component is exact at any size (also past 2**53, where doubles stop being exact, and
when a degree does not divide a tensor and the bytes are a fraction, shown as the
CLI's ``--json`` shows it: ``842539008/47``).  GiB figures are for reading only.
"""

from __future__ import annotations

import html
import itertools
import json
from collections.abc import Callable, Mapping, Sequence
from fractions import Fraction
from importlib import resources
from pathlib import Path
from typing import TYPE_CHECKING, Any, Protocol, cast

import sympy

from symmem.counts import param_counts
from symmem.errors import OptionError, SymmemError
from symmem.files import atomic_text
from symmem.gpus import CATALOGUE
from symmem.graph import LayerGraph, evaluator
from symmem.jscode import js_function
from symmem.memory import COMPONENTS, ZERO_SHARDS
from symmem.memory.compose import components
from symmem.memory.config import KNOB_ARGS, knob_values, resolve, symbolic_knobs
from symmem.memory.context import Build
from symmem.memory.fast import _structure
from symmem.memory.placement import places
from symmem.optimizers import OPTIMIZERS
from symmem.options import CHECKPOINTING, MODES, OFFLOADS, SCHEDULES, MemoryOptions
from symmem.policy import IMPLS
from symmem.precision import DTYPE_BYTES, KV_DTYPES, PRECISIONS, QUANTS
from symmem.quant import NO_QUANT
from symmem.quant import quant as get_quant
from symmem.quantity import Quantity
from symmem.records import record
from symmem.serving import facts_of, vllm
from symmem.serving.common import KV_DTYPES as SERVING_KV_DTYPES
from symmem.serving.common import kv_bytes, layout, vocab_size
from symmem.symbols import IMPLICIT_FREE, knob, sym
from symmem.values import substitute

if TYPE_CHECKING:  # the API floor (Model) is above the page
    from symmem.model import Model as FullModel

#: the LoRA rank, a symbol on the page (one structure serves every rank)
LORA_RANK = sym("lora_rank")
#: the components each side of a build gives
STATES = ("weights", "gradients", "optimizer")
ACTIVATIONS = ("activations", "transient", "kv_cache")
#: LoRA on the page: off, PEFT's default targets, or every matrix
LORA_CHOICES = ("off", "q_proj,v_proj", "all-linear")
#: options the page cannot offer (they are structure it does not enumerate)
_REFUSED = ("sp", "micro_batches", "policy")
#: how the page writes each knob in a formula, and what it means (the page's legend)
_DISPLAY: dict[str, tuple[str, str]] = {
    "tp": ("tp", "tensor-parallel ranks"),
    "pp": ("pp", "pipeline stages"),
    "dp": ("dp", "data-parallel ranks (1 where the ZeRO stage does not partition)"),
    "ep": ("ep", "expert-parallel ranks"),
    "weight_bytes": ("b_w", "bytes per weight"),
    "grad_bytes": ("b_g", "bytes per gradient"),
    "state_bytes": ("b_s", "bytes per optimizer-state element"),
    "kv_bytes": ("b_kv", "bytes per KV-cache element"),
    "master": ("m", "1 with fp32 master weights, else 0"),
    "grad_copy": ("c", "1 with an fp32 gradient copy, else 0"),
    "overhead": ("O", "overhead bytes"),
    "micro_batches": ("pp", "micro-batches in flight (the page: pp)"),
    "cp": ("cp", "context-parallel ranks"),
    "cp_on": ("c_p", "1 with cp > 1, else 0"),
    "zero_weights": ("z_w", "1 where the ZeRO stage partitions the weights over dp x cp, else 0"),
    "zero_grads": ("z_g", "1 where the ZeRO stage partitions the gradients, else 0"),
    "zero_optimizer": ("z_o", "1 where the ZeRO stage partitions the optimizer state, else 0"),
    "offload_params": ("o_w", "1 with the parameters offloaded to the host, else 0"),
    "offload_optimizer": ("o_o", "1 with the optimizer (and gradients) offloaded, else 0"),
    "offload_activations": ("o_a", "1 with the activations offloaded, else 0"),
    "stage_copies": ("s_c", "pipeline stages one rank holds (2 under DualPipe)"),
    "dual": ("d", "1 under DualPipe / DualPipeV, else 0"),
}
#: the knobs whose values a row of the page's "scale" table gives (0/1 flags and stage
#: copies, from resolving the options: :func:`symmem.memory.config.knob_values`)
SCALE_KNOBS = (
    "cp_on",
    "zero_weights",
    "zero_grads",
    "zero_optimizer",
    "offload_params",
    "offload_optimizer",
    "offload_activations",
    "stage_copies",
    "dual",
)


#: each ZeRO flag knob and the component it partitions (symmem.memory.states)
_ZERO_KNOBS = (("weights", "weights"), ("grads", "gradients"), ("optimizer", "optimizer"))
#: the knobs the page's form sets (the rest are pinned at each build's values)
PAGE_KNOBS: tuple[str, ...] = tuple(a for a in KNOB_ARGS if a in _DISPLAY)


class Model(Protocol):
    """What the page needs of a model (:class:`symmem.model.Model` has it): its layer graph,
    its symbols' values, the symbols the user kept free, its name and file."""

    @property
    def graph(self) -> LayerGraph: ...

    @property
    def values(self) -> Mapping[sympy.Symbol, sympy.Expr]: ...

    @property
    def free(self) -> tuple[str, ...]: ...

    @property
    def name(self) -> str: ...

    @property
    def filename(self) -> str | None: ...


@record
class Field:
    """One discrete choice of the page's form: its option name, label and choices, and the
    memory options a choice means."""

    name: str
    label: str
    choices: tuple[str, ...]
    apply: Callable[[str], dict[str, Any]]


def _lora(choice: str) -> dict[str, Any]:
    return {} if choice == "off" else {"lora_rank": LORA_RANK, "lora_targets": choice}


_PRECISION = Field("precision", "Precision", tuple(PRECISIONS), lambda c: {"precision": c})
_QUANT = Field(
    "quant",
    "Weight quantization",
    ("none", *QUANTS),
    lambda c: {"quant": None if c == "none" else c},
)
#: the implementation whose saved tensors are counted: it changes the activation side only
_IMPL = Field("impl", "Implementation (saved tensors)", tuple(IMPLS), lambda c: {"impl": c})
#: the discrete fields of each mode, in the order of the page's lookup table
FIELDS: dict[str, tuple[Field, ...]] = {
    "train": (
        _PRECISION,
        Field("optimizer", "Optimizer", tuple(OPTIMIZERS), lambda c: {"optimizer": c}),
        Field("checkpointing", "Checkpointing", CHECKPOINTING, lambda c: {"checkpointing": c}),
        Field("zero", "ZeRO stage", ("0", "1", "2", "3"), lambda c: {"zero": int(c)}),
        Field("lora", "LoRA", LORA_CHOICES, _lora),
        _QUANT,
        _IMPL,
    ),
    "infer": (
        _PRECISION,
        Field(
            "kv_dtype",
            "KV-cache dtype",
            ("default", *KV_DTYPES),
            lambda c: {"kv_dtype": None if c == "default" else c},
        ),
        _QUANT,
        _IMPL,
    ),
}
#: a degree that is 1 or more than 1 (a structural or flag choice; the number is a knob)
_PP = Field("pp", "Pipeline", ("1", "2+"), lambda c: {"pp": 1 if c == "1" else 2})
_CP = Field("cp", "Context parallel", ("1", "2+"), lambda c: {"cp": 1 if c == "1" else 2})
_SCHEDULE = Field("schedule", "Pipeline schedule", SCHEDULES, lambda c: {"schedule": c})
#: what --offload moves to the host: none, or any combination of OFFLOADS
OFFLOAD_CHOICES = ("none",) + tuple(
    ",".join(c) for n in range(1, len(OFFLOADS) + 1) for c in itertools.combinations(OFFLOADS, n)
)
_OFFLOAD = Field(
    "offload", "Offload to host", OFFLOAD_CHOICES, lambda c: {"offload": () if c == "none" else c}
)
#: the choices that only set 0/1 knobs (:data:`SCALE_KNOBS`), never the structure: one table
#: of knob rows per mode over them (with the ZeRO stage and pp, which they are checked with)
SCALE_FIELDS: dict[str, tuple[Field, ...]] = {
    "train": (_CP, _SCHEDULE, _OFFLOAD, FIELDS["train"][3], _PP),
    "infer": (_CP, _SCHEDULE, _PP),
}


def _mathml(expr: sympy.Expr) -> str:
    """Presentation MathML (browsers render it natively); a visible dot between factors, so
    that ``batch`` and ``seq_len`` do not run together."""
    return str(sympy.mathml(expr, printer="presentation", mul_symbol="dot"))


def _exact(x: Any) -> str:
    """An exact number as text (the page reads it as a BigInt fraction)."""
    x = sympy.sympify(x)
    return str(int(x)) if x.is_Integer else f"{int(x.p)}/{int(x.q)}"


class _Compiler:
    """Builds each side of each structure once and prints each distinct component once."""

    def __init__(self, model: Model, free: Sequence[str]) -> None:
        self.model = model
        free_syms = {model.graph.symbols[n] for n in free}
        self.values = {s: v for s, v in model.values.items() if s not in free_syms}
        self.args = [knob(a) for a in PAGE_KNOBS] + [model.graph.symbols[n] for n in free]
        self.args.append(LORA_RANK)
        self._dp = knob("dp")
        #: every value as a number or an expression in the inputs (values may refer to
        #: symbols that have values)
        self._plain = {s: self._resolved(v) for s, v in self.values.items()}
        self.functions: list[str] = []
        #: the expression behind each function (tests evaluate them in Python)
        self.expressions: list[sympy.Expr] = []
        self.formulas: list[str] = []
        self._fn: dict[sympy.Expr, int] = {}
        self._formula: dict[sympy.Expr, int] = {}
        self.parts: list[dict[str, Any]] = []
        self._parts: dict[tuple[Any, ...], int | str] = {}
        #: the symbols as the formulas show them (b_w: bytes per weight...)
        self._shown: dict[sympy.Basic, sympy.Basic] = {
            knob(a): sympy.Symbol(_DISPLAY[a][0], positive=True) for a in PAGE_KNOBS
        }
        self._shown[LORA_RANK] = sympy.Symbol("r", positive=True)
        #: the ZeRO flags of each stage 0-3 (a formula is shown with its stage's flags)
        self._zero_flags = [
            {knob(f"zero_{c}"): int(n in ZERO_SHARDS[z]) for c, n in _ZERO_KNOBS} for z in range(4)
        ]

    def part(self, side: str, opts: MemoryOptions) -> int | str:
        """The index of one side's compiled components, or the error its build raises."""
        try:
            cfg, opt, quant = resolve(opts, self.model.graph.options)
        except OptionError as exc:
            return str(exc)
        key = (side, _structure(cfg, opts))
        if key in self._parts:
            return self._parts[key]
        try:
            b = Build(self.model.graph, self.values, cfg, opt, quant, opts.policy, symbolic_knobs())
            comps = components(b, states=side == "states", saved=side != "states")
        except OptionError as exc:
            self._parts[key] = str(exc)
            return self._parts[key]
        names = STATES if side == "states" else ACTIVATIONS
        entry: dict[str, Any] = {"notes": list(dict.fromkeys(b.notes))}
        fns, shown = [], []
        # the knobs the page does not vary (virtual stages, GPUs per node...) at this build's
        # values: only the page's own knobs stay arguments
        pinned = {
            knob(a): sympy.sympify(v)
            for a, v in zip(KNOB_ARGS, knob_values(cfg), strict=True)
            if a not in PAGE_KNOBS
        }
        # expert parallelism's own degrees follow the page's when left unset (Knobs: etp = tp,
        # edp = dp x cp), so they stay expressions of the page's knobs
        par = cfg.parallel
        if par.etp is None:
            pinned[knob("etp")] = knob("tp")
        # ZeRO shards over dp x cp (or the HSDP shard group, not a field of the page)
        group = knob("dp") * knob("cp") if par.shard_group is None else par.shard_group
        pinned[knob("zero_group")] = group
        if par.edp is None:
            pinned[knob("edp")] = group
        for name in names:
            expr = self._substitute(comps[name], pinned)
            fns.append(self._function(expr))
            # one formula per ZeRO stage: its 0/1 flags put in (the page's legend has the rest)
            shown.append([self._mathml(expr.xreplace(flags)) for flags in self._zero_flags])
        entry["fn"], entry["formula"] = fns, shown
        self.parts.append(entry)
        self._parts[key] = len(self.parts) - 1
        return self._parts[key]

    def _resolved(self, v: Any) -> sympy.Expr:
        v = sympy.sympify(v)
        for _ in range(8):
            new = substitute(v, self.values)
            if new == v:
                break
            v = new
        return v

    def _substitute(
        self, expr: sympy.Expr, pinned: Mapping[sympy.Symbol, sympy.Expr] | None = None
    ) -> sympy.Expr:
        """The model's values (and the ``pinned`` knobs' values) put in, expanded: a short
        polynomial in the inputs.

        A ``Max`` / ``Min`` is rebuilt unevaluated around its expanded arguments (sympy's
        ``Max`` compares every pair of arguments under assumptions when it is built,
        seconds per build; its value is the same with or without the pruning)."""
        holders: dict[sympy.Symbol, sympy.Expr] = {}

        memo: dict[sympy.Expr, sympy.Expr] = {}
        plain = {**self._plain, **(pinned or {})}

        def walk(e: sympy.Expr) -> sympy.Expr:
            if e in memo:
                return memo[e]
            if pinned and e in pinned:
                out = pinned[e]
            elif e in self.values:
                out = walk(sympy.sympify(self.values[e]))
            elif not e.args:
                out = e
            elif not e.has(sympy.Max, sympy.Min):
                out = e.xreplace(plain)
            else:
                args = [walk(a) for a in e.args]
                if isinstance(e, sympy.Max | sympy.Min):
                    holder = sympy.Symbol(f"_h{len(holders)}")
                    inner = [sympy.expand(a).xreplace(holders) for a in args]
                    holders[holder] = type(e)(*inner, evaluate=False)
                    out = holder
                else:
                    out = e.func(*args)
            memo[e] = out
            return out

        out = sympy.expand(walk(expr))
        out = out.xreplace(holders)
        left = out.free_symbols - set(self.args)
        if left:
            names = ", ".join(sorted(s.name for s in left))
            raise SymmemError(f"the page needs a value or a form input for {names}")
        return out

    def function(self, expr: sympy.Expr) -> int:
        """The index of the compiled function of ``expr`` (the model's values put in)."""
        return self._function(self._substitute(expr))

    def _function(self, expr: sympy.Expr) -> int:
        if expr not in self._fn:
            self.functions.append(js_function([expr], self.args))
            self.expressions.append(expr)
            self._fn[expr] = len(self.functions) - 1
        return self._fn[expr]

    def _mathml(self, expr: sympy.Expr) -> int:
        if expr not in self._formula:
            shown = expr.xreplace(self._shown)
            self.formulas.append(_mathml(shown))
            self._formula[expr] = len(self.formulas) - 1
        return self._formula[expr]


def _free_names(model: Model) -> list[str]:
    """The symbols the page's form asks for: batch and seq_len when the model has them, and
    every symbol the user kept free."""
    names = [n for n in IMPLICIT_FREE if n in model.graph.symbols]
    names += [n for n in model.free if n not in names]
    return names


def _default(model: Model, name: str) -> int:
    s = model.graph.symbols[name]
    for source in (model.values, model.graph.defaults):
        v = sympy.sympify(source.get(s, 0))
        if v.is_Integer and v >= 1:
            return int(v)
    ev = evaluator(model.values)(model.graph.defaults.get(s, sympy.Integer(1)))
    return ev if isinstance(ev, int) and ev >= 1 else 1


def _fixed(options: MemoryOptions) -> dict[str, Any]:
    """The user's options the form does not offer: they hold for every choice on the page."""
    form = {"mode", "tp", "pp", "dp", "ep", "overhead", "lora_rank", "lora_targets"}
    every = FIELDS["train"] + FIELDS["infer"] + SCALE_FIELDS["train"] + SCALE_FIELDS["infer"]
    form |= {o for f in every for o in f.apply(f.choices[-1])}
    changed = options.changed()
    for name in _REFUSED:
        if name in changed:
            raise OptionError(f"the page does not offer '{name}': leave it at its default")
    return {k: v for k, v in changed.items() if k not in form}


def _initial(options: MemoryOptions, model: Model, free: Sequence[str]) -> dict[str, Any]:
    """The form's first state: the user's options (defaults otherwise)."""
    cfg, _, _ = resolve(options, model.graph.options)
    state: dict[str, Any] = {"mode": options.mode}
    for f in FIELDS["train"] + FIELDS["infer"]:
        for choice in f.choices:
            applied = f.apply(choice)
            if f.name == "lora":
                if (options.lora_rank is None) == (choice == "off") and (
                    choice == "off" or ",".join(options.lora_targets) == choice
                ):
                    state[f.name] = choice
            elif all(getattr(options, k) == v for k, v in applied.items()):
                state[f.name] = choice
        state.setdefault(f.name, f.choices[0])
    # the implementation the model declares when the option is unset
    state["impl"] = cfg.impl
    state["schedule"] = cfg.parallel.schedule
    state["offload"] = ",".join(cfg.offload) or "none"
    rank = options.lora_rank
    state["lora_rank"] = rank if isinstance(rank, int) else 8
    for name in ("tp", "pp", "dp", "ep", "cp"):
        value = getattr(options, name)
        if not isinstance(value, int):
            raise OptionError(f"the page needs a whole-number {name}, not {value}")
        state[name] = value
    state["overhead"] = cfg.overhead
    for name in free:
        state[name] = _default(model, name)
    return state


@record
class Page:
    """A compiled page: the JSON-ready data, the JavaScript functions, and the expression
    behind each function over ``args`` (the inputs, in the order of ``data["args"]``);
    ``serving``: vLLM's terms over :data:`SERVING_ARGS` (None where the page has no serving
    mode, ``data["serving"]["why"]`` says why)."""

    data: dict[str, Any]
    functions: list[str]
    expressions: list[sympy.Expr]
    args: list[sympy.Symbol]
    serving: dict[str, sympy.Expr] | None = None


#: the inputs of the serving mode's function (vLLM, docs/page.md), in its argument order
SERVING_ARGS = (
    "tp",
    "kv_bytes",
    "budget",
    "gpu_memory_utilization",
    "max_num_batched_tokens",
    "max_num_seqs",
    "max_model_len",
    "block_size",
    "non_torch",
    "cuda_graph",
    "nvlink",
    "a100",
)


def _serving(compiler: _Compiler, model: Model) -> tuple[dict[str, Any], dict[str, sympy.Expr]]:
    """vLLM's budget (:func:`symmem.serving.vllm.single_stage_terms`) over the serving form's
    inputs, its weights, KV bytes per token and forward peak taken from the memory model built
    as :mod:`symmem.serving.common` builds it (``layout``, ``forward_peak``): an inference
    build in the checkpoint's dtype with fused attention, tp and the KV bytes as knobs, at one
    token (weights, KV cache) and at ``max_num_batched_tokens`` tokens of one sequence (the
    forward's transient).  Refused (``{"why": ...}``) where the page cannot say what the CLI
    says: no ``[batch, seq_len]`` input, a quantized checkpoint, several KV-cache groups or a
    sliding window (hybrid models), or no attention."""
    # serving's layout re-binds the model's values (Model.with_values): the full Model
    full = cast("FullModel", model)
    syms = model.graph.symbols
    if "batch" not in syms or "seq_len" not in syms:
        return {"why": "serving needs the model's input as [batch, seq_len]"}, {}
    facts = facts_of(full)
    if facts.quant is not None:
        return {"why": f"a quantized checkpoint ({facts.quant}): use symmem serving"}, {}
    dtype = facts.dtype
    try:
        lay = layout(full, tp=1, weight_dtype=dtype, kv_dtype=dtype, quant=None, group=None)
        opts = MemoryOptions(
            mode="infer",
            precision=dtype if dtype in ("bf16", "fp16", "fp32") else "bf16",
            weight_dtype=dtype,
            overhead=0,
            attention="flash",
            prefill_chunk=None,
        )
        cfg, opt, quant = resolve(opts, model.graph.options)
        b = Build(model.graph, compiler.values, cfg, opt, quant, None, symbolic_knobs())
        comps = components(b)
    except OptionError as exc:
        return {"why": str(exc)}, {}
    attn = [a for d in lay.layers for a in d.attention]
    if not attn or any(a.window is not None for a in attn):
        return {"why": "no attention, or sliding-window layers (several KV-cache groups)"}, {}
    free = ("tp", "kv_bytes")
    pinned = {
        knob(a): sympy.sympify(v)
        for a, v in zip(KNOB_ARGS, knob_values(cfg), strict=True)
        if a not in free
    }
    pinned[knob("etp")] = knob("tp")
    # the flags and the bytes a user may set to 0 are not positive
    x = {
        n: sympy.Symbol(n, integer=True, nonnegative=True)
        if n in ("nvlink", "a100", "non_torch", "cuda_graph")
        else sympy.Symbol(n, positive=True)
        for n in SERVING_ARGS
        if n not in free
    }
    batch, seq = syms["batch"], syms["seq_len"]

    def at(name: str, tokens: sympy.Expr) -> sympy.Expr:
        e = compiler._substitute(comps[name], pinned).xreplace({batch: 1, seq: tokens})
        return sympy.ceiling(sympy.expand(e))

    terms = vllm.single_stage_terms(
        total=x["budget"],
        utilization=x["gpu_memory_utilization"],
        weights=at("weights", sympy.Integer(1)),
        kv_bytes_per_token=at("kv_cache", sympy.Integer(1)),
        forward=at("transient", x["max_num_batched_tokens"]),
        max_num_seqs=x["max_num_seqs"],
        max_num_batched_tokens=x["max_num_batched_tokens"],
        vocab=vocab_size(full),
        dtype=dtype,
        non_torch=x["non_torch"],
        cuda_graphs=x["cuda_graph"],
        block=x["block_size"],
        max_model_len=x["max_model_len"],
    )
    tokens, seqs = vllm.batch_defaults(x["budget"], x["a100"])
    defaults = {
        "max_num_batched_tokens": tokens,
        "max_num_seqs": seqs,
        "non_torch": vllm.non_torch_bytes(knob("tp"), x["nvlink"]),
    }
    args = [knob("tp"), knob("kv_bytes"), *(x[n] for n in SERVING_ARGS if n not in free)]
    exprs = {**terms, **{f"default_{k}": v for k, v in defaults.items()}}
    compiler.functions.append(js_function(list(exprs.values()), args))
    data = {
        "fn": len(compiler.functions) - 1,
        "args": list(SERVING_ARGS),
        "outputs": list(exprs),
        "engine": vllm.VERSION,
        "dtype": dtype,
        "kv_dtypes": {c: _exact(DTYPE_BYTES[kv_bytes(c, dtype)]) for c in SERVING_KV_DTYPES},
        "max_model_len": facts.max_len or _default(model, "seq_len"),
        "block_size": vllm.BLOCK_SIZE,
        "gpu_memory_utilization": str(vllm.GPU_MEMORY_UTILIZATION),
        "cuda_graph": vllm.CUDA_GRAPH_BYTES,
        "gpus": {
            g.key: {
                "budget": str(g.cuda_total_bytes),
                "nvlink": int(g.nvlink),
                "a100": int("a100" in g.name.lower()),
            }
            for g in CATALOGUE
        },
        "formulas": {
            k: _mathml(v.xreplace(compiler._shown)) for k, v in terms.items() if k != "starts"
        },
    }
    return data, exprs


def compile_page(
    model: Model, options: MemoryOptions | None = None, *, source: str | None = None
) -> Page:
    """Everything the page shows, as JSON-ready data, and the compiled component functions.

    ``options`` set the form's first state; options the form does not offer (the attention
    implementation, the device, dtype overrides...) hold for every choice on the page.
    """
    options = options or MemoryOptions()
    fixed = _fixed(options)
    free = _free_names(model)
    initial = _initial(options, model, free)
    compiler = _Compiler(model, free)
    modes: dict[str, Any] = {}
    rows: dict[str, dict[tuple[str, ...], int]] = {"bytes": {}, "scale": {}}
    errors: dict[str, int] = {}
    for mode in MODES:
        modes[mode] = {
            "fields": [
                {"name": f.name, "label": f.label, "choices": f.choices} for f in FIELDS[mode]
            ],
            **{
                name: _table(compiler, mode, name, fixed, rows.get(name, {}), errors)
                for name in ("bytes", "states", "activations", "scale")
            },
        }
    params = param_counts(
        model.graph, lambda e: Quantity(sympy.sympify(e), model.values, model.graph.symbols)
    )
    _, repeats = places(model.graph)
    sizes = _parallel_sizes(model)
    data = {
        "model": {
            "name": model.name,
            "source": source or model.filename or "",
            # parameter counts as functions of the inputs too (a free symbol may change them)
            "params": compiler.function(params.total.expr),
            "active": compiler.function(params.active.expr) if params.has_experts else None,
            "params_formula": sympy.mathml(sympy.expand(params.total.expr), printer="presentation"),
        },
        "components": COMPONENTS,
        "states": STATES,
        "activations": ACTIVATIONS,
        "args": [*PAGE_KNOBS, *free, "lora_rank"],
        "knobs": list(PAGE_KNOBS),
        "free": free,
        # free symbols no expression reads (seq_len of a CNN): not shown in the form
        "unused": [
            n
            for n in free
            if not any(model.graph.symbols[n] in e.free_symbols for e in compiler.expressions)
        ],
        "initial": initial,
        "fixed": {k: str(v) for k, v in fixed.items()},
        "modes": modes,
        "bytes": [list(k) for k in rows["bytes"]],
        "scale_knobs": list(SCALE_KNOBS),
        "scale": [list(k) for k in rows["scale"]],
        "scale_fields": {
            mode: [{"name": f.name, "label": f.label, "choices": f.choices} for f in fields]
            for mode, fields in SCALE_FIELDS.items()
        },
        "errors": list(errors),
        "parts": compiler.parts,
        "formulas": compiler.formulas,
        "sizes": sizes,
        "repeats": bool(repeats),
        "gpus": [{"key": g.key, "name": g.name, "bytes": str(g.capacity_bytes)} for g in CATALOGUE],
        "legend": {v[0]: v[1] for k, v in _DISPLAY.items() if k != "micro_batches"},
    }
    serving, exprs = _serving(compiler, model)
    data["serving"] = serving
    return Page(data, compiler.functions, compiler.expressions, compiler.args, exprs or None)


#: the fields each table of the page does not read: the states are built with checkpointing
#: "none" and ZeRO 3, the activation side with the default optimizer and ZeRO 0, so those
#: choices cannot change them; resolving the options (the bytes per
#: element, and the CLI's refusals) reads neither the checkpointing nor the ZeRO stage nor the
#: number of pipeline stages (tests/test_page.py holds every table equal to full builds)
_IGNORES = {
    "bytes": {"checkpointing", "zero", "pp", "impl"},
    "states": {"checkpointing", "zero", "impl"},
    # ZeRO-3's gathered units (transient working buffers) enter as the 0/1 knob zero_weights
    # the quantization is read: under LoRA a frozen LLM.int8 base keeps its matmuls' inputs
    "activations": {"optimizer", "zero"},
}


def _table(
    compiler: _Compiler,
    mode: str,
    table: str,
    fixed: Mapping[str, Any],
    bytes_rows: dict[tuple[str, ...], int],
    errors: dict[str, int],
) -> dict[str, Any]:
    """One lookup table over the product of the fields it reads (row-major, the last field
    fastest): an index (a compiled part, or a row of bytes per element), or ``-1 - i`` for
    the i-th error message (where the CLI refuses the choices)."""
    if table == "scale":
        fields = list(SCALE_FIELDS[mode])
    else:
        fields = [f for f in (*FIELDS[mode], _PP) if f.name not in _IGNORES[table]]
    values: list[Any] = []
    for choices in itertools.product(*(f.choices for f in fields)):
        kw: dict[str, Any] = {**fixed, "mode": mode}
        for f, c in zip(fields, choices, strict=True):
            kw.update(f.apply(c))
        cell = _cell(compiler, table, kw, bytes_rows)
        if isinstance(cell, str):
            cell = -1 - errors.setdefault(cell, len(errors))
        values.append(cell)
    return {"fields": [f.name for f in fields], "values": values}


def _cell(
    compiler: _Compiler, table: str, kw: dict[str, Any], bytes_rows: dict[tuple[str, ...], int]
) -> int | str:
    try:
        opts = MemoryOptions.from_user(kw)
        if table == "bytes":
            cfg, _, _ = resolve(opts, compiler.model.graph.options)
            row = tuple(_exact(v) for v in knob_values(cfg)[4:10])
            return bytes_rows.setdefault(row, len(bytes_rows))
        if table == "scale":
            cfg, _, _ = resolve(opts, compiler.model.graph.options)
            at = dict(zip(KNOB_ARGS, knob_values(cfg), strict=True))
            row = tuple(_exact(at[a]) for a in SCALE_KNOBS)
            return bytes_rows.setdefault(row, len(bytes_rows))
        if table == "states":
            opts = opts.replace(checkpointing="none", act_dtype="fp32", zero=3, impl="torch")
        else:
            # the quantization reaches the activation side only under LoRA, and only as
            # whether the frozen matmuls keep their inputs: one build per answer
            quant = opts.quant
            if opts.lora_rank is None:
                quant = None
            elif quant not in (None, NO_QUANT) and not get_quant(quant).keeps_input:
                quant = NO_QUANT
            opts = opts.replace(
                optimizer="adamw", quant=quant, group_size=None, double_quant=False, zero=0
            )
    except OptionError as exc:
        return str(exc)
    return compiler.part(table, opts)


def _parallel_sizes(model: Model) -> list[list[Any]]:
    """(option, size, its value, layer) for each size a degree must divide (the CLI's check)."""
    ev = evaluator(model.values)
    out = []
    for place in places(model.graph)[0]:
        for opt, size in place.node.layer.parallel_sizes().items():
            value = ev(size)
            if isinstance(value, int):
                out.append([opt, str(size), value, place.node.path])
    return out


def _asset(name: str) -> str:
    return resources.files("symmem").joinpath("_page", name).read_text(encoding="utf-8")


def page_html(
    model: Model, options: MemoryOptions | None = None, *, source: str | None = None
) -> str:
    """The page as one HTML document (nothing to fetch: the data, the code and the style are
    inside)."""
    return render_page(compile_page(model, options, source=source), model.name)


def render_page(page: Page, name: str) -> str:
    """A compiled page as one HTML document, titled with the model's ``name``."""
    payload = json.dumps(page.data, separators=(",", ":")).replace("</", "<\\/")
    script = f"const DATA={payload};\nconst FUNCTIONS=[{','.join(page.functions)}];\n" + _asset(
        "page.js"
    )
    return (
        _asset("page.html")
        .replace("{{title}}", html.escape(f"{name}: memory (symmem)"))
        .replace("{{style}}", _asset("page.css"))
        .replace("{{script}}", script)
    )


def write_page(
    model: Model,
    path: str | Path,
    options: MemoryOptions | None = None,
    *,
    source: str | None = None,
) -> int:
    """Write the page to ``path`` (atomically); returns its size in bytes."""
    text = page_html(model, options, source=source)
    with atomic_text(str(path)) as fh:
        fh.write(text)
    return len(text.encode("utf-8"))


def exact_fraction(text: str) -> int | Fraction:
    """A number as the page and ``symmem memory --json`` write it (``"842539008/47"``)."""
    value = Fraction(text)
    return value.numerator if value.denominator == 1 else value


def free_inputs(model: Model) -> list[str]:
    """The symbols the page asks for (public for tests and the notebook)."""
    return _free_names(model)
