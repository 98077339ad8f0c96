"""Working buffers of a training step at scale: gathered ZeRO-3 / FSDP parameters, gradient
buckets of an offloaded optimizer, and the keys and values context parallelism exchanges.

These are GPU temporaries besides the saved tensors; they join the ``transient``
component.  Each term is multiplied by its 0/1 knob (``zero_weights``,
``offload_optimizer``, ``cp_on``), so that it vanishes where it does not apply and a
layout search can keep the choice a number (docs/memory.md, "Training at scale").
"""

from __future__ import annotations

import sympy

from symmem.memory.context import Build
from symmem.memory.placement import largest
from symmem.parallel import is_routed_expert, tp_splits


def unit_params(b: Build) -> list[sympy.Expr]:
    """Parameters per GPU of each unit that ZeRO-3 / FSDP gathers at once: one iteration of each
    innermost repeat (a transformer block, FSDP2's ``fully_shard`` per block), and each layer
    outside the repeats (embedding, head), split by tp (etp x ep for routed experts)."""
    k = b.k
    units: dict[str, sympy.Expr] = {}
    for place in b.places:
        node = place.node
        key = place.repeat if place.repeat is not None else node.path
        for t in node.layer.tensors():
            if t.buffer or (node.tie and t.name == "weight"):
                continue
            expert = is_routed_expert(t)
            split = sympy.Integer(1)
            if tp_splits(t, output_head=node.path == b.head):
                split *= k.etp if expert else k.tp
            if expert:
                split *= k.ep
            units[key] = units.get(key, sympy.Integer(0)) + t.numel / split
    return [u for u in units.values() if u != 0]


def kv_exchanged(b: Build) -> list[sympy.Expr]:
    """Bytes of one attention layer's keys and values on one context-parallel rank (its s/cp
    positions, its tensor-parallel heads), per attention layer: what context parallelism
    exchanges.  The layer's KV-cache elements at the training shape stand for its keys and
    values (for MLA: the compressed latent, a lower bound of the up-projected K and V that
    Megatron-Core's MLA exchanges)."""
    out = []
    for place in b.places:
        layer = place.node.layer
        n = layer.kv_cache(place.node.in_shape, b.policy)
        if n == 0:
            continue
        split = sympy.Integer(1) if b.k.tp == 1 else layer.kv_cache_split(b.k.tp)
        out.append(n * b.act_bytes("act") / split / b.k.cp)
    return out


def deepspeed_working_set(
    buckets: tuple[int, int, int], units: list[sympy.Expr], b: Build
) -> sympy.Expr:
    """DeepSpeed ZeRO-3's gathered parameters and gradient bucket, as its knobs bound them.

    Gathered (deepspeed/runtime/zero/partitioned_param_coordinator.py,
    ``PartitionedParameterCoordinator._fetch_sub_module_impl``): the unit being computed
    (``unit``: the largest), plus what it prefetches, ``min(max_live - available,
    prefetch_bucket)`` elements (none when the unit alone passes ``max_live``), never more
    than the parameters there are (``total``): ``Min(total, unit + Max(0, Min(max_live -
    unit, prefetch)))``.  Gradients (deepspeed/runtime/zero/stage3.py,
    ``DeepSpeedZeroOptimizer_Stage3``): the contiguous ``ipg`` bucket,
    ``torch.empty(reduce_bucket_size)`` in the gradients' dtype.  Not modelled: parameters
    kept gathered because they are reused within ``stage3_max_reuse_distance``, the overshoot
    of the prefetch loop by part of one parameter, and persistent small parameters
    (``stage3_param_persistence_threshold``)."""
    live, prefetch, reduce = (sympy.Integer(v) for v in buckets)
    unit, total = largest(*units), sympy.Add(*units)
    gathered = sympy.Min(total, unit + sympy.Max(0, sympy.Min(live - unit, prefetch)))
    return gathered * b.k.weight_bytes + reduce * b.k.grad_bytes


def buffers(b: Build) -> sympy.Expr:
    """The working buffers of a training step (0 for inference)."""
    cfg, k = b.cfg, b.k
    if cfg.mode != "train":
        return sympy.Integer(0)
    total = sympy.Integer(0)
    units = unit_params(b)
    if units and (k.zero_weights != 0 or k.offload_optimizer != 0):
        unit = largest(*units)
        if cfg.deepspeed_buckets is None:
            # ZeRO-3 / FSDP2: the unit being computed and the next one prefetched are unsharded
            # (FSDP2 fully_shard with its default one-module prefetch), and one unit's
            # unsharded gradients wait for their reduce-scatter (FSDP2 reduce-scatters per
            # module)
            total += k.zero_weights * unit * (2 * k.weight_bytes + k.grad_bytes)
        else:
            total += k.zero_weights * deepspeed_working_set(cfg.deepspeed_buckets, units, b)
        # ZeRO-Offload: gradients leave the GPU bucket by bucket during backward (Ren et al.
        # 2021, Section 4.1): one unit's gradients in flight (when ZeRO-3 has not counted it)
        total += k.offload_optimizer * (1 - k.zero_weights) * unit * k.grad_bytes
    kv = kv_exchanged(b)
    if kv and k.cp_on != 0:
        # ring attention (Megatron-Core / Transformer Engine's P2P context parallelism): the
        # peer's block being received while the current one is used, two blocks of K and V;
        # Ulysses (all-to-all): the re-sharded K and V, one block
        blocks = 2 if cfg.cp_comm == "ring" else 1
        total += k.cp_on * blocks * largest(*kv)
    return total
