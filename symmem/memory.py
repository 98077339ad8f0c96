"""The memory model: bytes per GPU of a training step or of inference, as sympy expressions.

Layers give counts (parameter tensors with shapes, saved activations with a
dtype class, KV-cache elements); this module applies, once, the named
choices that turn counts into bytes:

* precision (:mod:`symmem.precision`): the dtype of weights, gradients,
  activations; fp32 master weights; an fp32 gradient copy; weight quantization;
* optimizer state (:mod:`symmem.optimizers`);
* activation checkpointing: none, full, selective (Korthikanti et al. 2022);
* parallelism per GPU (:mod:`symmem.parallel`): tp, sp, pp (1F1B), dp with
  ZeRO stages, ep;
* LoRA / QLoRA adapters.

Every formula, its source and its conventions are in docs/memory.md.  The
result keeps one expression per component (weights, gradients, optimizer,
activations, transient, kv_cache, overhead) and ``total`` is their sum.
"""

from __future__ import annotations

from collections.abc import Iterable, Sequence
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any

import sympy

from symmem.errors import OptionError
from symmem.layers.base import ParamTensor, Saved, prod
from symmem.optimizers import Optimizer
from symmem.optimizers import optimizer as get_optimizer
from symmem.parallel import Degree, Parallel, is_routed_expert, tp_splits
from symmem.precision import (
    DTYPE_BYTES,
    FLOAT_DTYPES,
    KV_DTYPES,
    STATE_DTYPES,
    Quant,
    check_dtype,
)
from symmem.precision import precision as get_precision
from symmem.precision import quant as get_quant

if TYPE_CHECKING:
    from symmem.graph import GroupNode, LayerGraph, LayerNode
    from symmem.model import Model, Quantity

#: the components of a breakdown, in display order (``total`` is their sum)
COMPONENTS = ("weights", "gradients", "optimizer", "activations", "transient", "kv_cache", "overhead")
MODES = ("train", "infer")
CHECKPOINTING = ("none", "full", "selective")

#: Framework overhead on a CUDA device: the CUDA context (about 700-800 MiB with
#: PyTorch, depending on the CUDA version and GPU: PyTorch forums,
#: discuss.pytorch.org/t/81330 and /t/73021) plus caching-allocator slack,
#: rounded to 1 GiB.  0 on the CPU.  Override with ``overhead=``.
DEFAULT_CUDA_OVERHEAD = 2**30

#: LoRA targets of PEFT's LoraConfig for Llama-style models (target_modules=["q_proj", "v_proj"])
DEFAULT_LORA_TARGETS = ("q_proj", "v_proj")

_FP32 = sympy.Integer(4)


# ---------------------------------------------------------------- configuration


@dataclass(frozen=True)
class MemoryConfig:
    """Every choice a breakdown was computed with (resolved: no None left but the optional features)."""

    mode: str
    precision: str
    weight_dtype: str
    grad_dtype: str
    master: bool
    grad_fp32_copy: bool
    state_dtype: str
    act_dtype: str
    optimizer: str
    checkpointing: str
    parallel: Parallel
    attention: str
    device: str
    dropout: bool
    kv_dtype: str
    quant: str | None
    group_size: int | None
    double_quant: bool
    #: an int, or a sympy symbol to solve / differentiate / sweep over the rank
    lora_rank: int | sympy.Expr | None
    lora_targets: tuple[str, ...]
    overhead: int
    #: dtype of LoRA adapters, their gradients, and their optimizer state
    lora_dtype: str = "fp32"
    lora_state_dtype: str = "fp32"

    def describe(self) -> dict[str, Any]:
        p = self.parallel
        out: dict[str, Any] = {
            "mode": self.mode, "precision": self.precision, "weight_dtype": self.weight_dtype,
            "act_dtype": self.act_dtype, "device": self.device, "attention": self.attention,
            "dropout": self.dropout, "overhead": self.overhead,
        }
        if self.mode == "train":
            out.update(grad_dtype=self.grad_dtype, master_weights=self.master, grad_fp32_copy=self.grad_fp32_copy,
                       optimizer=self.optimizer, state_dtype=self.state_dtype, checkpointing=self.checkpointing)
        else:
            out["kv_dtype"] = self.kv_dtype
        out.update(tp=str(p.tp), pp=str(p.pp), dp=str(p.dp), zero=p.zero, sp=p.sp, ep=str(p.ep))
        if self.quant:
            out.update(quant=self.quant, group_size=self.group_size, double_quant=self.double_quant)
        if self.lora_rank is not None:
            rank = self.lora_rank if isinstance(self.lora_rank, int) else str(self.lora_rank)
            out.update(lora_rank=rank, lora_targets=list(self.lora_targets), lora_dtype=self.lora_dtype)
        return out

    def summary(self) -> str:
        """One line for people: the choices that decide the bytes."""
        p = self.parallel
        parts = [f"precision {self.precision} (weights {self.weight_dtype}, activations {self.act_dtype})"]
        if self.mode == "train":
            parts.append(f"optimizer {self.optimizer}, checkpointing {self.checkpointing}")
        else:
            parts.append(f"kv cache {self.kv_dtype}")
        if self.quant:
            parts.append(f"weights quantized {self.quant}")
        if self.lora_rank is not None:
            parts.append(f"LoRA r={self.lora_rank} on {','.join(self.lora_targets)}")
        parts.append(f"tp={p.tp} pp={p.pp} dp={p.dp} zero={p.zero}" + (" sp" if p.sp else "") + (f" ep={p.ep}" if p.ep != 1 else ""))
        parts.append(f"{self.device}, {self.attention} attention")
        head = "training step" if self.mode == "train" else "inference"
        return f"{head} per GPU: " + "; ".join(parts)


# ---------------------------------------------------------------- result


@dataclass(frozen=True)
class MemoryRow:
    """Bytes per GPU of one layer (all its ``repeat`` instances).

    Sharding by tp / ep / ZeRO is applied; pipeline stages and full
    recompute are not (they are whole-model effects), so with ``pp > 1`` or
    full checkpointing the rows do not add up to the components.
    """

    path: str
    kind: str
    multiplicity: sympy.Expr
    weights: sympy.Expr
    gradients: sympy.Expr
    optimizer: sympy.Expr
    activations: sympy.Expr
    kv_cache: sympy.Expr


@dataclass(frozen=True)
class MemoryResult:
    """One expression per component, in bytes per GPU; ``total`` is exactly their sum."""

    mode: str
    weights: Quantity
    gradients: Quantity
    optimizer: Quantity
    activations: Quantity
    transient: Quantity
    kv_cache: Quantity
    overhead: Quantity
    total: Quantity
    config: MemoryConfig
    rows: tuple[MemoryRow, ...] = ()
    notes: tuple[str, ...] = field(default_factory=tuple)

    def components(self, *, with_total: bool = True) -> dict[str, Quantity]:
        names = (*COMPONENTS, "total") if with_total else COMPONENTS
        return {name: getattr(self, name) for name in names}

    def bytes(self, **values: Any) -> dict[str, int | sympy.Expr]:
        """Each component evaluated (exact ints when every symbol has a value)."""
        return {name: q.evaluate(**values) for name, q in self.components().items()}

    def formulas(self) -> dict[str, str]:
        return {name: str(q.expr) for name, q in self.components().items()}

    def to_json(self) -> dict[str, Any]:
        """``{"mode", "bytes": {...}, "formulas": {...}, "config": {...}}`` (docs/memory.md)."""
        def num(v: Any) -> Any:
            return v if isinstance(v, int) else str(v)

        return {
            "mode": self.mode,
            "bytes": {k: num(v) for k, v in self.bytes().items()},
            "formulas": self.formulas(),
            "config": self.config.describe(),
            "notes": list(self.notes),
        }


# ---------------------------------------------------------------- walking the graph


@dataclass(frozen=True)
class _Place:
    """A layer node with where it sits: its multiplicity, its innermost repeat, its pipeline part."""

    node: LayerNode
    mult: sympy.Expr
    repeat: str | None
    #: "pre" (before the first repeat: first pipeline stage), "repeat" (split over stages), "post"
    stage: str


@dataclass(frozen=True)
class _Repeat:
    group: GroupNode
    #: iterations in the whole model (enclosing repeat counts times this one's)
    iterations: sympy.Expr
    outer: sympy.Expr
    last_layer: str | None
    #: the first layer of the body (depth first): the one that reads the iteration's input
    first_layer: str | None = None


def _first_layer(g: GroupNode) -> str | None:
    from symmem.graph import LayerNode

    for child in g.body:
        if isinstance(child, LayerNode):
            return child.path
        found = _first_layer(child)
        if found is not None:
            return found
    return None


def _places(graph: LayerGraph) -> tuple[list[_Place], dict[str, _Repeat]]:
    from symmem.graph import LayerNode

    places: list[_Place] = []
    repeats: dict[str, _Repeat] = {}
    seen_repeat = False

    def walk(g: GroupNode, mult: sympy.Expr, repeat: str | None, inside: bool) -> None:
        nonlocal seen_repeat
        if g.kind == "repeat":
            seen_repeat = True
            last = g.body[-1].path if g.body and isinstance(g.body[-1], LayerNode) else None
            repeats[g.path] = _Repeat(g, mult * g.count, mult, last, _first_layer(g))
            mult, repeat, inside = mult * g.count, g.path, True
        for child in g.body:
            if isinstance(child, LayerNode):
                stage = "repeat" if inside else ("post" if seen_repeat else "pre")
                places.append(_Place(child, mult, repeat, stage))
            else:
                walk(child, mult, repeat, inside)

    walk(graph.root, sympy.Integer(1), None, False)
    return places, repeats


def _output_head(places: Sequence[_Place]) -> str | None:
    """The model's last layer when it is a linear outside any repeat (an LM head / classifier)."""
    if places and places[-1].node.layer.kind == "linear" and places[-1].stage != "repeat":
        return places[-1].node.path
    return None


class _Sum:
    """Terms collected with ``+=`` and added once (repeated sympy ``+`` re-sorts every time)."""

    __slots__ = ("terms",)

    def __init__(self) -> None:
        self.terms: list[sympy.Expr] = []

    def __iadd__(self, term: sympy.Expr) -> _Sum:
        self.terms.append(term)
        return self

    def value(self) -> sympy.Expr:
        return sympy.Add(*self.terms)


class _Staged:
    """An amount split by pipeline stage: before the first repeat, the repeats, after."""

    def __init__(self) -> None:
        self.parts: dict[str, _Sum] = {"pre": _Sum(), "repeat": _Sum(), "post": _Sum()}

    def add(self, stage: str, amount: sympy.Expr) -> None:
        self.parts[stage] += amount

    def per_gpu(self, par: Parallel, first_factor: sympy.Expr | int = 1) -> sympy.Expr:
        """The most loaded pipeline stage's share.

        pp = 1: everything.  pp > 1: the repeats split evenly over the stages
        (L/pp layers each), the layers before them on the first stage (times
        ``first_factor``: micro-batches in flight for activations), those after
        on the last; the larger of the first and the last stage.
        """
        pre, rep, post = (self.parts[k].value() for k in ("pre", "repeat", "post"))
        pp = sympy.sympify(par.pp)
        if pp == 1:
            return pre + rep + post
        first = first_factor * (pre + rep / pp)
        last = rep / pp + post
        return sympy.Max(first, last)


# ---------------------------------------------------------------- the model


def memory(
    model: Model,
    mode: str = "train",
    *,
    precision: str = "fp32",
    optimizer: str = "adamw",
    checkpointing: str = "none",
    tp: Degree = 1,
    pp: Degree = 1,
    dp: Degree = 1,
    zero: int = 0,
    sp: bool = False,
    ep: Degree = 1,
    micro_batches: Degree | None = None,
    attention: str = "sdpa",
    device: str = "cuda",
    dropout: bool = True,
    weight_dtype: str | None = None,
    grad_dtype: str | None = None,
    master: bool | None = None,
    grad_fp32_copy: bool = False,
    state_dtype: str | None = None,
    act_dtype: str | None = None,
    kv_dtype: str | None = None,
    quant: str | None = None,
    group_size: int | None = None,
    double_quant: bool = False,
    lora_rank: int | sympy.Expr | None = None,
    lora_targets: Iterable[str] | str | None = None,
    lora_dtype: str = "fp32",
    overhead: int | str | None = None,
    policy: Any = None,
) -> MemoryResult:
    """Bytes per GPU of a training step (``mode="train"``) or of inference (``"infer"``).

    ``batch`` is the micro-batch per data-parallel rank and ``seq_len`` the
    sequence (training) or context (inference) length; both stay symbols
    unless the model gives them values.  ``lora_rank`` may be a sympy symbol
    (``symmem.symbols.sym("lora_rank")``): the result's quantities then know it by name,
    so ``total.solve(budget, for_="lora_rank")`` finds the largest rank.  ``policy``: an
    :class:`symmem.activations.ActPolicy` that replaces the one built from
    ``attention`` / ``device`` / ``dropout`` / the activation dtype.
    See docs/memory.md for every option and docs/conventions.md for the defaults.
    """
    cfg, opt, q = _configure(
        mode, precision, optimizer, checkpointing, Parallel(tp, pp, dp, zero, sp, ep, micro_batches), attention, device,
        dropout, weight_dtype, grad_dtype, master, grad_fp32_copy, state_dtype, act_dtype, kv_dtype, quant, group_size,
        double_quant, lora_rank, lora_targets, lora_dtype, overhead, policy,
    )
    return _Builder(model, cfg, opt, q, policy).build()


def option_names() -> tuple[str, ...]:
    """The options :func:`memory` takes (besides the model and the mode)."""
    import inspect

    return tuple(n for n in inspect.signature(memory).parameters if n not in ("model", "mode"))


def memory_with_options(model: Model, mode: str, options: dict[str, Any]) -> MemoryResult:
    """:func:`memory` with options from a user (``--option name=value``): unknown names are an OptionError."""
    from symmem.errors import suggest

    valid = option_names()
    for name in options:
        if name not in valid:
            hint = suggest(name, valid)
            raise OptionError(f"unknown memory option '{name}'" + (f" ({hint})" if hint else "")
                              + f": valid options are {', '.join(valid)}")
    return memory(model, mode, **options)


def _configure(
    mode: str, precision: str, optimizer: str, checkpointing: str, par: Parallel, attention: str, device: str,
    dropout: bool, weight_dtype: str | None, grad_dtype: str | None, master: bool | None, grad_fp32_copy: bool,
    state_dtype: str | None, act_dtype: str | None, kv_dtype: str | None, quant: str | None, group_size: int | None,
    double_quant: bool, lora_rank: int | sympy.Expr | None, lora_targets: Iterable[str] | str | None, lora_dtype: str,
    overhead: int | str | None, policy: Any,
) -> tuple[MemoryConfig, Optimizer, Quant | None]:
    if mode not in MODES:
        raise OptionError(f"unknown mode '{mode}': valid modes are {', '.join(MODES)}")
    if checkpointing not in CHECKPOINTING:
        raise OptionError(f"unknown checkpointing '{checkpointing}': valid names are {', '.join(CHECKPOINTING)}")
    if attention not in ("eager", "sdpa", "flash"):
        raise OptionError(f"unknown attention '{attention}': valid names are eager, sdpa, flash")
    if device not in ("cuda", "cpu"):
        raise OptionError(f"unknown device '{device}': valid names are cuda, cpu")
    prec = get_precision(precision)
    opt = get_optimizer(optimizer)
    w = check_dtype(weight_dtype or prec.weights, FLOAT_DTYPES, "weight dtype")
    g = check_dtype(grad_dtype or prec.grads, FLOAT_DTYPES, "gradient dtype")
    default_act = policy.dtype if policy is not None else prec.activations
    a = check_dtype(act_dtype or default_act, ("fp32", "fp16", "bf16"), "activation dtype")
    use_master = prec.master if master is None else master
    # torch.optim allocates its states like the parameter it updates (zeros_like): fp32 beside
    # fp32 master weights or fp32 weights, else the weights' own 16-bit dtype
    default_state = "fp32" if use_master or w not in ("fp16", "bf16") else w
    s = state_dtype or opt.state_dtype or default_state
    if opt.state_dtype is None or state_dtype is not None:
        check_dtype(s, STATE_DTYPES if opt.quant_block is None else ("int8",), "optimizer state dtype")
    kv = check_dtype(kv_dtype or (a if w not in ("fp16", "bf16") else w), KV_DTYPES, "KV-cache dtype")
    q = get_quant(quant) if quant else None
    if group_size is not None and (group_size < 1 or q is None):
        raise OptionError("group_size needs a quantization (quant=int8|int4|nf4) and must be >= 1")
    if double_quant and (q is None or q.double_quant_group_bytes is None):
        raise OptionError("double_quant applies to nf4 (QLoRA) only")
    if lora_rank is not None:
        rank = sympy.sympify(lora_rank)
        if not (rank.is_integer and rank.is_positive) and not (rank.is_Integer and rank >= 1):
            raise OptionError(f"lora_rank must be an integer >= 1 or a positive integer symbol, not {lora_rank}")
        if rank.is_Integer:
            lora_rank = int(rank)
    if q is not None and mode == "train" and lora_rank is None:
        raise OptionError("quantized weights are frozen: training them needs LoRA adapters (lora_rank; QLoRA with nf4)")
    if isinstance(lora_targets, str):
        lora_targets = [t.strip() for t in lora_targets.split(",") if t.strip()]
    targets = tuple(lora_targets) if lora_targets else DEFAULT_LORA_TARGETS
    if isinstance(overhead, str):
        from symmem.units import parse_bytes

        overhead = 0 if overhead.strip() in ("0", "0B", "0b") else parse_bytes(overhead, what="overhead")
    if overhead is not None and overhead < 0:
        raise OptionError(f"overhead must be >= 0 bytes, not {overhead}")
    ovh = overhead if overhead is not None else (DEFAULT_CUDA_OVERHEAD if device == "cuda" else 0)
    if par.sp and par.tp == 1:
        raise OptionError("sequence parallelism splits over the tensor-parallel ranks: it needs tp > 1")
    # PEFT keeps adapters in fp32 when the base is 16-bit (get_peft_model(autocast_adapter_dtype=True),
    # its default); their gradients and states follow them, master weights only for 16-bit adapters
    la = check_dtype(lora_dtype, ("fp32", "fp16", "bf16"), "LoRA adapter dtype")
    lora_state = state_dtype or opt.state_dtype or ("fp32" if use_master or la == "fp32" else la)
    cfg = MemoryConfig(
        mode, prec.name, w, g, use_master, grad_fp32_copy, s, a, opt.name, checkpointing, par, attention, device,
        dropout, kv, q.name if q else None, (group_size or q.group_size) if q else None, double_quant, lora_rank,
        targets, ovh, la, lora_state,
    )
    return cfg, opt, q


class _Builder:
    def __init__(self, model: Model, cfg: MemoryConfig, opt: Optimizer, q: Quant | None, policy: Any) -> None:
        self.model = model
        self.cfg = cfg
        self.opt = opt
        self.quant = q
        self.par = cfg.parallel
        self.places, self.repeats = _places(model.graph)
        self.head = _output_head(self.places)
        self.policy = policy if policy is not None else self._policy()
        self.notes: list[str] = []
        self.rows: dict[str, dict[str, _Sum]] = {}
        if sympy.sympify(self.par.pp) != 1 and not self.repeats:
            raise OptionError("pipeline parallelism splits repeated layers over stages: the model has no repeat")
        self._check_divisible()

    def _check_divisible(self) -> None:
        """Megatron-LM needs tp to divide the attention heads and ep the routed experts."""
        from symmem.graph import evaluator

        ev = evaluator(self.model.values)
        tp, ep = ev(sympy.sympify(self.par.tp)), ev(sympy.sympify(self.par.ep))
        degrees = {"tp": tp, "ep": ep}
        for place in self.places:
            for opt, size in place.node.layer.parallel_sizes().items():
                degree = degrees.get(opt)
                if degree in (None, 1):
                    continue
                value = ev(size)
                if value is not None and value % degree:
                    raise OptionError(f"{opt} = {degree} does not divide {size} = {value} of layer {place.node.path}")

    def _policy(self) -> Any:
        from symmem.activations import ActPolicy

        return ActPolicy(attention=self.cfg.attention, device=self.cfg.device,  # type: ignore[arg-type]
                         dropout=self.cfg.dropout, dtype=self.cfg.act_dtype)

    # ------------------------------------------------------------ helpers
    def row(self, place: _Place) -> dict[str, _Sum]:
        key = place.node.path
        if key not in self.rows:
            self.rows[key] = {c: _Sum() for c in ("weights", "gradients", "optimizer", "activations", "kv_cache")}
        return self.rows[key]

    def act_bytes(self, cls: str) -> sympy.Expr:
        """Bytes per element of a ``Saved`` dtype class."""
        act = DTYPE_BYTES[self.cfg.act_dtype]
        match cls:
            case "act":
                return act
            case "fp32":
                return _FP32
            case "mask":  # native_dropout's bool mask on CUDA; the noise tensor in the activation dtype on CPU
                return sympy.Integer(1) if self.cfg.device == "cuda" else act
            case "bool":
                return sympy.Integer(1)
            case "int64":
                return sympy.Integer(8)
        raise OptionError(f"unknown saved-tensor dtype class '{cls}'")  # pragma: no cover

    def quantized(self, place: _Place, t: ParamTensor) -> bool:
        """Weight-only quantization replaces the nn.Linear matrices, not the output head
        (transformers' ``get_keys_to_not_convert`` keeps the output embedding in high precision)."""
        return (
            self.quant is not None
            and t.matmul
            and place.node.path != self.head
        )

    def quant_bytes(self, t: ParamTensor) -> sympy.Expr:
        q = self.quant
        assert q is not None
        n = t.numel
        if self.cfg.double_quant:
            per_group = q.double_quant_group_bytes
            assert per_group is not None
        else:
            per_group = q.group_bytes
        groups = t.copies * t.shape[0] if self.cfg.group_size is None else n / self.cfg.group_size
        return n * q.bytes_per_weight + groups * per_group

    def lora_target(self, place: _Place, t: ParamTensor) -> bool:
        """Is ``t`` a matrix LoRA adapts?  A target names a matrix as PEFT's
        ``target_modules`` does: by the last part of its module name (``q_proj``
        matches ``q_proj.weight`` and ``experts.q_proj.weight``; a ``linear`` layer is
        matched by its own name); ``all-linear`` is every matrix but the output head."""
        if self.cfg.lora_rank is None or not t.matmul:
            return False
        if not (t.name == "weight" or t.name.endswith(".weight")):
            return False
        stem = place.node.path.rsplit(".", 1)[-1] if t.name == "weight" else t.name.removesuffix(".weight")
        names = {stem, stem.rsplit(".", 1)[-1]}
        for target in self.cfg.lora_targets:
            if target == "all-linear" and place.node.path != self.head:
                return True
            if target in names:
                return True
        return False

    # ------------------------------------------------------------ parameters
    def params(self) -> tuple[_Staged, _Staged, _Staged]:
        cfg, par = self.cfg, self.par
        train = cfg.mode == "train"
        wb, gb = DTYPE_BYTES[cfg.weight_dtype], DTYPE_BYTES[cfg.grad_dtype]
        sb = DTYPE_BYTES[cfg.state_dtype]
        weights, grads, opt = _Staged(), _Staged(), _Staged()
        lora = cfg.lora_rank is not None
        r = sympy.sympify(cfg.lora_rank or 0)
        matched = False
        pp_on = sympy.sympify(par.pp) != 1

        base_kind = (gb, cfg.master, cfg.grad_fp32_copy, sb)
        lb = DTYPE_BYTES[cfg.lora_dtype]
        lora16 = cfg.lora_dtype != "fp32"
        lora_kind = (lb, cfg.master and lora16, cfg.grad_fp32_copy and lora16, DTYPE_BYTES[cfg.lora_state_dtype])

        def trainable_bytes(place: _Place, shape_numel: sympy.Expr, state: tuple[sympy.Expr, sympy.Expr],
                            split: sympy.Expr, row: dict[str, _Sum],
                            kind: tuple[sympy.Expr, bool, bool, sympy.Expr] = base_kind) -> None:
            g_bytes, has_master, has_copy, s_bytes = kind
            g = place.mult * shape_numel * g_bytes / split
            o = place.mult * shape_numel * ((_FP32 if has_master else 0) + (_FP32 if has_copy else 0)) / split
            full, scales = state
            o += place.mult * (full * s_bytes + scales) / split
            if par.zero >= 2:
                g = g / par.dp
            if par.zero >= 1:
                o = o / par.dp
            grads.add(place.stage, g)
            opt.add(place.stage, o)
            row["gradients"] += g
            row["optimizer"] += o

        for place in self.places:
            node = place.node
            row = self.row(place)
            for t in node.layer.tensors():
                # a tied weight is stored once, at its owner; with pipeline stages the last
                # stage keeps its own copy of a tied output head (Megatron-LM: word embeddings
                # on the first and last stage, gradients all-reduced between them)
                if node.tie and t.name == "weight" and not (pp_on and place.stage == "post"):
                    continue
                split = sympy.Integer(1)
                if tp_splits(t, output_head=node.path == self.head):
                    split *= par.tp
                if is_routed_expert(t):
                    split *= par.ep
                quantized = self.quantized(place, t)
                w = place.mult * (self.quant_bytes(t) if quantized else t.numel * wb) / split
                if par.zero >= 3:
                    w = w / par.dp
                weights.add(place.stage, w)
                row["weights"] += w
                frozen = t.buffer or quantized or lora
                if train and not frozen:
                    trainable_bytes(place, t.numel, self.opt.state_numel(t.shape, t.copies), split, row)
                if lora and self.lora_target(place, t):
                    matched = True
                    # LoRA (Hu et al. 2022): A (r x in) and B (out x r) per targeted matrix,
                    # replicated under tensor parallelism (conservative)
                    out_f, in_f = t.shape
                    a_shape, b_shape = (r, in_f), (out_f, r)
                    n = t.copies * r * (in_f + out_f)
                    esplit = par.ep if is_routed_expert(t) else sympy.Integer(1)
                    aw = place.mult * n * lb / esplit
                    if par.zero >= 3:
                        aw = aw / par.dp
                    weights.add(place.stage, aw)
                    row["weights"] += aw
                    if train:
                        sa = self.opt.state_numel(a_shape, t.copies)
                        sbb = self.opt.state_numel(b_shape, t.copies)
                        trainable_bytes(place, n, (sa[0] + sbb[0], sa[1] + sbb[1]), esplit, row, lora_kind)
        if lora and not matched:
            names = sorted({t.name.removesuffix(".weight").rsplit(".", 1)[-1] for p in self.places
                            for t in p.node.layer.tensors() if t.matmul})
            raise OptionError(
                f"no matrix matches the LoRA targets {', '.join(cfg.lora_targets)}: "
                f"matrix names are {', '.join(names) or '(none)'}, or all-linear"
            )
        return weights, grads, opt

    # ------------------------------------------------------------ activations
    def split(self, path: str, saved: Saved) -> sympy.Expr:
        """Tensor parallelism splits what the layer marks ``tp_split``; sequence parallelism
        splits the rest (Korthikanti et al. 2022, Section 4.2.2); the loss is vocab-parallel
        (Megatron's vocab_parallel_cross_entropy, Korthikanti et al. Section 4.3)."""
        if saved.tp_split or self.par.sp or path == "loss":
            return sympy.sympify(self.par.tp)
        return sympy.Integer(1)

    def entry_bytes(self, path: str, saved: Saved) -> sympy.Expr:
        return saved.numel * self.act_bytes(saved.dtype) / self.split(path, saved)

    def activations(self) -> tuple[sympy.Expr, list[str]]:
        from symmem.activations import saved_tensors

        cfg = self.cfg
        stage_of = {p.node.path: p.stage for p in self.places}
        entries = saved_tensors(self.model.graph, self.policy)
        if cfg.checkpointing == "selective":
            # Korthikanti et al. 2022, Section 5: recompute the attention core (QK^T, softmax,
            # its dropout, attention over V); keep everything else
            entries = [e for e in entries if not e.saved.core]
        staged = _Staged()
        notes: list[str] = []
        by_place = {p.node.path: p for p in self.places}
        for e in entries:
            if e.path in by_place:
                self.row(by_place[e.path])["activations"] += e.multiplicity * self.entry_bytes(e.path, e.saved)
        recompute: list[sympy.Expr] = []
        if cfg.checkpointing == "full":
            if not self.repeats:
                notes.append("full checkpointing recomputes repeated blocks: the model has no repeat, nothing is recomputed")
            entries, checkpoints, recompute = self.full_recompute(entries)
            staged.add("repeat", checkpoints)
        for e in entries:
            staged.add(stage_of.get(e.path, "post"), e.multiplicity * self.entry_bytes(e.path, e.saved))
        staged.add("post", self.lora_activations())
        total = staged.per_gpu(self.par, self.par.in_flight)
        if recompute:
            total += recompute[0] if len(recompute) == 1 else sympy.Max(*recompute)
        return total, notes

    def full_recompute(self, entries: list[Any]) -> tuple[list[Any], sympy.Expr, list[sympy.Expr]]:
        """Full activation checkpointing of every repeated block (Chen et al. 2016; Megatron-LM
        ``--recompute-granularity full --recompute-method uniform --recompute-num-layers 1``):
        each iteration keeps only its input (Korthikanti et al. 2022, Table 2: 2sbh per layer in
        16 bits); during backward one block at a time is recomputed, so one iteration's set of
        saved tensors is alive besides (the largest over the repeat groups), less its input,
        which is the stored checkpoint itself (Megatron's ``CheckpointFunction`` recomputes
        from ``detach_variable(inputs)``: the same storage)."""
        kept: list[Any] = []
        checkpoints = sympy.Integer(0)
        per_iteration: dict[str, dict[tuple[str, str], sympy.Expr]] = {}
        for e in entries:
            rep = self.repeats.get(e.repeat) if e.repeat else None
            if rep is None:
                kept.append(e)
                continue
            sets = per_iteration.setdefault(e.repeat, {})
            block_input = e.saved.ref == "input" and e.path == rep.first_layer
            if not block_input:
                sets[(e.path, e.saved.name)] = self.entry_bytes(e.path, e.saved)
            edge_out = e.saved.ref == "output" and e.path == rep.last_layer and e.multiplicity == rep.outer
            if edge_out and rep.group.count != 1:
                kept.append(e)  # the last iteration's output, saved by the layer after the repeat
        seq_split = sympy.sympify(self.par.tp) if self.par.sp else sympy.Integer(1)
        recompute = []
        for path, sets in per_iteration.items():
            rep = self.repeats[path]
            stream = prod(rep.group.in_shape) * DTYPE_BYTES[self.cfg.act_dtype] / seq_split
            checkpoints += rep.iterations * stream
            recompute.append(sympy.Add(*sets.values()))
        return kept, checkpoints, recompute

    def lora_activations(self) -> sympy.Expr:
        """Each adapter keeps its r-wide intermediate A x for B's backward (tokens x r per matrix;
        tokens x top_k x r for routed experts).  The frozen base's saved tensors are counted as
        for full training (an upper bound: a frozen linear needs no input for a weight gradient)."""
        if self.cfg.lora_rank is None or self.cfg.mode != "train":
            return sympy.Integer(0)
        r = sympy.sympify(self.cfg.lora_rank)
        total = sympy.Integer(0)
        for place in self.places:
            for t in place.node.layer.tensors():
                if self.lora_target(place, t):
                    tokens = prod(place.node.in_shape[:-1])
                    fan = t.active if t.active is not None else t.copies
                    b = place.mult * tokens * fan * r * DTYPE_BYTES[self.cfg.act_dtype]
                    total += b
                    self.row(place)["activations"] += b
        return total

    def transient_train(self) -> sympy.Expr:
        from symmem.activations import transient

        return sympy.Add(*[e.multiplicity * self.entry_bytes(e.path, e.saved)
                           for e in transient(self.model.graph, self.policy)])

    def transient_infer(self) -> sympy.Expr:
        """One forward step without autograd: the logits the step returns plus the largest
        one layer's intermediates (what that layer would save for backward, dropout off: a
        proxy for its working set).

        For a sequence model ([batch, seq, vocab] output) only the last position's logits
        are computed, as generation does (transformers' ``generate`` passes
        ``logits_to_keep=1``; vLLM computes logits only for the sampled positions), so the
        prefill of a long context does not materialise seq x vocab logits.  Other models
        return their whole output.  Logits are vocab-parallel under tensor parallelism.
        """
        from dataclasses import replace

        from symmem.activations import saved_tensors

        pol = replace(self.policy, dropout=False, loss="none")
        per_layer: dict[str, sympy.Expr] = {}
        for e in saved_tensors(self.model.graph, pol):
            per_layer[e.path] = per_layer.get(e.path, sympy.Integer(0)) + self.entry_bytes(e.path, e.saved)
        shape = tuple(self.model.graph.root.out_shape)
        last_only = len(shape) >= 3 and not self.encoder_only()
        logits = prod(shape[:-2]) * shape[-1] if last_only else prod(shape)
        out = logits * DTYPE_BYTES[self.cfg.act_dtype] / sympy.sympify(self.par.tp)
        biggest = list(dict.fromkeys(v for v in per_layer.values() if v != 0))
        if biggest:
            out += biggest[0] if len(biggest) == 1 else sympy.Max(*biggest)
        return out

    def encoder_only(self) -> bool:
        """A model whose attention layers are all bidirectional (``causal = false``, BERT) is
        not generated token by token: it keeps no KV cache and returns its whole output."""
        modes = [m for p in self.places if (m := p.node.layer.attends()) is not None]
        return bool(modes) and all(m == "bidirectional" for m in modes)

    def kv_cache(self) -> sympy.Expr:
        if self.encoder_only():
            self.notes.append("no causal attention (an encoder): no KV cache, the whole output is returned")
            return sympy.Integer(0)
        kvb = DTYPE_BYTES[self.cfg.kv_dtype]
        staged = _Staged()
        for place in self.places:
            layer = place.node.layer
            n = layer.kv_cache(place.node.in_shape, self.policy)
            if n == 0:
                continue
            split = sympy.Integer(1) if self.par.tp == 1 else layer.kv_cache_split(sympy.sympify(self.par.tp))
            b = place.mult * n * kvb / split
            staged.add(place.stage, b)
            self.row(place)["kv_cache"] += b
        return staged.per_gpu(self.par)

    # ------------------------------------------------------------ all together
    def _quantity(self) -> Any:
        """The model's Quantity maker, knowing the symbols an option brought in (a symbolic
        LoRA rank or parallel degree) by name, so that they can be solved for and evaluated."""
        from symmem.model import Quantity

        par = self.par
        extra: dict[str, sympy.Symbol] = {}
        for option in (self.cfg.lora_rank, par.tp, par.pp, par.dp, par.ep):
            if isinstance(option, sympy.Basic):
                for s in option.free_symbols:
                    if isinstance(s, sympy.Symbol) and s.name not in self.model.graph.symbols:
                        extra[s.name] = s
        if not extra:
            return self.model.quantity
        symbols = {**self.model.graph.symbols, **extra}
        values = self.model.values
        return lambda expr: Quantity(sympy.sympify(expr), values, symbols)

    def build(self) -> MemoryResult:
        cfg = self.cfg
        zero = sympy.Integer(0)
        w, g, o = self.params()
        comps: dict[str, sympy.Expr] = {c: zero for c in COMPONENTS}
        comps["weights"] = w.per_gpu(self.par)
        notes: list[str] = self.notes
        if cfg.mode == "train":
            comps["gradients"] = g.per_gpu(self.par)
            comps["optimizer"] = o.per_gpu(self.par)
            comps["activations"], more = self.activations()
            notes += more
            comps["transient"] = self.transient_train()
        else:
            comps["kv_cache"] = self.kv_cache()
            comps["transient"] = self.transient_infer()
        comps["overhead"] = sympy.Integer(cfg.overhead)
        if sympy.sympify(self.par.pp) != 1:
            notes.append("pipeline parallel: each component is its most loaded stage's, so the total is an upper bound")
        total = sympy.Add(*comps.values())
        q = self._quantity()
        rows = tuple(
            MemoryRow(p.node.path, p.node.layer.kind, p.mult, **{k: v.value() for k, v in self.rows[p.node.path].items()})
            for p in self.places if p.node.path in self.rows
        )
        return MemoryResult(
            mode=cfg.mode, weights=q(comps["weights"]), gradients=q(comps["gradients"]),
            optimizer=q(comps["optimizer"]), activations=q(comps["activations"]), transient=q(comps["transient"]),
            kv_cache=q(comps["kv_cache"]), overhead=q(comps["overhead"]), total=q(total),
            config=cfg, rows=rows, notes=tuple(notes),
        )
