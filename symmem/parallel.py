"""Parallelism as data: degrees and the rule for what each degree splits.

Degrees are ints (or sympy expressions, to keep a degree symbolic in tests
and sweeps).  The rules are conservative where frameworks differ: a tensor
is split only when Megatron-LM splits it (Shoeybi et al. 2019; Megatron-Core
``ColumnParallelLinear`` / ``RowParallelLinear`` / ``VocabParallelEmbedding``);
anything else is replicated.
"""

from __future__ import annotations

from typing import TypeAlias

import sympy

from symmem.errors import OptionError
from symmem.layers.base import ParamTensor
from symmem.records import record

Degree: TypeAlias = int | sympy.Expr


def _check(name: str, value: Degree, low: int = 1) -> sympy.Expr:
    v = sympy.sympify(value)
    if v.is_number and (not v.is_integer or v < low):
        raise OptionError(f"{name} must be an integer >= {low}, not {value}")
    return v


@record
class Parallel:
    """Per-GPU view of a parallel training / inference job.

    ``tp``: tensor parallel (Shoeybi et al. 2019); ``sp``: sequence parallel
    on top of it (Korthikanti et al. 2022); ``pp``: pipeline stages
    (Narayanan et al. 2021, 1F1B); ``micro_batches``: micro-batches in
    flight on the first stage (None: pp, the 1F1B steady state); ``dp``:
    data-parallel ranks; ``zero``: ZeRO stage 0-3 over the dp ranks
    (Rajbhandari et al. 2020; FSDP FULL_SHARD = 3, SHARD_GRAD_OP = 2);
    ``ep``: expert parallel, routed experts split over ep ranks.  ``cp``: context parallel,
    the sequence split over cp ranks.  ``virtual_stages``: model chunks per pipeline stage
    (interleaved 1F1B, Narayanan et al. 2021, Section 2.2).  ``schedule``: 1f1b, dualpipe or
    dualpipev (DeepSeek-V3 report, Table 2).  ``etp``: expert tensor parallel (None: tp);
    ``edp``: the data-parallel ranks ZeRO shards routed experts over (None: dp).
    """

    tp: Degree = 1
    pp: Degree = 1
    dp: Degree = 1
    zero: int = 0
    sp: bool = False
    ep: Degree = 1
    micro_batches: Degree | None = None
    cp: Degree = 1
    virtual_stages: Degree = 1
    schedule: str = "1f1b"
    etp: Degree | None = None
    edp: Degree | None = None
    #: repeated layers on the first and the last pipeline stage (None: an even share), the rest
    #: split evenly over the stages between (Megatron-LM's --decoder-first-pipeline-num-layers
    #: and --decoder-last-pipeline-num-layers)
    first_layers: int | None = None
    last_layers: int | None = None
    #: HSDP: the ranks ZeRO shards the model states over (None: all dp x cp ranks); the groups
    #: replicate them (PyTorch FSDP ShardingStrategy.HYBRID_SHARD, FSDP2's 2-D device mesh)
    shard_group: Degree | None = None

    def __post_init__(self) -> None:
        for name in ("etp", "edp", "shard_group"):
            if getattr(self, name) is not None:
                object.__setattr__(self, name, _check(name, getattr(self, name)))
        for name in ("tp", "pp", "dp", "ep", "cp", "virtual_stages"):
            object.__setattr__(self, name, _check(name, getattr(self, name)))
        if self.micro_batches is not None:
            object.__setattr__(self, "micro_batches", _check("micro_batches", self.micro_batches))
        if self.zero not in (0, 1, 2, 3):
            raise OptionError(f"zero must be a ZeRO stage 0, 1, 2 or 3, not {self.zero}")

    @property
    def in_flight(self) -> sympy.Expr:
        """Micro-batches whose activations the first pipeline stage holds, in units of one
        micro-batch of one stage's layers: 1F1B min(m, pp) (Narayanan et al. 2021); interleaved
        1F1B with v chunks pp (1 + (pp - 1) / (pp v)) (Megatron-LM
        theoretical_memory_usage.py, compute_activation_memory: the interleaved schedule's
        memory penalty); DualPipe and DualPipeV pp + 1 (DeepSeek-V3 report, Table 2)."""
        return in_flight(
            self.pp,
            self.pp if self.micro_batches is None else self.micro_batches,
            self.virtual_stages,
            int(self.interleaved),
            int(self.schedule != "1f1b"),
        )

    @property
    def interleaved(self) -> bool:
        """Interleaved 1F1B: more than one model chunk per stage (a value, decided on numbers:
        a symbolic virtual_stages counts as interleaved)."""
        return self.schedule == "1f1b" and sympy.sympify(self.virtual_stages) != 1

    @property
    def stage_copies(self) -> int:
        """Stages whose parameters one rank holds: 2 under DualPipe (two copies of the model's
        parameters, DeepSeek-V3 report Section 3.2.1), else 1."""
        return 2 if self.schedule == "dualpipe" else 1


def in_flight(
    pp: Degree, micro_batches: Degree, vp: Degree, interleaved: Degree, dual: Degree
) -> sympy.Expr:
    """The micro-batches in flight on the first stage (:attr:`Parallel.in_flight`), from numbers or
    symbols: ``interleaved`` and ``dual`` are 0 or 1 (interleaved 1F1B; DualPipe / DualPipeV)."""
    pp, m, vp = sympy.sympify(pp), sympy.sympify(micro_batches), sympy.sympify(vp)
    if pp == 1:
        return sympy.Integer(1)
    penalty = 1 + interleaved * (pp - 1) / (pp * vp)
    return sympy.Min(m, pp) * penalty + dual


def stage_in_flight(
    pp: Degree, micro_batches: Degree, vp: Degree, interleaved: Degree, dual: Degree, stage: int
) -> sympy.Expr:
    """The micro-batches in flight on pipeline stage ``stage`` (0: the first, :func:`in_flight`),
    in units of one micro-batch of that stage's layers.  1F1B: min(m, pp - s) (Narayanan et al.
    2021: stage s runs pp - s - 1 warm-up forwards, Megatron-LM's
    ``forward_backward_pipelining_without_interleaving``); interleaved 1F1B with v chunks:
    min(m v, (pp - s - 1) 2 + (v - 1) pp + 1) chunks of 1/v of the stage (the warm-up micro-batches
    of ``forward_backward_pipelining_with_interleaving``, plus the one in its steady state),
    which at s = 0 is the first stage's pp (1 + (pp - 1) / (pp v)); DualPipe and DualPipeV:
    pp + 1 on every rank (DeepSeek-V3 report, Table 2: per device)."""
    first = in_flight(pp, micro_batches, vp, interleaved, dual)
    dual = sympy.sympify(dual)
    if stage == 0 or dual == 1:
        return first
    pp, m, vp = sympy.sympify(pp), sympy.sympify(micro_batches), sympy.sympify(vp)
    plain = sympy.Min(m, pp - stage)
    chunks = sympy.Min(m * vp, 2 * (pp - stage - 1) + (vp - 1) * pp + 1) / vp
    mine = plain + sympy.sympify(interleaved) * (chunks - plain)
    # dual is 0 or 1 (a symbol in the fast evaluator): each flag multiplies its terms
    return mine if dual == 0 else dual * first + (1 - dual) * mine


def tp_splits(tensor: ParamTensor, *, output_head: bool = False) -> bool:
    """Does tensor parallelism split this tensor?  Each layer kind marks its split
    tensors (``ParamTensor.tp_split``: Megatron-LM's column / row-parallel matrices,
    vocab-parallel embeddings); the model's output head is column-parallel wherever it is.
    Biases and norms stay replicated (conservative: Megatron splits the column-parallel
    biases too, a few thousand values per layer)."""
    return tensor.tp_split or (output_head and len(tensor.shape) >= 2)


def is_routed_expert(tensor: ParamTensor) -> bool:
    """Expert parallelism splits the routed experts (the tensors with an ``active`` count)."""
    return tensor.active is not None
