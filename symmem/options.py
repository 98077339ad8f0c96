"""The memory options, declared once.

:class:`MemoryOptions` is a frozen dataclass: each field is one option of the
memory model, and its metadata (:class:`Option`) carries the help text, the
valid names (read from the registries: precisions, optimizers, quantizations,
dtypes) and the parser of its kind of value.  Everything else is generated
from it: the keyword arguments of :func:`symmem.memory.memory` and
``Model.memory``, the command-line flags of every command that takes memory
options (``symmem.cli._options``), the list of option names in errors, and the
table in docs/memory.md.

Adding an option is one field here, its use in the formulas, a doc line and a test.
"""

from __future__ import annotations

import dataclasses
from collections.abc import Callable, Iterator, Mapping, Sequence
from dataclasses import field
from typing import Any, get_args

import sympy

from symmem.errors import OptionError, suggest
from symmem.optimizers import OPTIMIZER_ALIASES, OPTIMIZERS
from symmem.parallel import Degree
from symmem.policy import ACT_DTYPES, IMPLS, ActPolicy, Attention, Device, Loss, RnnBackend
from symmem.precision import (
    FLOAT_DTYPES,
    KV_DTYPES,
    NO_QUANT,
    PRECISION_ALIASES,
    PRECISIONS,
    QUANTS,
    STATE_DTYPES,
)
from symmem.records import record
from symmem.units import parse_overhead

MODES = ("train", "infer")
#: tokens of one inference forward step: vLLM's default max_num_batched_tokens for `vllm serve`
#: on a GPU of 70 GiB or more (vllm/engine/arg_utils.py, EngineArgs._set_default_args)
DEFAULT_PREFILL_CHUNK = 8192
#: pipeline schedules (docs/memory.md): 1F1B (interleaved with --virtual-stages > 1), DualPipe and
#: DualPipeV (DeepSeek-V3 report, Section 3.2.1 and Table 2; deepseek-ai/DualPipe)
SCHEDULES = ("1f1b", "dualpipe", "dualpipev")
#: how context parallelism exchanges attention's keys and values: ring attention (Liu et al. 2023;
#: Megatron-Core's context parallelism) or all-to-all (DeepSpeed-Ulysses, Jacobs et al. 2023)
CP_COMMS = ("ring", "ulysses")
#: what --offload moves to host memory (ZeRO-Offload, ZeRO-Infinity, FSDP CPUOffload, activation
#: offloading); optimizer offload takes the gradient partitions with it (Ren et al. 2021, Sec. 4)
OFFLOADS = ("optimizer", "params", "activations")
OFFLOAD_DEVICES = ("cpu", "nvme")
CHECKPOINTING = ("none", "full", "selective")
#: how full recompute groups the repeated layers (Megatron-LM --recompute-method;
#: megatron/core/transformer/transformer_block.py, TransformerBlock._checkpointed_forward)
RECOMPUTE_METHODS = ("uniform", "block")
ATTENTIONS: tuple[str, ...] = get_args(Attention)
DEVICES: tuple[str, ...] = get_args(Device)
LOSSES: tuple[str, ...] = get_args(Loss)
RNN_BACKENDS: tuple[str, ...] = get_args(RnnBackend)
#: dtypes of LoRA adapters (and of their gradients and optimizer states)
ADAPTER_DTYPES = ACT_DTYPES
#: LoRA targets of PEFT's LoraConfig for Llama-style models (target_modules=["q_proj", "v_proj"])
DEFAULT_LORA_TARGETS = ("q_proj", "v_proj")


@record
class Option:
    """What the CLI and the docs need to know about one field of :class:`MemoryOptions`.

    ``cli``: the flag's type on the command line (``None``: the option is Python-only,
    such as an activation policy object).  ``flag``: the flag's spelling when it is not
    ``--name-with-dashes`` (``"--dropout/--no-dropout"``).  ``choices``: the valid names,
    read from a registry when asked.  ``parse``: turns what a user gave into the field's
    value (a size string into bytes, ``"a,b"`` into a tuple); it raises OptionError.
    """

    help: str
    cli: Any = None
    flag: str | None = None
    choices: Callable[[], Sequence[str]] | None = None
    parse: Callable[[Any, str], Any] | None = None

    def help_text(self) -> str:
        if self.choices is None:
            return self.help
        return f"{self.help} One of: {', '.join(self.choices())}."


def _opt(default: Any, help: str, cli: Any = None, **kw: Any) -> Any:  # noqa: A002 - the option's help
    return field(default=default, metadata={"option": Option(help, cli, **kw)})


# ---------------------------------------------------------------- parsers (one per kind of value)


def _names(*groups: Mapping[str, Any] | Sequence[str]) -> Callable[[], list[str]]:
    return lambda: [name for g in groups for name in g]


def _degree(value: Any, name: str) -> Degree:
    """A parallel degree: an integer >= 1, or a sympy expression (kept symbolic)."""
    if isinstance(value, bool) or not isinstance(value, int | sympy.Basic):
        raise OptionError(f"{name} must be an integer >= 1, not {value!r}")
    v = sympy.sympify(value)
    if v.is_number:
        if not v.is_Integer or v < 1:
            raise OptionError(f"{name} must be an integer >= 1, not {value}")
        return int(v)
    return v


def _optional_degree(value: Any, name: str) -> Degree | None:
    return None if value is None else _degree(value, name)


def _stage(value: Any, name: str) -> int:
    if isinstance(value, bool) or not isinstance(value, int) or value not in (0, 1, 2, 3):
        raise OptionError(f"zero must be a ZeRO stage 0, 1, 2 or 3, not {value!r}")
    return value


def _flag(value: Any, name: str) -> bool:
    if not isinstance(value, bool):
        raise OptionError(f"{name} must be true or false, not {value!r}")
    return value


def _optional_flag(value: Any, name: str) -> bool | None:
    return None if value is None else _flag(value, name)


def _positive_int(value: Any, name: str) -> int | None:
    if value is None:
        return None
    if isinstance(value, bool) or not isinstance(value, int) or value < 1:
        raise OptionError(f"{name} must be an integer >= 1, not {value!r}")
    return value


def _count(value: Any, name: str) -> int | None:
    """A number of layers: an integer >= 0, or None."""
    if value is None:
        return None
    if isinstance(value, bool) or not isinstance(value, int) or value < 0:
        raise OptionError(f"{name} must be an integer >= 0, not {value!r}")
    return value


def _rank(value: Any, name: str) -> int | sympy.Expr | None:
    """A LoRA rank: an integer >= 1, or a positive integer symbol (to solve / sweep over it)."""
    if value is None:
        return None
    if isinstance(value, bool) or not isinstance(value, int | sympy.Basic):
        raise OptionError(
            f"lora_rank must be an integer >= 1 or a positive integer symbol, not {value!r}"
        )
    rank = sympy.sympify(value)
    if rank.is_Integer and rank >= 1:
        return int(rank)
    if rank.is_integer and rank.is_positive:
        return rank
    raise OptionError(
        f"lora_rank must be an integer >= 1 or a positive integer symbol, not {value}"
    )


def _part(value: Any, name: str) -> str | None:
    """The name of a part of the model (checked against the model when the memory is built)."""
    if value is None:
        return None
    if not isinstance(value, str) or not value.isidentifier():
        raise OptionError(f"part must be the name of a part of the model, not {value!r}"[:200])
    return value


def _targets(value: Any, name: str) -> tuple[str, ...]:
    """``"q_proj,v_proj"`` or a sequence of names -> a tuple; None -> PEFT's default."""
    if value is None:
        return DEFAULT_LORA_TARGETS
    if not isinstance(value, str | list | tuple):
        raise OptionError(f"lora_targets must be matrix names, not {value!r}"[:200])
    items = value.split(",") if isinstance(value, str) else list(value)
    if not all(isinstance(t, str) for t in items):
        raise OptionError(f"lora_targets must be matrix names, not {value!r}")
    targets = tuple(t.strip() for t in items if t.strip())
    return targets or DEFAULT_LORA_TARGETS


def _overhead(value: Any, name: str) -> int | None:
    """Bytes, or a size such as ``"1GiB"`` or ``"0"``; None: the device's default."""
    if value is None:
        return None
    return parse_overhead(value, what="overhead")


def _choice(
    choices: Callable[[], Sequence[str]], optional: bool = False
) -> Callable[[Any, str], Any]:
    known: set[str] = set()  # filled on first use: the registries are data, fixed once imported

    def parse(value: Any, name: str) -> Any:
        if value is None and optional:
            return None
        if isinstance(value, str) and value in known:
            return value
        valid = list(choices())
        known.update(valid)
        if not isinstance(value, str) or value not in valid:
            hint = suggest(str(value), valid)
            raise OptionError(
                f"unknown {name.replace('_', ' ')} '{value}'"
                + (f" ({hint})" if hint else "")
                + f": valid names are {', '.join(valid)}"
            )
        return value

    return parse


def _offload(value: Any, name: str) -> tuple[str, ...]:
    """``"optimizer,params"`` or a sequence of names -> a sorted tuple of :data:`OFFLOADS`."""
    if value is None:
        return ()
    items = value.split(",") if isinstance(value, str) else list(value)
    out: set[str] = set()
    for item in items:
        if not isinstance(item, str):
            raise OptionError(f"offload must name {', '.join(OFFLOADS)}, not {value!r}")
        item = item.strip()
        if not item or item == "none":
            continue
        if item not in OFFLOADS:
            hint = suggest(item, list(OFFLOADS))
            raise OptionError(
                f"unknown offload '{item}'"
                + (f" ({hint})" if hint else "")
                + f": valid names are {', '.join(OFFLOADS)}"
            )
        out.add(item)
    return tuple(n for n in OFFLOADS if n in out)


def _policy(value: Any, name: str) -> ActPolicy | None:
    if value is not None and not isinstance(value, ActPolicy):
        raise OptionError(f"policy must be an ActPolicy or None, not {value!r}"[:200])
    return value


# ---------------------------------------------------------------- the options

_precisions = _names(PRECISIONS, PRECISION_ALIASES)
_optimizers = _names(OPTIMIZERS, OPTIMIZER_ALIASES)
_quants = _names(QUANTS, (NO_QUANT,))


@record
class MemoryOptions:
    """Every choice the memory model takes besides the model (docs/memory.md; defaults in
    docs/conventions.md).  Keyword-only; each value is parsed and checked on creation."""

    mode: str = _opt(
        "train",
        "train (a training step) or infer (inference with a KV cache).",
        str,
        choices=lambda: MODES,
        parse=_choice(lambda: MODES),
    )
    precision: str | None = _opt(
        None,
        "Precision preset (default: from the model: inference in its declared dtype, fp16 if "
        "none; training mixed precision in its 16-bit dtype, fp32 if it declares fp32 or none).",
        str | None,
        choices=_precisions,
        parse=_choice(_precisions, True),
    )
    optimizer: str | None = _opt(
        None,
        "Optimizer (default: adamw, what Trainer and Megatron-LM use).",
        str | None,
        choices=_optimizers,
        parse=_choice(_optimizers, True),
    )
    checkpointing: str = _opt(
        "none",
        "Activation checkpointing.",
        str,
        choices=lambda: CHECKPOINTING,
        parse=_choice(lambda: CHECKPOINTING),
    )
    tp: Degree = _opt(1, "Tensor-parallel ranks.", int, parse=_degree)
    pp: Degree = _opt(1, "Pipeline stages (1F1B).", int, parse=_degree)
    dp: Degree = _opt(1, "Data-parallel ranks (ZeRO shards over them).", int, parse=_degree)
    zero: int = _opt(0, "ZeRO stage 0-3 (FSDP full sharding = 3).", int, parse=_stage)
    sp: bool = _opt(False, "Sequence parallelism (with --tp).", bool, flag="--sp", parse=_flag)
    ep: Degree = _opt(1, "Expert-parallel ranks (MoE routed experts).", int, parse=_degree)
    micro_batches: Degree | None = _opt(
        None,
        "Micro-batches in flight on the first pipeline stage (default: pp).",
        int | None,
        parse=_optional_degree,
    )
    attention: str = _opt(
        "sdpa",
        "Attention implementation for layers that name none.",
        str,
        choices=lambda: ATTENTIONS,
        parse=_choice(lambda: ATTENTIONS),
    )
    device: str = _opt(
        "cuda",
        "What PyTorch saves differs between cuda (default) and cpu.",
        str,
        choices=lambda: DEVICES,
        parse=_choice(lambda: DEVICES),
    )
    dropout: bool = _opt(
        True, "Training dropout active.", bool, flag="--dropout/--no-dropout", parse=_flag
    )
    impl: str | None = _opt(
        None,
        "The implementation whose saved tensors to count (docs/activations.md); default: the "
        "model's `impl = ...` header, else torch.",
        str | None,
        choices=lambda: tuple(IMPLS),
        parse=_choice(lambda: tuple(IMPLS), True),
    )
    loss: str = _opt(
        "cross_entropy",
        "The training loss on the model's output (none: the model's forward only).",
        str,
        choices=lambda: LOSSES,
        parse=_choice(lambda: LOSSES),
    )
    loss_chunks: int | None = _opt(
        None,
        "Chunks of --loss chunked_cross_entropy (default 8, torchtune's) or "
        "fused_linear_cross_entropy (default: Liger-Kernel's chunk rule).",
        int | None,
        parse=_positive_int,
    )
    part: str | None = _opt(
        None,
        "One part of a model of parts alone (--part text: the language model of a "
        "vision-language model; --part decoder); default: the whole model.",
        str | None,
        parse=_part,
    )
    rnn: str = _opt(
        "native",
        "Recurrent kernel: native (ATen's cells), onednn (PyTorch's CPU LSTM default), "
        "cudnn (CUDA; the opaque reserve space estimated as 6 S B h per layer and direction, "
        "unmeasured).",
        str,
        choices=lambda: RNN_BACKENDS,
        parse=_choice(lambda: RNN_BACKENDS),
    )
    weight_dtype: str | None = _opt(
        None,
        "Override the precision's weight dtype.",
        str | None,
        choices=lambda: FLOAT_DTYPES,
        parse=_choice(lambda: FLOAT_DTYPES, True),
    )
    grad_dtype: str | None = _opt(
        None,
        "Override the precision's gradient dtype (fp32: Megatron's gradient buffer).",
        str | None,
        choices=lambda: FLOAT_DTYPES,
        parse=_choice(lambda: FLOAT_DTYPES, True),
    )
    master: bool | None = _opt(
        None,
        "fp32 master weights (default: the precision's).",
        bool | None,
        flag="--master/--no-master",
        parse=_optional_flag,
    )
    grad_fp32_copy: bool = _opt(
        False,
        "An fp32 copy of the gradients in the optimizer (ZeRO-Infinity, Megatron fp16).",
        bool,
        flag="--grad-fp32-copy",
        parse=_flag,
    )
    state_dtype: str | None = _opt(
        None,
        "Optimizer state dtype (default: fp32 beside fp32 master weights (mixed precision) or fp32 "
        "weights; with pure --precision bf16/fp16 the weights' 16-bit dtype, as torch.optim "
        "allocates it; 8-bit optimizers: int8).",
        str | None,
        choices=lambda: STATE_DTYPES,
        parse=_choice(lambda: (*STATE_DTYPES, "int8"), True),
    )
    act_dtype: str | None = _opt(
        None,
        "Override the precision's activation dtype.",
        str | None,
        choices=lambda: ACT_DTYPES,
        parse=_choice(lambda: ACT_DTYPES, True),
    )
    kv_dtype: str | None = _opt(
        None,
        "KV-cache dtype (default: the weights' 16-bit dtype, else the activations').",
        str | None,
        choices=lambda: KV_DTYPES,
        parse=_choice(lambda: KV_DTYPES, True),
    )
    quant: str | None = _opt(
        None,
        "Weight quantization of the linear matrices (default: the model's declared checkpoint "
        "format at inference; none turns it off).",
        str | None,
        choices=_quants,
        parse=_choice(_quants, True),
    )
    group_size: int | None = _opt(
        None,
        "Weights per quantization scale (default: the model's, else the format's: int8 per "
        "row, int4/awq/gptq 128, nf4 64, mxfp4 32, nvfp4 16).",
        int | None,
        parse=_positive_int,
    )
    double_quant: bool = _opt(
        False,
        "nf4 double quantization of the block scales (QLoRA).",
        bool,
        flag="--double-quant",
        parse=_flag,
    )
    lora_rank: int | sympy.Expr | None = _opt(
        None, "LoRA rank r: train adapters only (with --quant nf4: QLoRA).", int | None, parse=_rank
    )
    lora_targets: tuple[str, ...] = _opt(
        DEFAULT_LORA_TARGETS,
        "Comma-separated matrices LoRA adapts (default q_proj,v_proj; all-linear).",
        str | None,
        parse=_targets,
    )
    lora_dtype: str = _opt(
        "fp32",
        "LoRA adapter dtype (PEFT keeps adapters in fp32 by default).",
        str,
        choices=lambda: ADAPTER_DTYPES,
        parse=_choice(lambda: ADAPTER_DTYPES),
    )
    overhead: int | None = _opt(
        None,
        "Framework overhead: bytes or a size (1GiB, 0); default 1 GiB on cuda, 0 on cpu.",
        str | None,
        parse=_overhead,
    )
    prefill_chunk: int | None = _opt(
        DEFAULT_PREFILL_CHUNK,
        "Inference: tokens one forward step processes (chunked prefill; default 8192, vLLM's "
        "max_num_batched_tokens for `vllm serve` on an 80 GB GPU); the step's working set is "
        "that of min(batch x seq_len, this) tokens.",
        int | None,
        parse=_positive_int,
    )
    amax_history_len: int = _opt(
        1024,
        "FP8 training (--precision mixed-fp8 / fp8-te): steps of amax history each FP8 tensor "
        "keeps (Transformer Engine DelayedScaling's amax_history_len, default 1024).",
        int,
        parse=_positive_int,
    )
    recompute_method: str = _opt(
        "uniform",
        "With --checkpointing full: uniform checkpoints groups of --recompute-num-layers layers; "
        "block recomputes that many layers of each pipeline stage and stores the rest.",
        str,
        choices=lambda: RECOMPUTE_METHODS,
        parse=_choice(lambda: RECOMPUTE_METHODS),
    )
    recompute_num_layers: int | None = _opt(
        None,
        "With --checkpointing full: layers per checkpointed group (uniform, default 1) or "
        "recomputed layers per pipeline stage (block, default all).",
        int | None,
        parse=_positive_int,
    )
    fused_optimizer_step: bool = _opt(
        False,
        "The optimizer steps each parameter in backward as soon as its gradient is accumulated "
        "(register_post_accumulate_grad_hook): one gradient alive at a time.",
        bool,
        flag="--fused-optimizer-step",
        parse=_flag,
    )
    mtp: bool | None = _opt(
        None,
        "Count the model's multi-token-prediction modules (its header's mtp = N; DeepSeek-V3). "
        "Default: in training (DeepSeek-V3 trains with them), not at inference (served without "
        "them unless MTP speculative decoding is on).",
        bool | None,
        flag="--mtp/--no-mtp",
        parse=_optional_flag,
    )
    # ------------------------------------------------------------ training at scale (issue 14)
    cp: Degree = _opt(
        1, "Context-parallel ranks: the sequence split over them (--cp-comm).", int, parse=_degree
    )
    cp_comm: str = _opt(
        "ring",
        "How context parallelism exchanges keys and values.",
        str,
        choices=lambda: CP_COMMS,
        parse=_choice(lambda: CP_COMMS),
    )
    virtual_stages: Degree = _opt(
        1,
        "Model chunks per pipeline stage (interleaved 1F1B when > 1).",
        int,
        parse=_degree,
    )
    schedule: str = _opt(
        "1f1b",
        "Pipeline schedule.",
        str,
        choices=lambda: SCHEDULES,
        parse=_choice(lambda: SCHEDULES),
    )
    etp: Degree | None = _opt(
        None,
        "Expert tensor-parallel ranks for routed experts (default: tp).",
        int | None,
        parse=_optional_degree,
    )
    edp: Degree | None = _opt(
        None,
        "Expert data-parallel ranks that ZeRO shards routed experts over (default: dp).",
        int | None,
        parse=_optional_degree,
    )
    shard_group: Degree | None = _opt(
        None,
        "HSDP: ZeRO shards the model states over groups of this many ranks (inside a node) "
        "and replicates them across the groups (FSDP HYBRID_SHARD with --zero 3, "
        "_HYBRID_SHARD_ZERO2 with --zero 2); default: over all dp x cp ranks.",
        int | None,
        parse=_optional_degree,
    )
    stage3_max_live_parameters: int | None = _opt(
        None,
        "DeepSpeed ZeRO-3: gathered parameters (elements) past which it prefetches no more "
        "(its default 1e9 when any stage3/reduce bucket option is given; unset: FSDP2's "
        "one-unit prefetch).",
        int | None,
        parse=_count,
    )
    stage3_prefetch_bucket_size: int | None = _opt(
        None,
        "DeepSpeed ZeRO-3: parameter elements gathered ahead of use (default 5e7 in "
        "DeepSpeed mode).",
        int | None,
        parse=_count,
    )
    reduce_bucket_size: int | None = _opt(
        None,
        "DeepSpeed ZeRO-3: gradient elements of its reduce-scatter bucket (default 5e8 in "
        "DeepSpeed mode).",
        int | None,
        parse=_count,
    )
    offload: tuple[str, ...] = _opt(
        (),
        "Comma-separated states moved to host memory: optimizer (with the gradients), params, "
        "activations.",
        str | None,
        parse=_offload,
    )
    offload_device: str = _opt(
        "cpu",
        "Where --offload puts them (nvme: only pinned staging buffers stay in host memory).",
        str,
        choices=lambda: OFFLOAD_DEVICES,
        parse=_choice(lambda: OFFLOAD_DEVICES),
    )
    gpus_per_node: int = _opt(
        8, "GPUs per node (host memory is reported per node).", int, parse=_positive_int
    )
    pp_first_layers: int | None = _opt(
        None,
        "Repeated layers on the first pipeline stage, the rest split evenly over the stages "
        "after it (Megatron-LM's --decoder-first-pipeline-num-layers).",
        int | None,
        parse=_count,
    )
    pp_last_layers: int | None = _opt(
        None,
        "Repeated layers on the last pipeline stage (Megatron-LM's "
        "--decoder-last-pipeline-num-layers).",
        int | None,
        parse=_count,
    )
    #: an :class:`symmem.activations.ActPolicy` that replaces the one built from attention /
    #: device / dropout / the activation dtype (Python only)
    policy: ActPolicy | None = _opt(
        None, "An activation policy object (Python only).", None, parse=_policy
    )

    def __post_init__(self) -> None:
        for name, parse in _PARSERS:
            object.__setattr__(self, name, parse(getattr(self, name), name))

    # ------------------------------------------------------------ construction
    @classmethod
    def from_user(cls, options: Mapping[str, Any]) -> MemoryOptions:
        """From keyword options a user wrote: an unknown name is an OptionError with a hint."""
        valid = _NAMES
        for name in options:
            if name not in valid:
                hint = suggest(name, list(valid))
                raise OptionError(
                    f"unknown memory option '{name}'"
                    + (f" ({hint})" if hint else "")
                    + f": valid options are {', '.join(valid)}"
                )
        return cls(**options)

    def replace(self, **changes: Any) -> MemoryOptions:
        """A copy with some options changed (checked again)."""
        if not changes:
            return self
        return MemoryOptions.from_user({**self.as_dict(), **changes})

    def as_dict(self) -> dict[str, Any]:
        return {name: getattr(self, name) for name in _NAMES}

    def changed(self) -> dict[str, Any]:
        """The options that differ from their defaults."""
        return {name: v for name, v in self.as_dict().items() if v != _DEFAULTS[name]}


def option_fields() -> Iterator[tuple[dataclasses.Field[Any], Option]]:
    """Each field of :class:`MemoryOptions` with its :class:`Option`."""
    for f in dataclasses.fields(MemoryOptions):
        yield f, f.metadata["option"]


def option_names() -> tuple[str, ...]:
    """The names :func:`symmem.memory.memory` takes as keyword options."""
    return _NAMES


_NAMES: tuple[str, ...] = tuple(f.name for f in dataclasses.fields(MemoryOptions))


_PARSERS: tuple[tuple[str, Callable[[Any, str], Any]], ...] = tuple(
    (f.name, f.metadata["option"].parse)
    for f in dataclasses.fields(MemoryOptions)
    if f.metadata["option"].parse
)
_DEFAULTS: dict[str, Any] = MemoryOptions().as_dict()
