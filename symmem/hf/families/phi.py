"""Phi-1 / Phi-1.5 / Phi-2 (``PhiForCausalLM``): parallel attention and MLP under one LayerNorm,
biases everywhere, a head with a bias."""

from __future__ import annotations

from symmem.hf.config import HFConfig
from symmem.hf.decoder import DecoderSpec, FeedForward, Layout
from symmem.hf.registry import register
from symmem.hf.writer import MemWriter, call


def plain_ffn(c: HFConfig, w: MemWriter, n: int) -> FeedForward:
    """Every layer a two-matrix ``mlp`` (fc1, act, fc2) of ``intermediate_size``."""
    w.sym("intermediate_size", c.int("intermediate_size"))

    def render(act: str, bias: bool) -> str:
        return call("mlp", "mlp", "hidden_size", "intermediate_size", act=act, bias=bias)

    return FeedForward(["dense"] * n, {"dense": render})


def _phi(c: HFConfig) -> MemWriter:
    if c.bool("qk_layernorm", False):
        raise c.unsupported("qk_layernorm", "Phi's per-head LayerNorm of q and k is not modelled")
    return SPEC(c)


SPEC = DecoderSpec(
    hf_class="PhiForCausalLM",
    ffn=plain_ffn,
    qkv_bias=True,
    out_bias=True,
    mlp_bias=True,
    act=("hidden_act", "gelu_new"),
    dropout=("resid_pdrop", 0.0),
    notes=(
        "Phi: x + attn(ln(x)) + mlp(ln(x)) with one LayerNorm; partial rotary embeddings "
        "(partial_rotary_factor) have no parameters.",
    ),
    layout=Layout(
        norm="layernorm",
        arrangement="parallel",
        mlp_norm=None,
        branch_dropout=True,
        final_norm="final_layernorm",
        head_bias=True,
    ),
)

PHI = register("phi")(_phi)
