"""Model states: weights, gradients and optimizer state, per GPU.

Per parameter tensor: its bytes in the weight dtype (or its quantized layout),
split by tensor parallelism where the layer marks it (``ParamTensor.tp_split``,
the output head always) and by expert parallelism for routed experts; then,
for trainable tensors, gradients in the gradient dtype, fp32 master weights
and an fp32 gradient copy where the precision keeps them, and the optimizer's
state (:mod:`symmem.optimizers`).  ZeRO partitions over the data-parallel
ranks what :data:`ZERO_SHARDS` says (Rajbhandari et al. 2020, Section 5 and
Figure 1).  LoRA adapters (Hu et al. 2022) are trainable tensors of their own.
"""

from __future__ import annotations

import sympy

from symmem.errors import OptionError
from symmem.memory.context import FP32, Build
from symmem.memory.placement import Place, Staged, Sum
from symmem.options import DEFAULT_LORA_TARGETS
from symmem.parallel import is_routed_expert, tp_splits
from symmem.precision import DTYPE_BYTES

#: what each ZeRO stage partitions over the data-parallel ranks (Rajbhandari et al. 2020,
#: Section 5: P_os, P_os+g, P_os+g+p; FSDP SHARD_GRAD_OP = 2, FULL_SHARD = 3)
ZERO_SHARDS: dict[int, frozenset[str]] = {
    0: frozenset(),
    1: frozenset({"optimizer"}),
    2: frozenset({"optimizer", "gradients"}),
    3: frozenset({"optimizer", "gradients", "weights"}),
}

#: (gradient bytes, fp32 master copy (0/1), fp32 gradient copy (0/1), state bytes) of a kind of
#: trainable tensor
_Kind = tuple[sympy.Expr, sympy.Expr, sympy.Expr, sympy.Expr]


def model_states(b: Build) -> tuple[Staged, Staged, Staged]:
    """Weights, gradients and optimizer state, each split by pipeline part."""
    cfg, k = b.cfg, b.k
    shards = ZERO_SHARDS[b.par.zero]
    train = cfg.mode == "train"
    wb, gb, sb = k.weight_bytes, k.grad_bytes, k.state_bytes
    weights, grads, opt = Staged(), Staged(), Staged()
    lora = cfg.lora_rank is not None
    r = sympy.sympify(cfg.lora_rank or 0)
    matched = False
    base_kind: _Kind = (gb, k.master, k.grad_copy, sb)
    lb = DTYPE_BYTES[cfg.lora_dtype]
    lora16 = cfg.lora_dtype != "fp32"
    none = sympy.Integer(0)
    lora_kind: _Kind = (
        lb,
        k.master if lora16 else none,
        k.grad_copy if lora16 else none,
        DTYPE_BYTES[cfg.lora_state_dtype],
    )

    def shard(amount: sympy.Expr, component: str) -> sympy.Expr:
        return amount / k.dp if component in shards else amount

    def trainable_bytes(
        place: Place,
        shape_numel: sympy.Expr,
        state: tuple[sympy.Expr, sympy.Expr],
        split: sympy.Expr,
        row: dict[str, Sum],
        kind: _Kind = base_kind,
    ) -> None:
        g_bytes, has_master, has_copy, s_bytes = kind
        g = place.mult * shape_numel * g_bytes / split
        o = place.mult * shape_numel * FP32 * (has_master + has_copy) / split
        full, scales = state
        o += place.mult * (full * s_bytes + scales) / split
        g, o = shard(g, "gradients"), shard(o, "optimizer")
        grads.add(place.stage, g)
        opt.add(place.stage, o)
        row["gradients"] += g
        row["optimizer"] += o

    for place in b.places:
        node = place.node
        row = b.row(place)
        for t in node.layer.tensors():
            # a tied weight is stored once, at its owner; with pipeline stages the last
            # stage keeps its own copy of a tied output head (Megatron-LM: word embeddings
            # on the first and last stage, gradients all-reduced between them)
            if node.tie and t.name == "weight" and not (b.pp_on and place.stage == "post"):
                continue
            split = sympy.Integer(1)
            if tp_splits(t, output_head=node.path == b.head):
                split *= k.tp
            if is_routed_expert(t):
                split *= k.ep
            quantized = b.quantized(place, t)
            w = shard(
                place.mult * (b.quant_bytes(t) if quantized else t.numel * wb) / split, "weights"
            )
            weights.add(place.stage, w)
            row["weights"] += w
            frozen = t.buffer or quantized or lora
            if train and not frozen:
                trainable_bytes(place, t.numel, b.opt.state_numel(t.shape, t.copies), split, row)
            if lora and b.lora_target(place, t):
                matched = True
                # LoRA (Hu et al. 2022): A (r x in) and B (out x r) per targeted matrix,
                # replicated under tensor parallelism (conservative)
                out_f, in_f = t.shape
                a_shape, b_shape = (r, in_f), (out_f, r)
                n = t.copies * r * (in_f + out_f)
                esplit = k.ep if is_routed_expert(t) else sympy.Integer(1)
                aw = shard(place.mult * n * lb / esplit, "weights")
                weights.add(place.stage, aw)
                row["weights"] += aw
                if train:
                    sa = b.opt.state_numel(a_shape, t.copies)
                    sbb = b.opt.state_numel(b_shape, t.copies)
                    trainable_bytes(
                        place, n, (sa[0] + sbb[0], sa[1] + sbb[1]), esplit, row, lora_kind
                    )
    # every target a user names must match (PEFT's default list need only match somewhere)
    missed = [t for t in cfg.lora_targets if t not in b.lora_matched]
    if cfg.lora_targets == DEFAULT_LORA_TARGETS:
        missed = []
    if lora and (not matched or missed):
        names = sorted(
            {
                t.name.removesuffix(".weight").rsplit(".", 1)[-1]
                for p in b.places
                for t in p.node.layer.tensors()
                if t.matmul
            }
        )
        raise OptionError(
            f"no matrix matches the LoRA target{'s' if len(missed) > 1 else ''} "
            f"{', '.join(missed or cfg.lora_targets)}: "
            f"matrix names are {', '.join(names) or '(none)'}, or all-linear"
        )
    return weights, grads, opt
