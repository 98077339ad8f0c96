"""OPT (``OPTForCausalLM``): learned positions with an offset, optional embedding projections."""

from __future__ import annotations

from symmem.hf.config import HFConfig
from symmem.hf.decoder import Layout, layer_lines
from symmem.hf.fields import dropout, tie_word_embeddings
from symmem.hf.registry import register
from symmem.hf.writer import MemWriter, call


@register("opt")
def opt(c: HFConfig) -> MemWriter:
    w = MemWriter(c, "opt", "OPTForCausalLM")
    w.sym("vocab_size", c.int("vocab_size"))
    d = w.sym("hidden_size", c.int("hidden_size"))
    w.sym("num_hidden_layers", c.int("num_hidden_layers"))
    h = w.sym("num_attention_heads", c.int("num_attention_heads"))
    w.sym("ffn_dim", c.int("ffn_dim"))
    w.sym("max_position_embeddings", c.int("max_position_embeddings", 2048))
    proj = c.int("word_embed_proj_dim", c.int("hidden_size"))
    e = w.sym("word_embed_proj_dim", proj, "embedding width") if proj != c.int("hidden_size") else d
    pre_ln = c.bool("do_layer_norm_before", True)
    remove_final = c.bool("_remove_final_layer_norm", False)
    bias = c.bool("enable_bias", True)
    layout = Layout(
        norm="layernorm",
        norm_affine=c.bool("layer_norm_elementwise_affine", True),
        arrangement="pre_norm" if pre_ln else "post_norm",
        attn_norm="self_attn_layer_norm",
        mlp_norm="final_layer_norm",
    )
    act = c.act("activation_function", "relu")
    tied = tie_word_embeddings(c, True)
    attn_p = c.float("attention_dropout", 0.0)
    if attn_p:
        w.sym("attention_dropout", attn_p)
    drop = dropout(w, c, "dropout", 0.1)
    attn = call(
        "attention",
        "self_attn",
        d,
        heads=h,
        qkv_bias=bias,
        out_bias=bias,
        dropout="attention_dropout" if attn_p else None,
    )
    mlp = call("mlp", "mlp", d, "ffn_dim", act=act, bias=bias)
    if not pre_ln:
        w.note("do_layer_norm_before = false: post-LayerNorm layers (OPT-350m).")
    w.block("opt_layer", layer_lines(layout, attn, mlp, drop))
    w.body.append("  " + call("embedding", "embed_tokens", "vocab_size", e))
    if e != d:
        w.body.append("  " + call("linear", "project_in", e, d, bias=False))
    positions = call("pos_embedding", "embed_positions", "max_position_embeddings + 2", d)
    w.body.append(f"  {positions}  # OPTLearnedPositionalEmbedding: 2 extra rows (offset)")
    w.body += w.stack(["opt_layer"])
    if pre_ln and not remove_final:
        w.body.append(f"  {layout.norm_stmt('final_norm')}  # decoder.final_layer_norm")
    if e != d:
        w.body.append("  " + call("linear", "project_out", d, e, bias=False))
    tie = "embed_tokens" if tied else None
    w.body.append("  " + call("linear", "lm_head", e, "vocab_size", bias=False, tie=tie))
    return w
