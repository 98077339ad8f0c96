"""GPT-2 (``GPT2LMHeadModel``): pre-LayerNorm, learned positions, a tied head."""

from __future__ import annotations

from symmem.hf.config import HFConfig
from symmem.hf.decoder import Layout, build_decoder
from symmem.hf.fields import dropout, tie_word_embeddings
from symmem.hf.registry import register
from symmem.hf.writer import MemWriter, call

LAYOUT = Layout(
    norm="layernorm",
    hidden="n_embd",
    embed="wte",
    block="gpt2_block",
    stack="h",
    count="n_layer",
    attn_norm="ln_1",
    mlp_norm="ln_2",
    final_norm="ln_f",
)


@register("gpt2")
def gpt2(c: HFConfig) -> MemWriter:
    w = MemWriter(c, "gpt2", "GPT2LMHeadModel")
    if c.bool("add_cross_attention", False):
        raise c.unsupported("add_cross_attention", "GPT-2 with cross-attention is not modelled")
    w.sym("vocab_size", c.int("vocab_size"))
    d = w.sym("n_embd", c.int("n_embd"), "hidden size")
    w.sym("n_layer", c.int("n_layer"))
    w.sym("n_head", c.int("n_head"))
    w.sym("n_positions", c.int("n_positions", 1024))
    if c.has("n_inner"):
        ff = w.sym("n_inner", c.int("n_inner"), "MLP width")
    else:
        c.raw("n_inner", None)
        ff = "4 * n_embd"
    act = c.act("activation_function", "gelu_new")
    attn_p = c.float("attn_pdrop", 0.1)
    if attn_p:
        w.sym("attn_pdrop", attn_p)
    resid = dropout(w, c, "resid_pdrop", 0.1)
    emb = dropout(w, c, "embd_pdrop", 0.1)
    # GPT2Attention's eager softmax runs in the activation dtype (eager_attention_forward)
    attn = call(
        "attention",
        "attn",
        d,
        heads="n_head",
        dropout="attn_pdrop" if attn_p else None,
        softmax_fp32=False,
        fused_qkv=True,  # c_attn: one Conv1D of width 3 n_embd, split into q, k, v views
    )
    n = c.int("n_layer")
    build_decoder(
        c,
        w,
        LAYOUT,
        attention=lambda _window: attn,
        ffns={"dense": call("mlp", "mlp", d, ff, act=act)},
        layer_ffn=["dense"] * n,
        windows=[False] * n,
        tied=tie_word_embeddings(c, True),
        dropout=resid,
        before_layers=[call("pos_embedding", "wpe", "n_positions", d), emb],
    )
    return w
