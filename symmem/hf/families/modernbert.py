"""ModernBERT (``ModernBertModel``): pre-LayerNorm encoder (bias-free by default), fused
q/k/v, a GeGLU MLP, global attention every third layer and local attention between; the
first layer has no attention norm."""

from __future__ import annotations

from symmem.hf.config import HFConfig
from symmem.hf.decoder import Layout, layer_lines
from symmem.hf.registry import register
from symmem.hf.writer import MemWriter, call


@register("modernbert")
def modernbert(c: HFConfig) -> MemWriter:
    w = MemWriter(c, "modernbert", "ModernBertModel")
    w.sym("vocab_size", c.int("vocab_size"))
    d = w.sym("hidden_size", c.int("hidden_size"))
    n = c.int("num_hidden_layers")
    w.sym("num_hidden_layers", n)
    h = w.sym("num_attention_heads", c.int("num_attention_heads"))
    w.sym("intermediate_size", c.int("intermediate_size"))
    norm_bias = c.bool("norm_bias", False)
    attn_bias = c.bool("attention_bias", False)
    mlp_bias = c.bool("mlp_bias", False)
    act = c.act("hidden_activation", "gelu")
    every = c.int("global_attn_every_n_layers", 3)
    w.sym("local_attention", c.int("local_attention", 128), "window of the local layers")
    w.note(
        f"Global attention every {every} layers (from layer 0), local attention "
        "(local_attention tokens) between: an encoder, so no KV cache either way.  Rotary "
        "embeddings, no position table."
    )
    layout = Layout(
        norm="layernorm", norm_bias=norm_bias, attn_norm="attn_norm", mlp_norm="mlp_norm"
    )
    attn = call(
        "attention", "attn", d, heads=h, causal=False, qkv_bias=attn_bias, out_bias=attn_bias
    )
    mlp = call("gated_mlp", "mlp", d, "intermediate_size", act=act, bias=mlp_bias or None)
    w.block("first_layer", layer_lines(Layout(**{**layout.__dict__, "attn_norm": None}), attn, mlp))
    w.block("encoder_layer", layer_lines(layout, attn, mlp))
    w.note("The first layer has no attention LayerNorm (nn.Identity: the embedding norm precedes).")
    w.body += [
        "  " + call("embedding", "tok_embeddings", "vocab_size", d),
        "  " + layout.norm_stmt("embeddings_norm"),
        "  first_layer",
        "  repeat num_hidden_layers - 1 layers { encoder_layer }",
        "  " + layout.norm_stmt("final_norm"),
    ]
    return w
