"""StarCoder2 (``Starcoder2ForCausalLM``): LayerNorm, biased grouped-query attention and a biased
two-matrix MLP, sliding-window attention, a tied head."""

from __future__ import annotations

from symmem.hf.decoder import DecoderSpec, FromConfig, Layout
from symmem.hf.families.phi import plain_ffn
from symmem.hf.registry import register

STARCODER2 = register("starcoder2")(
    DecoderSpec(
        hf_class="Starcoder2ForCausalLM",
        ffn=plain_ffn,
        qkv_bias=FromConfig("use_bias", True),
        out_bias=FromConfig("use_bias", True),
        mlp_bias=FromConfig("use_bias", True),
        act=("hidden_act", "gelu_pytorch_tanh"),
        windows="all",
        tied=True,
        dropout=("residual_dropout", 0.0),
        layout=Layout(norm="layernorm", norm_affine=True),
    )
)
