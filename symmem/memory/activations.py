"""Training activations per GPU: what the step keeps for backward, recompute, and the transient
peak.

The saved tensors come from :func:`symmem.activations.saved_tensors` (each layer
kind says what it keeps); here they become bytes under the configuration:
the dtype classes resolved, tensor and sequence parallelism (Korthikanti et
al. 2022, Section 4.2), selective and full recompute (Section 5; Chen et al.
2016), the micro-batches the first pipeline stage holds (Narayanan et al.
2021, 1F1B) and LoRA's adapter intermediates.
"""

from __future__ import annotations

import sympy

from symmem.activations import GradFlow, SavedEntry, saved_tensors, transient
from symmem.errors import OptionError
from symmem.layers.base import Saved, prod
from symmem.memory.context import Build
from symmem.memory.placement import Staged, largest
from symmem.precision import DTYPE_BYTES
from symmem.values import substitute


def activations(b: Build) -> tuple[sympy.Expr, list[str]]:
    """Bytes of activations kept for backward on the busiest GPU, and notes."""
    cfg = b.cfg
    stage_of = {p.node.path: p.stage for p in b.places}
    entries = saved_tensors(b.graph, b.policy, b.values, grad_flow(b)) + lora_saved(b)
    if cfg.checkpointing == "selective":
        # Korthikanti et al. 2022, Section 5: recompute the attention core (QK^T, softmax,
        # its dropout, attention over V); keep everything else
        entries = [e for e in entries if not e.saved.core]
    staged = Staged()
    notes: list[str] = []
    by_place = {p.node.path: p for p in b.places}
    for e in entries:
        if e.path in by_place:
            b.row(by_place[e.path])["activations"] += e.multiplicity * b.entry_bytes(
                e.path, e.saved
            )
    recompute: list[sympy.Expr] = []
    if cfg.checkpointing == "full":
        if not b.repeats:
            notes.append(
                "full checkpointing recomputes repeated blocks: the model has no repeat, nothing "
                "is recomputed"
            )
        entries, checkpoints, recompute = full_recompute(b, entries)
        for path, amount in checkpoints.items():
            staged.add("repeat", amount, path)
    for e in entries:
        stage = stage_of.get(e.path, "post")
        staged.add(stage, e.multiplicity * b.entry_bytes(e.path, e.saved), e.repeat)
    # activation offloading (CPU checkpointing: DeepSpeed's cpu_checkpointing; Megatron-Core's
    # activation offloading): what the repeated layers keep for backward waits in host memory;
    # what sits outside the repeats stays on the GPU
    off = b.k.offload_activations
    if off != 0:
        if b.cfg.offload_device == "cpu":
            for inner, amount in staged.by_repeat.items():
                b.host.add("repeat", amount.value() * off * b.k.in_flight, inner)
        staged.scale_repeat(1 - off)
    total = b.share(staged, activations=True)
    if recompute:
        total += largest(*recompute)
    return total, notes


def full_recompute(
    b: Build, entries: list[SavedEntry]
) -> tuple[list[SavedEntry], dict[str, sympy.Expr], list[sympy.Expr]]:
    """Full activation checkpointing of the repeated blocks (Chen et al. 2016; Megatron-LM
    ``--recompute-granularity full``), grouped as Megatron-Core's
    ``TransformerBlock._checkpointed_forward`` groups them (``--recompute-method``,
    ``--recompute-num-layers N``) over the iterations of each model chunk (pp x v chunks):

    * ``uniform`` (default N = 1): groups of N iterations, each keeping only its input
      (Korthikanti et al. 2022, Table 2: 2sbh per layer in 16 bits), ceil(L_chunk / N) per
      chunk; in backward one group is recomputed at a time, so N iterations' sets of saved
      tensors are alive besides, less the group's input, which is the stored checkpoint
      itself (Megatron's ``CheckpointFunction`` recomputes from ``detach_variable(inputs)``:
      the same storage);
    * ``block``: the first N iterations of each chunk keep only their input, the others
      everything; one iteration is recomputed at a time.

    The recomputed set is the largest over the repeat groups."""
    cfg = b.cfg
    kept: list[SavedEntry] = []
    checkpoints: dict[str, sympy.Expr] = {}
    per_iteration: dict[str, dict[tuple[str, str], sympy.Expr]] = {}
    inputs: dict[str, sympy.Expr] = {}
    for e in entries:
        rep = b.repeats.get(e.repeat) if e.repeat else None
        if rep is None or e.repeat is None:
            kept.append(e)
            continue
        sets = per_iteration.setdefault(e.repeat, {})
        block_input = e.saved.ref == "input" and e.path == rep.first_layer
        if not block_input:
            sets[(e.path, e.saved.name)] = b.entry_bytes(e.path, e.saved)
        else:
            inputs[e.repeat] = b.entry_bytes(e.path, e.saved)
        edge_out = (
            e.saved.ref == "output" and e.path == rep.last_layer and e.multiplicity == rep.outer
        )
        if edge_out and substitute(sympy.sympify(rep.group.count), dict(b.values)) != 1:
            kept.append(e)  # the last iteration's output, saved by the layer after the repeat
    seq_split = b.k.tp if b.par.sp else sympy.Integer(1)
    group = sympy.Integer(cfg.recompute_num_layers or 1)
    grouped = group != 1 or (cfg.recompute_method == "block" and cfg.recompute_num_layers)
    if grouped and (b.stage_split is not None or b.par.schedule != "1f1b"):
        raise OptionError(
            "recompute_num_layers groups the layers of equal pipeline chunks: it needs an even "
            "split and the 1f1b schedule"
        )
    # model chunks the repeats are split over: Megatron groups the layers of each chunk
    chunks = b.k.pp * b.k.virtual_stages if b.pp_on else sympy.Integer(1)
    recompute = []
    for path, sets in per_iteration.items():
        rep = b.repeats[path]
        stream = prod(rep.group.in_shape) * DTYPE_BYTES[b.cfg.act_dtype] / seq_split / b.k.cp
        one = sympy.Add(*sets.values())
        entry_in = inputs.get(path, sympy.Integer(0))
        if cfg.recompute_method == "block" and cfg.recompute_num_layers is not None:
            per_chunk = rep.iterations / chunks
            recomputed = sympy.Min(group, per_chunk)
            checkpoints[path] = chunks * (
                recomputed * stream + (per_chunk - recomputed) * (one + entry_in)
            )
            recompute.append(one)
        elif group == 1:
            checkpoints[path] = rep.iterations * stream
            recompute.append(one)
        else:
            checkpoints[path] = chunks * sympy.ceiling(rep.iterations / (chunks * group)) * stream
            recompute.append(group * one + (group - 1) * entry_in)
    return kept, checkpoints, recompute


def grad_flow(b: Build) -> GradFlow | None:
    """The gradients a LoRA step computes (the base frozen), for the walk of the saved
    tensors; None for full training.  A weight-only quantized base keeps its matmuls' inputs
    whenever they need a gradient when its format says so (:attr:`symmem.quant.Quant.keeps_input`:
    LLM.int8's ``MatMul8bitLt``; not the 4-bit ``MatMul4Bit`` of QLoRA)."""
    if b.cfg.lora_rank is None or b.cfg.mode != "train":
        return None
    adapted: set[tuple[str, str]] = set()
    keeps: set[tuple[str, str]] = set()
    for place in b.places:
        for t in place.node.layer.tensors():
            if b.lora_target(place, t):
                adapted.add((place.node.path, t.name))
            if b.quantized(place, t) and b.quant is not None and b.quant.keeps_input:
                keeps.add((place.node.path, t.name))
    return GradFlow(frozenset(adapted), not adapter_casts(b), frozenset(keeps))


def adapter_casts(b: Build) -> bool:
    """PEFT's ``LoraLayer._cast_input_dtype`` casts each adapter's input to the adapter's dtype
    (``x.to(lora_A.weight.dtype)``) when the two differ: each adapter then keeps its own copy."""
    return b.cfg.lora_dtype != b.cfg.act_dtype


def lora_saved(b: Build) -> list[SavedEntry]:
    """What LoRA's adapters keep, as saved tensors of the layers they adapt (so that
    recompute, pipeline stages and the per-layer rows treat them as the layer's own).

    Each adapter keeps its r-wide intermediate A x for B's backward (tokens x r per matrix;
    tokens x top_k x r for routed experts).  When the adapter's dtype differs from the
    activations' (fp32 adapters, PEFT's default, on a bf16 model) PEFT casts the input to it
    (``_cast_input_dtype``) and each adapter keeps its own copy of its input (tokens x
    in_features): in the adapter's dtype, A x too; under autocast (mixed precision) lora_A's
    ``linear`` casts that copy back to the activation dtype and keeps that cast, A x is in the
    activation dtype, and each ``mm`` keeps autocast's activation-dtype copy of its adapter
    weight (r x (in + out) per adapter).  Otherwise A reads the matrix's own input, which the
    walk keeps (:func:`grad_flow`).  Measured with PEFT 0.21 (tests/test_lora_saved.py)."""
    if b.cfg.lora_rank is None or b.cfg.mode != "train":
        return []
    r = sympy.sympify(b.cfg.lora_rank)
    cast = adapter_casts(b)
    dt = "act" if (b.cfg.autocast or not cast) else b.cfg.lora_dtype
    out: list[SavedEntry] = []
    for place in b.places:
        for t in place.node.layer.tensors():
            if not b.lora_target(place, t):
                continue
            tokens = prod(place.node.in_shape[:-1])
            fan = t.active if t.active is not None else t.copies
            out_f, in_f = t.shape
            name = t.name.removesuffix("weight")
            kept = [Saved(f"{name}lora_A.out", tokens * fan * r, dt)]
            if cast:
                kept.append(Saved(f"{name}lora_A.input", tokens * fan * in_f, dt))
            if cast and b.cfg.autocast:
                kept.append(Saved(f"{name}lora.weights_cast", t.copies * r * (in_f + out_f), "act"))
            out += [SavedEntry(place.node.path, k, place.mult, place.repeat) for k in kept]
    return out


def transient_train(b: Build) -> sympy.Expr:
    """The temporaries live at the worst moment of the step besides the saved tensors
    (:func:`symmem.activations.transient`: the logits and the loss's gradients)."""
    return sympy.Add(
        *[e.multiplicity * b.entry_bytes(e.path, e.saved) for e in transient(b.graph, b.policy)]
    )
