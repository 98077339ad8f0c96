"""GPT-BigCode / StarCoder (``GPTBigCodeForCausalLM``): GPT-2 with multi-query attention."""

from __future__ import annotations

from symmem.hf.config import HFConfig
from symmem.hf.decoder import build_decoder
from symmem.hf.families.gpt2 import LAYOUT
from symmem.hf.fields import dropout, tie_word_embeddings
from symmem.hf.registry import register
from symmem.hf.writer import MemWriter, call


@register("gpt_bigcode")
def gpt_bigcode(c: HFConfig) -> MemWriter:
    w = MemWriter(c, "gpt_bigcode", "GPTBigCodeForCausalLM")
    if c.bool("add_cross_attention", False):
        raise c.unsupported("add_cross_attention", "cross-attention is not modelled")
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
    act = c.act("activation_function", "gelu_pytorch_tanh")
    mq = c.bool("multi_query", True)
    if mq:
        w.note("multi_query: one key/value head (c_attn: d + 2 head_dim outputs).")
    attn_p = c.float("attn_pdrop", 0.1)
    if attn_p:
        w.sym("attn_pdrop", attn_p)
    resid = dropout(w, c, "resid_pdrop", 0.1)
    emb = dropout(w, c, "embd_pdrop", 0.1)
    attn = call(
        "attention",
        "attn",
        d,
        heads="n_head",
        kv_heads=1 if mq else None,
        dropout="attn_pdrop" if attn_p else None,
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
