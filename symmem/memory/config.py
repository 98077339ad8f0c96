"""The memory model's configuration: the user's options resolved into every dtype and choice.

:class:`symmem.options.MemoryOptions` is what a user said (``precision="mixed-bf16"``);
:class:`MemoryConfig` is what that means here (weights bf16, gradients bf16, fp32
master weights, optimizer states fp32...), with every default filled in from the
presets of :mod:`symmem.precision` and :mod:`symmem.optimizers`.
"""

from __future__ import annotations

from dataclasses import dataclass, fields
from fractions import Fraction
from typing import Any

import sympy

from symmem.errors import OptionError
from symmem.optimizers import Optimizer
from symmem.optimizers import optimizer as get_optimizer
from symmem.options import ACT_DTYPES, ADAPTER_DTYPES, MemoryOptions
from symmem.parallel import Parallel
from symmem.precision import DTYPE_BYTES, FLOAT_DTYPES, KV_DTYPES, STATE_DTYPES, Quant, check_dtype
from symmem.precision import precision as get_precision
from symmem.precision import quant as get_quant
from symmem.symbols import knob

#: Framework overhead on a CUDA device: the CUDA context (about 700-800 MiB with
#: PyTorch, depending on the CUDA version and GPU: PyTorch forums,
#: discuss.pytorch.org/t/81330 and /t/73021) plus caching-allocator slack,
#: rounded to 1 GiB.  0 on the CPU.  Override with ``overhead=``.
DEFAULT_CUDA_OVERHEAD = 2**30


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
    #: the implementation whose saved tensors are counted (symmem.policy.IMPLS)
    impl: str = "torch"
    #: the training loss on the model's output ("cross_entropy" or "none")
    loss: str = "cross_entropy"
    #: the recurrent kernel (native, onednn, cudnn)
    rnn: str = "native"

    def describe(self) -> dict[str, Any]:
        p = self.parallel
        out: dict[str, Any] = {
            "mode": self.mode,
            "precision": self.precision,
            "weight_dtype": self.weight_dtype,
            "act_dtype": self.act_dtype,
            "device": self.device,
            "attention": self.attention,
            "dropout": self.dropout,
            "impl": self.impl,
            "overhead": self.overhead,
        }
        if self.mode == "train":
            out.update(
                grad_dtype=self.grad_dtype,
                master_weights=self.master,
                grad_fp32_copy=self.grad_fp32_copy,
                optimizer=self.optimizer,
                state_dtype=self.state_dtype,
                checkpointing=self.checkpointing,
                loss=self.loss,
            )
        else:
            out["kv_dtype"] = self.kv_dtype
        out.update(tp=str(p.tp), pp=str(p.pp), dp=str(p.dp), zero=p.zero, sp=p.sp, ep=str(p.ep))
        if self.quant:
            out.update(quant=self.quant, group_size=self.group_size, double_quant=self.double_quant)
        if self.lora_rank is not None:
            rank = self.lora_rank if isinstance(self.lora_rank, int) else str(self.lora_rank)
            out.update(
                lora_rank=rank, lora_targets=list(self.lora_targets), lora_dtype=self.lora_dtype
            )
        return out

    def summary(self) -> str:
        """One line for people: the choices that decide the bytes."""
        p = self.parallel
        parts = [
            f"precision {self.precision} (weights {self.weight_dtype}, activations {self.act_dtype})"
        ]
        if self.mode == "train":
            parts.append(f"optimizer {self.optimizer}, checkpointing {self.checkpointing}")
        else:
            parts.append(f"kv cache {self.kv_dtype}")
        if self.quant:
            parts.append(f"weights quantized {self.quant}")
        if self.lora_rank is not None:
            parts.append(f"LoRA r={self.lora_rank} on {','.join(self.lora_targets)}")
        parts.append(
            f"tp={p.tp} pp={p.pp} dp={p.dp} zero={p.zero}"
            + (" sp" if p.sp else "")
            + (f" ep={p.ep}" if p.ep != 1 else "")
        )
        parts.append(f"{self.device}, {self.attention} attention, as {self.impl} builds it")
        head = "training step" if self.mode == "train" else "inference"
        return f"{head} per GPU: " + "; ".join(parts)


@dataclass(frozen=True)
class Knobs:
    """The numeric side of a configuration, which the formulas read as numbers or as symbols.

    Everything else in :class:`MemoryConfig` changes which terms exist (the structure);
    these only change their values, so one expression built with them as symbols
    (:func:`symbolic_knobs`) serves every value (docs/memory.md, "fast re-evaluation").
    """

    tp: sympy.Expr
    pp: sympy.Expr
    dp: sympy.Expr
    ep: sympy.Expr
    #: micro-batches whose activations the first pipeline stage holds (1F1B: min(m, pp))
    in_flight: sympy.Expr
    weight_bytes: sympy.Expr
    grad_bytes: sympy.Expr
    state_bytes: sympy.Expr
    kv_bytes: sympy.Expr
    #: 1 when the optimizer keeps fp32 master weights, else 0
    master: sympy.Expr
    #: 1 when the optimizer keeps an fp32 copy of the gradients, else 0
    grad_copy: sympy.Expr
    overhead: sympy.Expr

    @staticmethod
    def names() -> tuple[str, ...]:
        return tuple(f.name for f in fields(Knobs))


def knobs_of(cfg: MemoryConfig) -> Knobs:
    """The numbers ``cfg`` gives each knob."""
    p = cfg.parallel
    return Knobs(
        tp=sympy.sympify(p.tp),
        pp=sympy.sympify(p.pp),
        dp=sympy.sympify(p.dp),
        ep=sympy.sympify(p.ep),
        in_flight=p.in_flight,
        weight_bytes=DTYPE_BYTES[cfg.weight_dtype],
        grad_bytes=DTYPE_BYTES[cfg.grad_dtype],
        state_bytes=DTYPE_BYTES[cfg.state_dtype],
        kv_bytes=DTYPE_BYTES[cfg.kv_dtype],
        master=sympy.Integer(int(cfg.master)),
        grad_copy=sympy.Integer(int(cfg.grad_fp32_copy)),
        overhead=sympy.Integer(cfg.overhead),
    )


def symbolic_knobs() -> Knobs:
    """Every knob as its symbol (:func:`symmem.symbols.knob`); ``in_flight`` as min(m, pp)."""
    k = {name: knob(name) for name in Knobs.names()}
    k["in_flight"] = sympy.Min(knob("micro_batches"), k["pp"])
    return Knobs(**k)


def knob_values(cfg: MemoryConfig) -> tuple[int | Fraction, ...]:
    """The knobs' numbers in the order of :data:`KNOB_ARGS` (the symbols of :func:`symbolic_knobs`,
    with ``micro_batches`` for ``in_flight``), as Python numbers: an inner loop of a search."""
    p = cfg.parallel
    micro = p.pp if p.micro_batches is None else p.micro_batches
    return (
        _number(p.tp),
        _number(p.pp),
        _number(p.dp),
        _number(p.ep),
        _BYTES[cfg.weight_dtype],
        _BYTES[cfg.grad_dtype],
        _BYTES[cfg.state_dtype],
        _BYTES[cfg.kv_dtype],
        int(cfg.master),
        int(cfg.grad_fp32_copy),
        cfg.overhead,
        _number(micro),
    )


#: the arguments of a compiled expression over the knobs, in knob_values' order
KNOB_ARGS = (
    "tp",
    "pp",
    "dp",
    "ep",
    "weight_bytes",
    "grad_bytes",
    "state_bytes",
    "kv_bytes",
    "master",
    "grad_copy",
    "overhead",
    "micro_batches",
)
_BYTES: dict[str, int | Fraction] = {
    name: int(b) if b.is_Integer else Fraction(int(b.p), int(b.q))
    for name, b in DTYPE_BYTES.items()
}


def _number(x: Any) -> int:
    if isinstance(x, int):
        return x
    if isinstance(x, sympy.Integer):
        return int(x)
    raise OptionError(f"fast evaluation needs whole-number parallel degrees, not {x}")


def resolve(
    o: MemoryOptions, model_impl: str | None = None
) -> tuple[MemoryConfig, Optimizer, Quant | None]:
    """The configuration that ``o`` means, with the optimizer and quantization presets it names.

    ``model_impl``: the implementation the model declares (a .mem header's ``impl = ...``),
    used when ``o.impl`` is None; a model that declares none is built as plain PyTorch."""
    par = Parallel(o.tp, o.pp, o.dp, o.zero, o.sp, o.ep, o.micro_batches)
    prec = get_precision(o.precision)
    opt = get_optimizer(o.optimizer)
    w = check_dtype(o.weight_dtype or prec.weights, FLOAT_DTYPES, "weight dtype")
    g = check_dtype(o.grad_dtype or prec.grads, FLOAT_DTYPES, "gradient dtype")
    default_act = o.policy.dtype if o.policy is not None else prec.activations
    a = check_dtype(o.act_dtype or default_act, ACT_DTYPES, "activation dtype")
    use_master = prec.master if o.master is None else o.master
    # torch.optim allocates its states like the parameter it updates (zeros_like): fp32 beside
    # fp32 master weights or fp32 weights, else the weights' own 16-bit dtype
    default_state = "fp32" if use_master or w not in ("fp16", "bf16") else w
    s = o.state_dtype or opt.state_dtype or default_state
    if opt.state_dtype is None or o.state_dtype is not None:
        check_dtype(
            s, STATE_DTYPES if opt.quant_block is None else ("int8",), "optimizer state dtype"
        )
    kv = check_dtype(
        o.kv_dtype or (a if w not in ("fp16", "bf16") else w), KV_DTYPES, "KV-cache dtype"
    )
    q = get_quant(o.quant) if o.quant else None
    if o.group_size is not None and q is None:
        raise OptionError("group_size needs a quantization (quant=int8|int4|nf4) and must be >= 1")
    if o.double_quant and (q is None or q.double_quant_group_bytes is None):
        raise OptionError("double_quant applies to nf4 (QLoRA) only")
    if q is not None and o.mode == "train" and o.lora_rank is None:
        raise OptionError(
            "quantized weights are frozen: training them needs LoRA adapters (lora_rank; QLoRA with nf4)"
        )
    ovh = (
        o.overhead
        if o.overhead is not None
        else (DEFAULT_CUDA_OVERHEAD if o.device == "cuda" else 0)
    )
    if par.sp and par.tp == 1:
        raise OptionError(
            "sequence parallelism splits over the tensor-parallel ranks: it needs tp > 1"
        )
    # PEFT keeps adapters in fp32 when the base is 16-bit (get_peft_model(autocast_adapter_dtype=True),
    # its default); their gradients and states follow them, master weights only for 16-bit adapters
    la = check_dtype(o.lora_dtype, ADAPTER_DTYPES, "LoRA adapter dtype")
    lora_state = o.state_dtype or opt.state_dtype or ("fp32" if use_master or la == "fp32" else la)
    cfg = MemoryConfig(
        mode=o.mode,
        precision=prec.name,
        weight_dtype=w,
        grad_dtype=g,
        master=use_master,
        grad_fp32_copy=o.grad_fp32_copy,
        state_dtype=s,
        act_dtype=a,
        optimizer=opt.name,
        checkpointing=o.checkpointing,
        parallel=par,
        attention=o.attention,
        device=o.device,
        dropout=o.dropout,
        kv_dtype=kv,
        quant=q.name if q else None,
        group_size=(o.group_size or q.group_size) if q else None,
        double_quant=o.double_quant,
        lora_rank=o.lora_rank,
        lora_targets=o.lora_targets,
        overhead=ovh,
        lora_dtype=la,
        lora_state_dtype=lora_state,
        impl=o.impl or (o.policy.impl if o.policy is not None else None) or model_impl or "torch",
        loss=o.loss,
        rnn=o.rnn,
    )
    return cfg, opt, q
