"""StableLM (``StableLmForCausalLM``): LayerNorm, optional q/k/v biases, per-head q/k
LayerNorms and a parallel residual."""

from __future__ import annotations

from dataclasses import replace

from symmem.hf.config import HFConfig
from symmem.hf.decoder import DecoderSpec, FromConfig, Layout
from symmem.hf.registry import register
from symmem.hf.writer import MemWriter

SPEC = DecoderSpec(
    hf_class="StableLmForCausalLM",
    qkv_bias=FromConfig("use_qkv_bias", False),
    out_bias=False,
    qk_norm=FromConfig("qk_layernorm", False),
    qk_norm_scope="full",
    dropout=("hidden_dropout", 0.0),
    notes=(
        "qk_layernorm: a bias-free LayerNorm per head of q and k, (heads + kv_heads) head_dim "
        "parameters (counted exactly; saved tensors estimated as an RMSNorm's).",
    ),
    layout=Layout(norm="layernorm"),
)


@register("stablelm")
def stablelm(c: HFConfig) -> MemWriter:
    if c.bool("use_parallel_residual", False):
        layout = replace(SPEC.layout, arrangement="parallel", mlp_norm=None)
        return replace(SPEC, layout=layout)(c)
    return SPEC(c)
