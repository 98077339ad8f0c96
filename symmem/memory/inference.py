"""Inference per GPU: the KV cache and the working set of one forward step."""

from __future__ import annotations

from dataclasses import replace

import sympy

from symmem.activations import saved_tensors
from symmem.layers.base import prod
from symmem.memory.context import Build
from symmem.memory.placement import Staged, largest
from symmem.precision import DTYPE_BYTES


def kv_cache(b: Build) -> sympy.Expr:
    """Each layer's cache (:meth:`Layer.kv_cache`) in the KV dtype, split over tensor-parallel
    ranks as the layer says (:meth:`Layer.kv_cache_split`), on the busiest pipeline stage."""
    if b.encoder_only():
        b.notes.append(
            "no causal attention (an encoder): no KV cache, the whole output is returned"
        )
        return sympy.Integer(0)
    kvb = b.k.kv_bytes
    staged = Staged()
    for place in b.places:
        layer = place.node.layer
        if not b.graph.keeps_cache(place.node.path):
            continue  # an encoder / vision tower runs once: its keys and values are not kept
        n = layer.kv_cache(place.node.in_shape, b.policy)
        if n == 0:
            continue
        split = sympy.Integer(1) if b.k.tp == 1 else layer.kv_cache_split(b.k.tp)
        amount = place.mult * n * kvb / split
        staged.add(place.stage, amount, place.repeat)
        b.row(place)["kv_cache"] += amount
    return b.share(staged)


def transient_infer(b: Build) -> sympy.Expr:
    """One forward step without autograd: the logits the step returns plus the largest
    one layer's intermediates (what that layer would save for backward, dropout off: a
    proxy for its working set).

    For a sequence model ([batch, seq, vocab] output) only the last position's logits
    are computed, as generation does (transformers' ``generate`` passes
    ``logits_to_keep=1``; vLLM computes logits only for the sampled positions), so the
    prefill of a long context does not materialise seq x vocab logits.  Other models
    return their whole output.  Logits are vocab-parallel under tensor parallelism.

    Chunked prefill (``prefill_chunk``, vLLM's ``max_num_batched_tokens``): a server never
    runs the whole batch x context in one forward; one step processes at most that many
    tokens, so each layer's intermediates are those of ``min(tokens, chunk)`` tokens (their
    token-proportional terms scaled by ``min(1, chunk / tokens)``; a MoE layer routes the
    chunk's tokens, not the batch's).  Attention scores that grow with the square of the
    sequence (``eager``) are scaled the same way: a lower bound for them.
    """
    pol = replace(b.policy, dropout=False, loss="none")
    per_layer: dict[str, sympy.Expr] = {}
    held: dict[str, sympy.Expr] = {}
    for e in saved_tensors(b.graph, pol, b.values):
        per_layer[e.path] = per_layer.get(e.path, sympy.Integer(0)) + b.entry_bytes(e.path, e.saved)
        if e.saved.core and b.cfg.impl == "transformers":
            # the last core tensor of an eager attention: the probabilities it returns
            held[e.path] = b.entry_bytes(e.path, e.saved)
    shape = tuple(b.graph.root.out_shape)
    last_only = len(shape) >= 3 and not b.encoder_only()
    logits = prod(shape[:-2]) * shape[-1] if last_only else prod(shape)
    out = logits * DTYPE_BYTES[b.cfg.act_dtype] / b.k.tp
    biggest = [v for v in per_layer.values() if v != 0]
    if biggest:
        peak = largest(*biggest)
        chunk = b.cfg.prefill_chunk
        if chunk is not None and last_only:
            n_tokens = prod(shape[:-1])
            # min(tokens, chunk) / tokens: sympy folds Min(1, chunk / tokens) to 1 for positive
            # integer symbols (sympy 1.14), which would drop the cap
            peak = peak * sympy.Min(n_tokens, sympy.Integer(chunk)) / n_tokens
        out += peak
    if held:
        # transformers' decoder layers return eager attention's probabilities and keep them
        # (``hidden_states, _ = self.self_attn(...)``) until the layer returns, so they are
        # live while the layer's MLP runs (measured: docs/validation.md, "inference working
        # set"; tests/test_infer_transient.py)
        h = largest(*held.values())
        chunk = b.cfg.prefill_chunk
        if chunk is not None and last_only:
            n_tokens = prod(shape[:-1])
            h = h * sympy.Min(n_tokens, sympy.Integer(chunk)) / n_tokens
        out += h
    return out
