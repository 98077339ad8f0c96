"""GPT-NeoX / Pythia (``GPTNeoXForCausalLM``): parallel attention and MLP, an untied head."""

from __future__ import annotations

from dataclasses import replace

from symmem.hf.config import HFConfig
from symmem.hf.decoder import Layout, build_decoder
from symmem.hf.fields import dropout, rope_note, tie_word_embeddings
from symmem.hf.registry import register
from symmem.hf.writer import MemWriter, call

LAYOUT = Layout(
    norm="layernorm",
    embed="embed_in",
    block="neox_layer",
    final_norm="final_layer_norm",
    head="embed_out",
    branch_dropout=True,
)


@register("gpt_neox")
def gpt_neox(c: HFConfig) -> MemWriter:
    w = MemWriter(c, "gpt_neox", "GPTNeoXForCausalLM")
    w.sym("vocab_size", c.int("vocab_size"))
    d = w.sym("hidden_size", c.int("hidden_size"))
    n = c.int("num_hidden_layers")
    w.sym("num_hidden_layers", n)
    h = w.sym("num_attention_heads", c.int("num_attention_heads"))
    w.sym("intermediate_size", c.int("intermediate_size"))
    act = c.act("hidden_act", "gelu")
    bias = c.bool("attention_bias", True)
    parallel = c.bool("use_parallel_residual", True)
    tied = tie_word_embeddings(c, False)
    rope_note(c, w)
    drop = dropout(w, c, "hidden_dropout", 0.0)
    if parallel:
        w.note("use_parallel_residual: x + attn(ln1(x)) + mlp(ln2(x)).")
    attn = call("attention", "attention", d, heads=h, qkv_bias=bias, out_bias=bias)
    build_decoder(
        c,
        w,
        replace(LAYOUT, arrangement="parallel" if parallel else "pre_norm"),
        attention=lambda _window: attn,
        ffns={"dense": call("mlp", "mlp", d, "intermediate_size", act=act)},
        layer_ffn=["dense"] * n,
        windows=[False] * n,
        tied=tied,
        dropout=drop,
    )
    return w
