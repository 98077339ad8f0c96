"""Falcon (``FalconForCausalLM``): parallel attention and MLP with one or two LayerNorms."""

from __future__ import annotations

from dataclasses import replace

from symmem.hf.config import HFConfig
from symmem.hf.decoder import Layout, build_decoder
from symmem.hf.fields import dropout, tie_word_embeddings
from symmem.hf.registry import register
from symmem.hf.writer import MemWriter, call

LAYOUT = Layout(
    norm="layernorm",
    embed="word_embeddings",
    block="falcon_layer",
    stack="h",
    final_norm="ln_f",
)


def _key(c: HFConfig, key: str, old: str) -> str:
    """The field's current name, or the old RW-model name when only that is present."""
    return key if c.has(key) or not c.has(old) else old


@register("falcon")
def falcon(c: HFConfig) -> MemWriter:
    w = MemWriter(c, "falcon", "FalconForCausalLM")
    w.sym("vocab_size", c.int("vocab_size"))
    hidden = c.int(_key(c, "hidden_size", "n_embed"))
    d = w.sym("hidden_size", hidden)
    n = c.int(_key(c, "num_hidden_layers", "n_layer"))
    w.sym("num_hidden_layers", n)
    h_key = _key(c, "num_attention_heads", "n_head")
    heads = c.int(h_key)
    h = w.sym("num_attention_heads", heads)
    if hidden % heads:
        raise c.unsupported(h_key, f"hidden_size = {hidden} is not a multiple of it")
    new_arch = c.bool("new_decoder_architecture", False)
    multi_query = c.bool("multi_query", True)
    parallel = c.bool("parallel_attn", True)
    bias = c.bool("bias", False)
    ffn = c.opt_int("ffn_hidden_size", None)
    f = w.sym("ffn_hidden_size", ffn) if ffn is not None else "4 * hidden_size"
    act = c.act("activation", "gelu")
    if c.bool("alibi", False):
        w.note("alibi = true: ALiBi position biases (no parameters).")
    kv: str | None
    if new_arch:
        kv_n = c.int("num_kv_heads", heads)
        kv = None if kv_n == heads else w.sym("num_kv_heads", kv_n, "grouped-query attention")
    elif multi_query:
        kv = "1"
        w.note("multi_query: one key/value head.")
    else:
        kv = None
    n_ln = c.opt_int("num_ln_in_parallel_attn", 2 if new_arch else None)
    attn = call(
        "attention",
        "self_attention",
        d,
        heads=h,
        kv_heads=kv,
        qkv_bias=bias,
        out_bias=bias,
        softmax_fp32=False,  # FalconAttention: F.softmax(..., dtype=hidden_states.dtype)
    )
    drop = dropout(w, c, "hidden_dropout", 0.0)
    layout = LAYOUT
    if parallel and n_ln == 2:
        w.note(
            "new_decoder_architecture: parallel attention and MLP, "
            "each with its own LayerNorm (ln_attn, ln_mlp)."
        )
        layout = replace(LAYOUT, arrangement="parallel", attn_norm="ln_attn", mlp_norm="ln_mlp")
    elif parallel:
        w.note("parallel_attn: x + attn(ln(x)) + mlp(ln(x)), one LayerNorm.")
        layout = replace(LAYOUT, arrangement="parallel", mlp_norm=None)
    build_decoder(
        c,
        w,
        layout,
        attention=lambda _window: attn,
        ffns={"dense": call("mlp", "mlp", d, f, act=act, bias=bias)},
        layer_ffn=["dense"] * n,
        windows=[False] * n,
        tied=tie_word_embeddings(c, True),
        dropout=drop,
    )
    return w
