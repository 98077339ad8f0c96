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
from symmem.layers.base import ParamTensor
from symmem.memory.config import ZERO_SHARDS  # noqa: F401 - re-exported (the stages as data)
from symmem.memory.context import FP32, Build
from symmem.memory.placement import Place, Staged, Sum, largest
from symmem.options import DEFAULT_LORA_TARGETS
from symmem.parallel import is_routed_expert, tp_splits
from symmem.precision import DTYPE_BYTES

#: (gradient bytes, fp32 master copy (0/1), fp32 gradient copy (0/1), state bytes) of a kind of
#: trainable tensor
_Kind = tuple[sympy.Expr, sympy.Expr, sympy.Expr, sympy.Expr]


#: FP8 tensors of one GEMM with delayed scaling: input, weight and output in the forward, the
#: output's and the input's gradients in the backward (Transformer Engine
#: module/base.py, TransformerEngineBaseModule.set_meta_tensor: num_gemms x 3 and x 2)
FP8_TENSORS_PER_GEMM = 5


def fp8_extras(
    b: Build, place: Place, t: ParamTensor, split: sympy.Expr, zero_share: sympy.Expr
) -> sympy.Expr:
    """Transformer Engine's FP8 training extras of one GEMM weight, per GPU: its FP8 copies
    (``fp8_copies`` bytes per element: the cast TE caches in ``_fp8_workspaces`` and its
    transpose for the dgrad GEMM), sharded like the weight (``zero_share``: 1 / the ZeRO
    group under ZeRO-3, as Megatron's --fp8-param-gather gathers FP8 shards), and the delayed-
    scaling state of each GEMM (one per expert copy on this rank): for each of its 5 FP8
    tensors an fp32 amax history of ``amax_history_len`` steps and an fp32 scale
    (transformer_engine/pytorch/quantization.py, DelayedScalingRecipeState: ``scale`` of
    num_quantizers, ``amax_history`` of amax_history_len x num_quantizers, torch.float32)."""
    cfg = b.cfg
    copies = place.mult * t.numel * cfg.fp8_copies * DTYPE_BYTES["fp8"] / split * zero_share
    if not cfg.amax_history_len:
        return copies
    gemms = place.mult * t.copies / (b.k.ep if is_routed_expert(t) else 1)
    per_gemm = FP8_TENSORS_PER_GEMM * (cfg.amax_history_len + 1) * FP32
    return copies + gemms * per_gemm


def model_states(b: Build) -> tuple[Staged, Staged, Staged]:
    """Weights, gradients and optimizer state, each split by pipeline part."""
    cfg, k = b.cfg, b.k
    train = cfg.mode == "train"
    gb, sb = k.grad_bytes, k.state_bytes
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

    # ZeRO partitions over the data-parallel ranks, which include the context-parallel ones
    # (Megatron-LM's distributed optimizer shards over the dp x cp group); routed experts over
    # their own expert data-parallel ranks (Megatron-Core: world / (etp x ep x pp)).  A 0/1
    # knob per component (zero_weights...) keeps the stage a number for the layout search.
    flags = {"weights": k.zero_weights, "gradients": k.zero_grads, "optimizer": k.zero_optimizer}
    # HSDP (FSDP HYBRID_SHARD): over the shard group only, replicated across the groups
    dense_group, expert_group = k.zero_group, k.edp

    def shard(amount: sympy.Expr, component: str, expert: bool = False) -> sympy.Expr:
        group = expert_group if expert else dense_group
        return amount / (1 + flags[component] * (group - 1))

    on_host = cfg.offload_device == "cpu"
    #: PyTorch's "How to save memory by fusing the optimizer step into the backward pass"
    #: (register_post_accumulate_grad_hook): the largest single gradient, not their sum
    fused = train and cfg.fused_optimizer_step
    singles: list[sympy.Expr] = []

    def offload(place: Place, amount: sympy.Expr, flag: sympy.Expr) -> sympy.Expr:
        """The GPU's part of ``amount``; the host's (``flag`` = 1: offloaded) goes to b.host.
        ZeRO-Offload (Ren et al. 2021, Section 4) keeps the fp32 parameters, the optimizer
        states and the gradients of each rank's partition in (pinned) CPU memory; on NVMe
        (ZeRO-Infinity) host memory keeps none of it."""
        if on_host:
            b.host.add(place.stage, amount * flag, place.repeat)
        return amount * (1 - flag)

    def trainable_bytes(
        place: Place,
        shape_numel: sympy.Expr,
        state: tuple[sympy.Expr, sympy.Expr],
        split: sympy.Expr,
        row: dict[str, Sum],
        kind: _Kind = base_kind,
        expert: bool = False,
    ) -> None:
        g_bytes, has_master, has_copy, s_bytes = kind
        g = place.weight_mult * shape_numel * g_bytes / split
        o = place.weight_mult * shape_numel * FP32 * (has_master + has_copy) / split
        full, scales = state
        o += place.weight_mult * (full * s_bytes + scales) / split
        g, o = shard(g, "gradients", expert), shard(o, "optimizer", expert)
        if fused:
            # the optimizer step fused into backward: this tensor's gradient is freed as soon
            # as it is accumulated and stepped; one gradient (of one iteration) at a time
            singles.append(g / place.mult)
        else:
            g = offload(place, g, k.offload_optimizer)
            grads.add(place.stage, g, place.repeat)
            row["gradients"] += g
        o = offload(place, o, k.offload_optimizer)
        opt.add(place.stage, o, place.repeat)
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
            expert = is_routed_expert(t)
            if tp_splits(t, output_head=node.path == b.head):
                # routed experts split over the expert tensor-parallel ranks (Megatron-Core
                # --expert-tensor-parallel-size, default tp)
                split *= k.etp if expert else k.tp
            if expert:
                split *= k.ep
            quantized = b.quantized(place, t)
            w = shard(
                place.weight_mult
                * (b.quant_bytes(t) if quantized else t.numel * b.weight_elem_bytes(place, t))
                / split,
                "weights",
                expert,
            )
            w = offload(place, w, k.offload_params)
            frozen = t.buffer or quantized or lora
            if train and not frozen and b.te_gemm(place, t):
                w += fp8_extras(b, place, t, split, shard(sympy.Integer(1), "weights", expert))
            weights.add(place.stage, w, place.repeat)
            row["weights"] += w
            if train and not frozen:
                trainable_bytes(
                    place,
                    t.numel,
                    b.opt.state_numel(t.shape, t.copies),
                    split,
                    row,
                    expert=expert,
                )
            if lora and b.lora_target(place, t):
                matched = True
                # LoRA (Hu et al. 2022): A (r x in) and B (out x r) per targeted matrix,
                # replicated under tensor parallelism (conservative)
                out_f, in_f = t.shape
                a_shape, b_shape = (r, in_f), (out_f, r)
                n = t.copies * r * (in_f + out_f)
                esplit = k.ep if is_routed_expert(t) else sympy.Integer(1)
                aw = shard(place.weight_mult * n * lb / esplit, "weights")
                weights.add(place.stage, aw, place.repeat)
                row["weights"] += aw
                if train:
                    sa = b.opt.state_numel(a_shape, t.copies)
                    sbb = b.opt.state_numel(b_shape, t.copies)
                    trainable_bytes(
                        place, n, (sa[0] + sbb[0], sa[1] + sbb[1]), esplit, row, lora_kind
                    )
    if singles:
        grads.add("pre", largest(*singles))
    if train and b.opt.paged:
        b.notes.append(
            f"{b.opt.name} keeps its state paged (CUDA unified memory, bitsandbytes is_paged): "
            "the optimizer component is counted on the GPU, where it lives until the GPU runs "
            "short; then the driver pages it out to host memory instead of failing"
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
