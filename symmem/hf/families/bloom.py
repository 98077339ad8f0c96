"""BLOOM (``BloomForCausalLM``): ALiBi (no position table), a LayerNorm after the embedding,
biases everywhere, a tied head."""

from __future__ import annotations

from symmem.hf.config import HFConfig
from symmem.hf.decoder import Layout, build_decoder
from symmem.hf.fields import dropout, tie_word_embeddings
from symmem.hf.registry import register
from symmem.hf.writer import MemWriter, call

LAYOUT = Layout(
    norm="layernorm",
    embed="word_embeddings",
    block="bloom_block",
    stack="h",
    count="n_layer",
    final_norm="ln_f",
)


@register("bloom")
def bloom(c: HFConfig) -> MemWriter:
    w = MemWriter(c, "bloom", "BloomForCausalLM")
    w.sym("vocab_size", c.int("vocab_size"))
    # BloomConfig reads the published configs' n_embed as hidden_size
    key = "n_embed" if c.has("n_embed") else "hidden_size"
    d = w.sym("hidden_size", c.int(key))
    n = c.int("n_layer")
    w.sym("n_layer", n)
    h_key = "num_attention_heads" if c.has("num_attention_heads") else "n_head"
    w.sym("n_head", c.int(h_key))
    attn_p = c.float("attention_dropout", 0.0)
    if attn_p:
        w.sym("attention_dropout", attn_p)
    drop = dropout(w, c, "hidden_dropout", 0.0)
    w.note(
        "BLOOM: ALiBi position biases (no parameters); the MLP is 4 hidden_size wide with "
        "BLOOM's tanh-approximate GELU (its autograd function keeps only the input)."
    )
    attn = call(
        "attention",
        "self_attention",
        d,
        heads="n_head",
        dropout="attention_dropout" if attn_p else None,
    )
    build_decoder(
        c,
        w,
        LAYOUT,
        attention=lambda _window: attn,
        ffns={"dense": call("mlp", "mlp", d, "4 * hidden_size", act="gelu_tanh")},
        layer_ffn=["dense"] * n,
        windows=[False] * n,
        tied=tie_word_embeddings(c, True),
        dropout=drop,
        before_layers=[call("layernorm", "word_embeddings_layernorm", d)],
    )
    return w
