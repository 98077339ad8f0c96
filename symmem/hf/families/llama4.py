"""Llama 4's language model (``Llama4ForCausalLM`` on a ``llama4_text`` config; Meta's
Llama 4 Scout / Maverick model cards): grouped-query attention where the layers with RoPE
attend within chunks of ``attention_chunk_size`` tokens and every
``no_rope_layer_interval``-th layer (no RoPE) attends over the whole context; a sparse MoE
with one shared expert in the layers ``moe_layers`` lists (by default every
``interleave_moe_layer_step``-th), a dense SwiGLU MLP of ``intermediate_size_mlp`` in the
others.  The chunked layers' KV cache is what transformers allocates for them (its
sliding-window cache layer, at most the chunk size of tokens)."""

from __future__ import annotations

from symmem.hf.config import HFConfig
from symmem.hf.decoder import Layout, build_decoder, gqa_attention
from symmem.hf.fields import core_sizes, rope_note
from symmem.hf.registry import register
from symmem.hf.writer import MemWriter, call


@register("llama4_text")
def llama4_text(c: HFConfig) -> MemWriter:
    w = MemWriter(c, "llama4_text", "Llama4ForCausalLM")
    core_sizes(c, w)
    n = c.int("num_hidden_layers")
    interval = c.int("no_rope_layer_interval", 4)
    rope_layers = c.raw("no_rope_layers", None) or [int((i + 1) % interval != 0) for i in range(n)]
    if len(rope_layers) != n:
        raise c.unsupported("no_rope_layers", f"it lists {len(rope_layers)} of {n} layers")
    step = c.int("interleave_moe_layer_step", 1)
    moe_layers = c.raw("moe_layers", None)
    moe_at = set(range(step - 1, n, step) if moe_layers is None else moe_layers)
    kinds = ["moe" if i in moe_at else "dense" for i in range(n)]
    # an explicit null turns chunking off (every layer attends to the whole context)
    chunk = c.opt_int("attention_chunk_size", 8192)
    windows = [bool(r) and chunk is not None for r in rope_layers]
    act = c.act("hidden_act", "silu")
    ffns: dict[str, str] = {}
    if "dense" in kinds:
        w.sym("intermediate_size_mlp", c.int("intermediate_size_mlp", 16384), "dense layers")
        ffns["dense"] = call(
            "gated_mlp", "feed_forward", "hidden_size", "intermediate_size_mlp", act=act
        )
    if "moe" in kinds:
        w.sym("intermediate_size", c.int("intermediate_size", 8192), "each expert, and shared")
        e = w.sym("num_local_experts", c.int("num_local_experts", 16))
        k = w.sym("num_experts_per_tok", c.int("num_experts_per_tok", 1))
        ffns["moe"] = call(
            "moe",
            "feed_forward",
            "hidden_size",
            "intermediate_size",
            e,
            k,
            n_shared=1,
            act=act,
        )
        w.header_options.append("active_embeddings = count")
    bias = c.bool("attention_bias", False)
    attention = gqa_attention(
        c, w, kv_default=8, head_dim_default=128, qkv_bias=bias, out_bias=bias
    )
    rope_note(c, w)
    w.note(
        f"Llama 4: layers with RoPE attend within chunks of attention_chunk_size tokens "
        f"(their KV cache: at most that many); every {interval}th layer has no RoPE and "
        "attends to the whole context.  The L2 norm of q and k (use_qk_norm) has no "
        "parameters; its saved tensors, and the reference MoE's (transformers runs every "
        "expert on every token, scaled by the router), are not modelled."
    )
    hd = "head_dim" if "head_dim" in w.symbols else "hidden_size / num_attention_heads"
    build_decoder(
        c,
        w,
        Layout(),
        attention=attention,
        ffns=ffns,
        layer_ffn=kinds,
        windows=windows,
        tied=c.bool("tie_word_embeddings", False),
        before_layers=[call("rotary", "rotary_emb", hd)],
        named=True,
        window_key="attention_chunk_size",
    )
    return w
