"""Jamba (``JambaForCausalLM``; Lieber et al. 2024, "Jamba: A Hybrid Transformer-Mamba
Language Model", arXiv:2403.19887): attention in layer ``i`` when
``i % attn_layer_period == attn_layer_offset``, a Mamba mixer (with weighted RMSNorms of dt,
B and C) in the others; a sparse MoE feed-forward when
``i % expert_layer_period == expert_layer_offset``, a dense SwiGLU MLP in the others
(``JambaConfig.layers_block_type`` / ``layers_num_experts``).  No positional encoding.  The
KV cache is held by the attention layers only; the Mamba layers hold their recurrent state."""

from __future__ import annotations

from symmem.hf.config import HFConfig
from symmem.hf.families.mamba import mamba_mixer
from symmem.hf.fields import kv_heads, tie_word_embeddings
from symmem.hf.registry import register
from symmem.hf.writer import MemWriter, call, residual


@register("jamba")
def jamba(c: HFConfig) -> MemWriter:
    w = MemWriter(c, "jamba", "JambaForCausalLM")
    w.sym("vocab_size", c.int("vocab_size", 65536))
    hidden = c.int("hidden_size", 4096)
    d = w.sym("hidden_size", hidden)
    n = c.int("num_hidden_layers", 32)
    w.sym("num_hidden_layers", n)
    heads = c.int("num_attention_heads", 32)
    if hidden % heads:
        raise c.unsupported("num_attention_heads", f"hidden_size = {hidden} is not a multiple")
    w.sym("num_attention_heads", heads)
    kv = kv_heads(c, w, heads, 8)
    if c.act("hidden_act", "silu") != "silu":
        raise c.unsupported("hidden_act", "Jamba's Mamba mixer is modelled with SiLU")
    attn_period = c.int("attn_layer_period", 8)
    attn_offset = c.int("attn_layer_offset", 4, minimum=0)
    moe_period = c.int("expert_layer_period", 2)
    moe_offset = c.int("expert_layer_offset", 1, minimum=0)
    experts = c.int("num_experts", 16)
    mixers = ["attention" if i % attn_period == attn_offset else "mamba" for i in range(n)]
    ffns = ["moe" if i % moe_period == moe_offset and experts > 1 else "dense" for i in range(n)]
    w.sym("intermediate_size", c.int("intermediate_size", 14336), "dense MLP and each expert")
    statements: dict[str, str] = {}
    if "attention" in mixers:
        statements["attention"] = call(
            "attention",
            "self_attn",
            d,
            heads="num_attention_heads",
            kv_heads=kv,
            qkv_bias=False,
            out_bias=False,
        )
    if "mamba" in mixers:
        statements["mamba"] = mamba_mixer(c, w, prefix="mamba_", bc_norm="weighted")
    if "dense" in ffns:
        statements["dense"] = call("gated_mlp", "feed_forward", d, "intermediate_size")
    if "moe" in ffns:
        e = w.sym("num_experts", experts)
        k = w.sym("num_experts_per_tok", c.int("num_experts_per_tok", 2))
        statements["moe"] = call("moe", "feed_forward", d, "intermediate_size", e, k)
    w.note(
        f"Jamba: attention in layer i when i % {attn_period} == {attn_offset} (no positional "
        f"encoding), Mamba elsewhere; MoE when i % {moe_period} == {moe_offset}, a dense MLP "
        "elsewhere.  The KV cache is the attention layers'; each Mamba layer keeps its "
        "recurrent state (conv + SSM) per sequence."
    )
    keys = []
    for mixer, ffn in zip(mixers, ffns, strict=True):
        name = f"{mixer}_{ffn}_layer"
        if name not in w.blocks:
            w.block(
                name,
                [
                    residual(call("rmsnorm", "input_layernorm", d), statements[mixer]),
                    residual(call("rmsnorm", "pre_ff_layernorm", d), statements[ffn]),
                ],
            )
        keys.append(name)
    if "moe" in ffns:
        w.header_options.append("active_embeddings = count")
    tie = tie_word_embeddings(c, False)
    w.body += ["  " + call("embedding", "embed_tokens", "vocab_size", d)]
    w.body += w.stack(keys)
    w.body += [
        "  " + call("rmsnorm", "final_layernorm", d),
        "  "
        + call(
            "linear", "lm_head", d, "vocab_size", bias=False, tie="embed_tokens" if tie else None
        ),
    ]
    return w
