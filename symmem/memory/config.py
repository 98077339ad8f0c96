"""The memory model's configuration: the user's options resolved into every dtype and choice.

:class:`symmem.options.MemoryOptions` is what a user said (``precision="mixed-bf16"``);
:class:`MemoryConfig` is what that means here (weights bf16, gradients bf16, fp32
master weights, optimizer states fp32...), with every default filled in from the
presets of :mod:`symmem.precision` and :mod:`symmem.optimizers`.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import fields
from fractions import Fraction
from typing import Any

import sympy

from symmem.errors import OptionError
from symmem.optimizers import Optimizer
from symmem.optimizers import optimizer as get_optimizer
from symmem.options import ACT_DTYPES, ADAPTER_DTYPES, MemoryOptions
from symmem.parallel import Parallel, in_flight, stage_in_flight
from symmem.precision import (
    DTYPE_BYTES,
    FLOAT_DTYPES,
    KV_DTYPES,
    NO_QUANT,
    QUANTS,
    STATE_DTYPES,
    Quant,
    check_dtype,
)
from symmem.precision import precision as get_precision
from symmem.precision import quant as get_quant
from symmem.records import record
from symmem.symbols import knob

#: Framework overhead on a CUDA device: the CUDA context (about 700-800 MiB with
#: PyTorch, depending on the CUDA version and GPU: PyTorch forums,
#: discuss.pytorch.org/t/81330 and /t/73021) plus caching-allocator slack,
#: rounded to 1 GiB.  0 on the CPU.  Override with ``overhead=``.
DEFAULT_CUDA_OVERHEAD = 2**30

#: what each ZeRO stage partitions over the data-parallel ranks (Rajbhandari et al. 2020,
#: Section 5: P_os, P_os+g, P_os+g+p; FSDP SHARD_GRAD_OP = 2, FULL_SHARD = 3)
ZERO_SHARDS: dict[int, frozenset[str]] = {
    0: frozenset(),
    1: frozenset({"optimizer"}),
    2: frozenset({"optimizer", "gradients"}),
    3: frozenset({"optimizer", "gradients", "weights"}),
}


@record
class MemoryConfig:
    """Every choice a breakdown was computed with (resolved: no None left but the optional
    features)."""

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
    #: inference: tokens one forward step processes (chunked prefill); None: the whole batch
    prefill_chunk: int | None = None
    #: the options left unset that were resolved from the model (or from the house default):
    #: (option, value, where it came from and which option changes it)
    assumed: tuple[tuple[str, str, str], ...] = ()
    #: what lives in host memory (:data:`symmem.options.OFFLOADS`) and on which device
    offload: tuple[str, ...] = ()
    offload_device: str = "cpu"
    cp_comm: str = "ring"
    gpus_per_node: int = 8
    #: the implementation whose saved tensors are counted (symmem.policy.IMPLS)
    impl: str = "torch"
    #: the training loss on the model's output ("cross_entropy" or "none")
    loss: str = "cross_entropy"
    #: chunks of a chunked or fused loss (None: the implementation's default)
    loss_chunks: int | None = None
    #: the recurrent kernel (native, onednn, cudnn)
    rnn: str = "native"
    #: full recompute: "uniform" groups of recompute_num_layers, or "block" (Megatron-LM)
    recompute_method: str = "uniform"
    recompute_num_layers: int | None = None
    #: the optimizer step fused into backward: one parameter's gradient alive at a time
    fused_optimizer_step: bool = False
    #: the multi-token-prediction modules counted (None: the model declares none), and whether
    #: the option asked for it (else a value of mtp_layers the user set wins)
    mtp: int | None = None
    mtp_explicit: bool = False
    #: one part of a model of parts alone (None: the whole model)
    part: str | None = None
    #: Transformer Engine FP8 training: FP8 bytes per GEMM weight element beside the weights
    #: (copies and transposes) and the amax history length of each FP8 tensor (0: no FP8
    #: scaling state); structure, not knobs (the fast evaluator keys on them)
    fp8_copies: int = 0
    amax_history_len: int = 0
    #: DeepSpeed ZeRO-3's working-buffer bounds in elements (max live parameters, prefetch
    #: bucket, reduce bucket); None: FSDP2's one-unit rule (memory/buffers.py)
    deepspeed_buckets: tuple[int, int, int] | None = None

    @property
    def autocast(self) -> bool:
        """Mixed precision runs the forward under ``torch.autocast`` (``Trainer(bf16=True)``):
        it decides which copies LoRA's fp32 adapters keep (memory/activations.py)."""
        return self.precision.startswith("mixed")

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
            if self.deepspeed_buckets is not None:
                live, prefetch, reduce = self.deepspeed_buckets
                out.update(
                    stage3_max_live_parameters=live,
                    stage3_prefetch_bucket_size=prefetch,
                    reduce_bucket_size=reduce,
                )
            if self.amax_history_len:
                out.update(fp8_copies=self.fp8_copies, amax_history_len=self.amax_history_len)
            if self.loss_chunks is not None:
                out["loss_chunks"] = self.loss_chunks
            if self.checkpointing == "full" and (
                self.recompute_method != "uniform" or self.recompute_num_layers is not None
            ):
                out.update(
                    recompute_method=self.recompute_method,
                    recompute_num_layers=self.recompute_num_layers,
                )
            if self.fused_optimizer_step:
                out["fused_optimizer_step"] = True
        else:
            out["kv_dtype"] = self.kv_dtype
            out["prefill_chunk"] = self.prefill_chunk
        if self.part is not None:
            out["part"] = self.part
        out.update(tp=_num(p.tp), pp=_num(p.pp), dp=_num(p.dp), zero=p.zero, sp=p.sp, ep=_num(p.ep))
        if p.cp != 1:
            out.update(cp=_num(p.cp), cp_comm=self.cp_comm)
        if p.virtual_stages != 1 or p.schedule != "1f1b":
            out.update(virtual_stages=_num(p.virtual_stages), schedule=p.schedule)
        if p.shard_group is not None:
            out["shard_group"] = _num(p.shard_group)
        if p.etp is not None or p.edp is not None:
            out.update(
                etp=None if p.etp is None else _num(p.etp),
                edp=None if p.edp is None else _num(p.edp),
            )
        if self.offload:
            out.update(offload=list(self.offload), offload_device=self.offload_device)
        if self.quant:
            out.update(quant=self.quant, group_size=self.group_size, double_quant=self.double_quant)
        if self.lora_rank is not None:
            rank = self.lora_rank if isinstance(self.lora_rank, int) else str(self.lora_rank)
            out.update(
                lora_rank=rank, lora_targets=list(self.lora_targets), lora_dtype=self.lora_dtype
            )
        if self.assumed:
            out["assumed"] = {opt: {"value": v, "source": src} for opt, v, src in self.assumed}
        return out

    def assumptions(self) -> str:
        """One line for people: what was assumed for the options left unset, and from where."""
        if not self.assumed:
            return ""
        return "assumed: " + "; ".join(f"{opt} {v} ({src})" for opt, v, src in self.assumed)

    def summary(self) -> str:
        """One line for people: the choices that decide the bytes."""
        p = self.parallel
        parts = [
            f"precision {self.precision} (weights {self.weight_dtype}, activations "
            f"{self.act_dtype})"
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
            + (f" cp={p.cp} ({self.cp_comm})" if p.cp != 1 else "")
            + (f" vp={p.virtual_stages}" if p.virtual_stages != 1 else "")
            + (f" {p.schedule}" if p.schedule != "1f1b" else "")
            + (f" etp={p.etp}" if p.etp is not None else "")
            + (f" edp={p.edp}" if p.edp is not None else "")
            + (f" hsdp shard group {p.shard_group}" if p.shard_group is not None else "")
        )
        if self.offload:
            parts.append(f"offload {','.join(self.offload)} to {self.offload_device}")
        parts.append(f"{self.device}, {self.attention} attention, as {self.impl} builds it")
        head = "training step" if self.mode == "train" else "inference"
        return f"{head} per GPU: " + "; ".join(parts)


def _num(x: Any) -> int | str:
    """A parallel degree for JSON: an int when it is a number, else its expression."""
    if isinstance(x, int):
        return x
    if isinstance(x, sympy.Integer):
        return int(x)
    return str(x)


@record
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
    # ---- training at scale (issue 14); each 0/1 flag multiplies the terms it switches
    #: context-parallel ranks, and 1 when cp > 1 (keys and values are exchanged)
    cp: sympy.Expr = sympy.Integer(1)
    cp_on: sympy.Expr = sympy.Integer(0)
    #: expert tensor-parallel and expert data-parallel ranks (routed experts)
    etp: sympy.Expr = sympy.Integer(1)
    edp: sympy.Expr = sympy.Integer(1)
    #: the ranks ZeRO shards the dense model states over: dp x cp, or the HSDP shard group
    zero_group: sympy.Expr = sympy.Integer(1)
    #: 1 when the ZeRO stage shards that component over the data-parallel ranks
    zero_weights: sympy.Expr = sympy.Integer(0)
    zero_grads: sympy.Expr = sympy.Integer(0)
    zero_optimizer: sympy.Expr = sympy.Integer(0)
    #: 1 when that state lives in host memory (--offload)
    offload_params: sympy.Expr = sympy.Integer(0)
    offload_optimizer: sympy.Expr = sympy.Integer(0)
    offload_activations: sympy.Expr = sympy.Integer(0)
    #: GPUs per node (host memory per node)
    node_gpus: sympy.Expr = sympy.Integer(8)
    #: pipeline stages whose parameters one rank holds (2 under DualPipe)
    stage_copies: sympy.Expr = sympy.Integer(1)
    #: what in_flight is made of: micro-batches, model chunks per stage, and 0/1 flags for
    #: interleaved 1F1B and DualPipe (read by :meth:`stage_flight` for an uneven split)
    micro_batches: sympy.Expr = sympy.Integer(1)
    virtual_stages: sympy.Expr = sympy.Integer(1)
    interleaved: sympy.Expr = sympy.Integer(0)
    dual: sympy.Expr = sympy.Integer(0)

    @staticmethod
    def names() -> tuple[str, ...]:
        return tuple(f.name for f in fields(Knobs))

    def stage_flight(self, stage: int) -> sympy.Expr:
        """Micro-batches in flight on pipeline stage ``stage`` (:func:`stage_in_flight`)."""
        if stage == 0:
            return self.in_flight
        return stage_in_flight(
            self.pp, self.micro_batches, self.virtual_stages, self.interleaved, self.dual, stage
        )


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
        **{name: sympy.sympify(v) for name, v in _scale_knobs(cfg).items()},
        micro_batches=sympy.sympify(p.pp if p.micro_batches is None else p.micro_batches),
        virtual_stages=sympy.sympify(p.virtual_stages),
        interleaved=sympy.Integer(int(p.interleaved)),
        dual=sympy.Integer(int(p.schedule != "1f1b")),
    )


def _scale_knobs(cfg: MemoryConfig) -> dict[str, Any]:
    """The knobs of issue 14 (context / expert parallelism, ZeRO flags, offload, DualPipe)."""
    p = cfg.parallel
    shards = ZERO_SHARDS[p.zero]
    return {
        "cp": p.cp,
        "cp_on": int(sympy.sympify(p.cp) != 1),
        "etp": p.tp if p.etp is None else p.etp,
        "edp": p.edp if p.edp is not None else _zero_group(p),
        "zero_group": _zero_group(p),
        "zero_weights": int("weights" in shards),
        "zero_grads": int("gradients" in shards),
        "zero_optimizer": int("optimizer" in shards),
        "offload_params": int("params" in cfg.offload),
        "offload_optimizer": int("optimizer" in cfg.offload),
        "offload_activations": int("activations" in cfg.offload),
        "node_gpus": cfg.gpus_per_node,
        "stage_copies": p.stage_copies,
    }


def _zero_group(p: Parallel) -> Any:
    """The ranks ZeRO shards the dense model states over: dp x cp, or the HSDP shard group."""
    if p.shard_group is not None:
        return p.shard_group
    return sympy.sympify(p.dp) * sympy.sympify(p.cp)


def symbolic_knobs() -> Knobs:
    """Every knob as its symbol (:func:`symmem.symbols.knob`); ``in_flight`` from the pipeline
    stages, micro-batches, virtual stages and schedule flags (:func:`symmem.parallel.in_flight`)."""
    k = {name: knob(name) for name in Knobs.names()}
    k["in_flight"] = in_flight(
        k["pp"], k["micro_batches"], k["virtual_stages"], k["interleaved"], k["dual"]
    )
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
        *(_number(v) for v in _scale_knobs(cfg).values()),
        _number(p.virtual_stages),
        int(p.interleaved),
        int(p.schedule != "1f1b"),
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
    "cp",
    "cp_on",
    "etp",
    "edp",
    "zero_group",
    "zero_weights",
    "zero_grads",
    "zero_optimizer",
    "offload_params",
    "offload_optimizer",
    "offload_activations",
    "node_gpus",
    "stage_copies",
    "virtual_stages",
    "interleaved",
    "dual",
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


#: the optimizer when none is named: AdamW, transformers Trainer's default (optim="adamw_torch")
DEFAULT_OPTIMIZER = "adamw"

#: what a model's header may declare for the memory model (symmem.graph.MODEL_OPTIONS)
Declared = Mapping[str, str]


def model_defaults(
    o: MemoryOptions, declared: Declared
) -> tuple[str, str | None, int | None, bool, tuple[tuple[str, str, str], ...]]:
    """(precision, quantization, group size, double quantization, what was assumed) for the
    options ``o`` leaves
    unset (None), from what the model declares (``dtype``, ``quantization``, ``group_size``).

    Inference runs in the model's dtype and checkpoint format; a model that declares no
    dtype runs in fp16 (the seed: inference "usually uses float16 or quantization").
    Training runs mixed precision in the model's 16-bit dtype (fp32 master weights:
    ``Trainer(bf16=True)``, Megatron-LM ``--bf16``); a model that declares fp32 or nothing
    trains in fp32.  A quantized checkpoint is trained only through LoRA adapters (QLoRA
    style); a full fine-tune trains its 16-bit weights.  docs/memory.md, "Defaults".
    """
    assumed: list[tuple[str, str, str]] = []
    dtype = declared.get("dtype")
    declared_q = declared.get("quantization")
    precision = o.precision
    if precision is None:
        if o.mode == "infer":
            precision = dtype or "fp16"
            why = (
                f"the model's dtype = {dtype}"
                if dtype
                else "no dtype declared: fp16, as inference usually runs"
            )
        elif dtype in ("fp16", "bf16"):
            precision = f"mixed-{dtype}"
            why = f"mixed precision in the model's dtype = {dtype}, fp32 master weights"
        else:
            precision = "fp32"
            why = "the model's dtype = fp32" if dtype else "no dtype declared: fp32"
        assumed.append(("precision", precision, f"{why}; --precision changes it"))
    quant = o.quant
    group = o.group_size
    double = o.double_quant
    if quant is None and declared_q is not None:
        if o.mode == "infer" or o.lora_rank is not None:
            quant = declared_q
            if group is None and "group_size" in declared:
                group = int(declared["group_size"])
            double = double or declared.get("double_quant") == "true"
            assumed.append(
                ("quant", quant, "the model's checkpoint format; --quant none for 16-bit weights")
            )
        else:
            assumed.append(
                (
                    "quant",
                    NO_QUANT,
                    f"the checkpoint's {declared_q} weights are not trained: full training of "
                    "16-bit weights; --lora-rank trains adapters over the quantized base",
                )
            )
    if o.optimizer is None and o.mode == "train":
        assumed.append(
            ("optimizer", DEFAULT_OPTIMIZER, "the default, as Trainer runs; --optimizer changes it")
        )
    if quant == NO_QUANT:
        quant = None
    if o.mtp is None and "mtp" in declared:
        if o.mode == "train":
            why = (
                f"the model's mtp = {declared['mtp']} modules, as DeepSeek-V3 trains with them "
                "(report Section 2.2); --no-mtp leaves them out"
            )
        else:
            why = (
                "inference serves the main model without its MTP modules; --mtp for MTP "
                "speculative decoding"
            )
        assumed.append(("mtp", "on" if o.mode == "train" else "off", why))
    return precision, quant, group, double, tuple(assumed)


def mtp_modules(o: MemoryOptions, declared: Declared) -> int | None:
    """The multi-token-prediction modules a build counts: the model's declared ``mtp = N`` in
    training and none at inference unless ``o.mtp`` says otherwise; None when the model
    declares none (its own ``mtp_layers`` value is then left as it is)."""
    if "mtp" not in declared:
        if o.mtp:
            raise OptionError(
                "mtp counts the model's multi-token-prediction modules: this model declares none "
                "(a header's mtp = N)"
            )
        return None
    on = o.mode == "train" if o.mtp is None else o.mtp
    return int(declared["mtp"]) if on else 0


def resolve(
    o: MemoryOptions, declared: Declared | None = None
) -> tuple[MemoryConfig, Optimizer, Quant | None]:
    """The configuration that ``o`` means for a model that declares ``declared`` (its header's
    ``dtype``, ``quantization``, ``group_size``), with the optimizer and quantization presets
    it names.  Options left unset (None) are resolved by :func:`model_defaults`."""
    precision_name, quant_name, group_size, double_quant, assumed = model_defaults(
        o, declared or {}
    )
    par = Parallel(
        o.tp,
        o.pp,
        o.dp,
        o.zero,
        o.sp,
        o.ep,
        o.micro_batches,
        cp=o.cp,
        virtual_stages=o.virtual_stages,
        schedule=o.schedule,
        etp=o.etp,
        edp=o.edp,
        first_layers=o.pp_first_layers,
        last_layers=o.pp_last_layers,
        shard_group=o.shard_group,
    )
    _check_scale(o, par)
    mtp = mtp_modules(o, declared or {})
    prec = get_precision(precision_name)
    opt = get_optimizer(o.optimizer or DEFAULT_OPTIMIZER)
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
    q = get_quant(quant_name) if quant_name else None
    if o.amax_history_len != 1024 and not prec.fp8_meta:
        raise OptionError(
            "amax_history_len is Transformer Engine's FP8 scaling state: it needs --precision "
            "mixed-fp8 or fp8-te"
        )
    if group_size is not None and q is None:
        raise OptionError(
            "group_size needs a quantization (quant=" + "|".join(QUANTS) + ") and must be >= 1"
        )
    if double_quant and (q is None or q.double_quant_group_bytes is None):
        raise OptionError("double_quant applies to nf4 (QLoRA) only")
    if q is not None and o.mode == "train" and o.lora_rank is None:
        raise OptionError(
            "quantized weights are frozen: training them needs LoRA adapters (lora_rank; QLoRA "
            "with nf4)"
        )
    ovh = (
        o.overhead
        if o.overhead is not None
        else (DEFAULT_CUDA_OVERHEAD if o.device == "cuda" else 0)
    )
    if o.rnn == "onednn" and o.device != "cpu" or o.rnn == "cudnn" and o.device != "cuda":
        kernel = {"onednn": "oneDNN is PyTorch's CPU kernel", "cudnn": "cuDNN is CUDA's"}[o.rnn]
        raise OptionError(
            f"--rnn {o.rnn} on --device {o.device}: {kernel} (--rnn native runs on both)"
        )
    if par.sp and par.tp == 1:
        raise OptionError(
            "sequence parallelism splits over the tensor-parallel ranks: it needs tp > 1"
        )
    # PEFT keeps adapters in fp32 when the base is 16-bit
    # (get_peft_model(autocast_adapter_dtype=True), its default); their gradients and states
    # follow them, master weights only for 16-bit adapters
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
        group_size=(group_size or q.group_size) if q else None,
        double_quant=double_quant,
        lora_rank=o.lora_rank,
        lora_targets=o.lora_targets,
        overhead=ovh,
        lora_dtype=la,
        lora_state_dtype=lora_state,
        prefill_chunk=o.prefill_chunk,
        assumed=assumed,
        offload=o.offload,
        offload_device=o.offload_device,
        cp_comm=o.cp_comm,
        gpus_per_node=o.gpus_per_node,
        impl=o.impl
        or (o.policy.impl if o.policy is not None else None)
        or (declared or {}).get("impl")
        or "torch",
        loss=o.loss,
        loss_chunks=o.loss_chunks,
        recompute_method=o.recompute_method,
        recompute_num_layers=o.recompute_num_layers,
        fused_optimizer_step=o.fused_optimizer_step,
        mtp=mtp,
        mtp_explicit=o.mtp is not None,
        part=o.part,
        rnn=o.rnn,
        fp8_copies=prec.fp8_copies,
        amax_history_len=o.amax_history_len if prec.fp8_meta else 0,
        deepspeed_buckets=_deepspeed_buckets(o),
    )
    return cfg, opt, q


#: DeepSpeed's defaults (deepspeed/runtime/zero/config.py, DeepSpeedZeroConfig at edaa722126):
#: stage3_max_live_parameters 1e9, stage3_prefetch_bucket_size 5e7, reduce_bucket_size 5e8
DEEPSPEED_BUCKETS = (10**9, 5 * 10**7, 5 * 10**8)


def _deepspeed_buckets(o: MemoryOptions) -> tuple[int, int, int] | None:
    """DeepSpeed's ZeRO-3 bounds when any of its options is given (the others at DeepSpeed's
    defaults), else None."""
    given = (o.stage3_max_live_parameters, o.stage3_prefetch_bucket_size, o.reduce_bucket_size)
    if all(v is None for v in given):
        return None
    if o.zero != 3:
        raise OptionError(
            "stage3_max_live_parameters, stage3_prefetch_bucket_size and reduce_bucket_size "
            "bound DeepSpeed's ZeRO-3 working buffers: they need zero = 3"
        )
    a, b, c = (d if v is None else v for v, d in zip(given, DEEPSPEED_BUCKETS, strict=True))
    return (a, b, c)


def _check_scale(o: MemoryOptions, par: Parallel) -> None:
    """What the options of issue 14 need of each other (decided on values)."""
    one = sympy.Integer(1)
    if sympy.sympify(par.virtual_stages) != one and sympy.sympify(par.pp) == one:
        raise OptionError("virtual_stages interleaves pipeline stages: it needs pp > 1")
    if par.schedule != "1f1b" and sympy.sympify(par.virtual_stages) != one:
        raise OptionError(f"virtual_stages applies to 1f1b, not to {par.schedule}")
    if par.schedule != "1f1b" and sympy.sympify(par.pp) == one:
        raise OptionError(f"{par.schedule} is a pipeline schedule: it needs pp > 1")
    if par.shard_group is not None:
        if o.zero == 0:
            raise OptionError("shard_group is the group ZeRO shards over: it needs zero >= 1")
        group, ranks = sympy.sympify(par.shard_group), sympy.sympify(par.dp) * sympy.sympify(par.cp)
        if group.is_number and ranks.is_number and ranks % group != 0:
            raise OptionError(
                f"shard_group {group} must divide the dp x cp = {ranks} ranks ZeRO shards over "
                "(HSDP replicates the shards across dp x cp / shard_group groups)"
            )
    if "params" in o.offload and o.zero != 3:
        raise OptionError(
            "offloading parameters keeps each rank's shard on the host: it needs zero = 3 "
            "(ZeRO-Infinity / FSDP CPUOffload)"
        )
    if o.offload and o.mode != "train":
        raise OptionError("offload applies to training (mode train)")
    _check_knobs(o, par)


def _check_knobs(o: MemoryOptions, par: Parallel) -> None:
    """What the training knobs need of the other options."""
    if o.loss_chunks is not None and o.loss not in (
        "chunked_cross_entropy",
        "fused_linear_cross_entropy",
    ):
        raise OptionError(
            "loss_chunks chunks a chunked or fused loss: it needs loss = chunked_cross_entropy "
            "or fused_linear_cross_entropy"
        )
    if (o.recompute_method != "uniform" or o.recompute_num_layers is not None) and (
        o.checkpointing != "full"
    ):
        raise OptionError(
            "recompute_method and recompute_num_layers group the layers of full recompute: they "
            "need checkpointing = full (Megatron-LM --recompute-granularity full)"
        )
    if o.fused_optimizer_step:
        if o.mode != "train":
            raise OptionError("fused_optimizer_step applies to training (mode train)")
        if "optimizer" in o.offload:
            raise OptionError(
                "fused_optimizer_step keeps the step on the GPU in backward; optimizer offload "
                "steps on the host after backward: choose one"
            )
        if sympy.sympify(par.pp) != 1:
            raise OptionError(
                "fused_optimizer_step steps each parameter as its gradient is accumulated: "
                "pipeline micro-batches accumulate gradients first (it needs pp = 1)"
            )
