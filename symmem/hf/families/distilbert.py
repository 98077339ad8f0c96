"""DistilBERT (``DistilBertModel``): BERT's post-LayerNorm layers without token types or
pooler."""

from __future__ import annotations

from symmem.hf.config import HFConfig
from symmem.hf.decoder import Layout, layer_lines
from symmem.hf.fields import dropout
from symmem.hf.registry import register
from symmem.hf.writer import MemWriter, call

LAYOUT = Layout(
    norm="layernorm",
    hidden="dim",
    arrangement="post_norm",
    attn_norm="sa_layer_norm",
    mlp_norm="output_layer_norm",
)


@register("distilbert")
def distilbert(c: HFConfig) -> MemWriter:
    w = MemWriter(c, "distilbert", "DistilBertModel")
    w.sym("vocab_size", c.int("vocab_size"))
    d = w.sym("dim", c.int("dim"), "hidden size")
    w.sym("n_layers", c.int("n_layers"))
    h = w.sym("n_heads", c.int("n_heads"))
    w.sym("hidden_dim", c.int("hidden_dim"), "MLP width")
    w.sym("max_position_embeddings", c.int("max_position_embeddings", 512))
    act = c.act("activation", "gelu")
    if c.bool("sinusoidal_pos_embds", False):
        w.note("sinusoidal_pos_embds: the position table is fixed but still a parameter tensor.")
    attn_p = c.float("attention_dropout", 0.1)
    if attn_p:
        w.sym("attention_dropout", attn_p)
    drop = dropout(w, c, "dropout", 0.1)
    w.note("The base model (no MLM head); post-LayerNorm layers, no token types, no pooler.")
    attn = call(
        "attention",
        "attention",
        d,
        heads=h,
        causal=False,
        dropout="attention_dropout" if attn_p else None,
    )
    ffn = call("mlp", "ffn", d, "hidden_dim", act=act)
    w.block("transformer_block", layer_lines(LAYOUT, attn, ffn, drop))
    w.body += [
        "  " + call("embedding", "word_embeddings", "vocab_size", d),
        "  " + call("pos_embedding", "position_embeddings", "max_position_embeddings", d),
        "  " + call("layernorm", "embeddings_norm", d),
    ]
    if drop:
        w.body.append("  " + drop)
    w.body += w.stack(["transformer_block"], count="n_layers")
    return w
