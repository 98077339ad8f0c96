"""Arcee AFM (``ArceeForCausalLM``): Llama's attention, a two-matrix MLP with squared ReLU."""

from __future__ import annotations

from symmem.hf.decoder import DecoderSpec, FromConfig
from symmem.hf.families.phi import plain_ffn
from symmem.hf.registry import register

ARCEE = register("arcee")(
    DecoderSpec(
        hf_class="ArceeForCausalLM",
        ffn=plain_ffn,
        head_dim=None,
        mlp_bias=FromConfig("mlp_bias", False),
        act=("hidden_act", "relu2"),
    )
)
