"""Nemotron / Minitron (``NemotronForCausalLM``): LayerNorm1P (a weight and a bias), a
two-matrix MLP with squared ReLU, partial rotary embeddings."""

from __future__ import annotations

from symmem.hf.decoder import DecoderSpec, FromConfig, Layout
from symmem.hf.families.phi import plain_ffn
from symmem.hf.registry import register

NEMOTRON = register("nemotron")(
    DecoderSpec(
        hf_class="NemotronForCausalLM",
        ffn=plain_ffn,
        head_dim=None,
        mlp_bias=FromConfig("mlp_bias", False),
        act=("hidden_act", "relu2"),
        notes=("Nemotron's LayerNorm1P scales by (1 + weight): the same 2 d parameters.",),
        layout=Layout(norm="layernorm"),
    )
)
