"""GPT-J (``GPTJForCausalLM``): parallel attention and MLP under one LayerNorm, bias-free
attention, a head with a bias."""

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
    block="gptj_block",
    stack="h",
    count="n_layer",
    arrangement="parallel",
    attn_norm="ln_1",
    mlp_norm=None,
    final_norm="ln_f",
    head_bias=True,
)


@register("gptj")
def gptj(c: HFConfig) -> MemWriter:
    w = MemWriter(c, "gptj", "GPTJForCausalLM")
    w.sym("vocab_size", c.int("vocab_size"))
    d = w.sym("n_embd", c.int("n_embd"), "hidden size")
    n = c.int("n_layer")
    w.sym("n_layer", n)
    h = w.sym("n_head", c.int("n_head"))
    if c.has("n_inner"):
        ff = w.sym("n_inner", c.int("n_inner"), "MLP width")
    else:
        c.raw("n_inner", None)
        ff = "4 * n_embd"
    act = c.act("activation_function", "gelu_new")
    if c.has("rotary_dim"):
        w.note(f"rotary_dim = {c.int('rotary_dim')}: rotary embeddings have no parameters.")
    attn_p = c.float("attn_pdrop", 0.0)
    if attn_p:
        w.sym("attn_pdrop", attn_p)
    resid = dropout(w, c, "resid_pdrop", 0.0)
    emb = dropout(w, c, "embd_pdrop", 0.0)
    attn = call(
        "attention",
        "attn",
        d,
        heads=h,
        qkv_bias=False,
        out_bias=False,
        dropout="attn_pdrop" if attn_p else None,
    )
    w.note("GPT-J: x + attn(ln_1(x)) + mlp(ln_1(x)); fc_in / fc_out and lm_head have biases.")
    build_decoder(
        c,
        w,
        LAYOUT,
        attention=lambda _window: attn,
        ffns={"dense": call("mlp", "mlp", d, ff, act=act)},
        layer_ffn=["dense"] * n,
        windows=[False] * n,
        tied=tie_word_embeddings(c, False),
        dropout=resid,
        before_layers=[emb],
    )
    return w
