"""gpt-oss (``GptOssForCausalLM``): attention sinks, sliding and full layers alternating, a
biased router and biased experts."""

from __future__ import annotations

from symmem.hf.config import HFConfig
from symmem.hf.decoder import DecoderSpec, FeedForward, FromConfig
from symmem.hf.registry import register
from symmem.hf.writer import MemWriter, call


def experts(c: HFConfig, w: MemWriter, n: int) -> FeedForward:
    w.sym("intermediate_size", c.int("intermediate_size"), "width of each expert")
    e = w.sym("num_local_experts", c.int("num_local_experts", 128))
    k = w.sym("num_experts_per_tok", c.int("num_experts_per_tok", 4))

    def render(act: str, bias: bool) -> str:
        return call(
            "moe",
            "mlp",
            "hidden_size",
            "intermediate_size",
            e,
            k,
            act=act,
            router_bias=True,
            expert_bias=True,
        )

    return FeedForward(["moe"] * n, {"moe": render})


GPT_OSS = register("gpt_oss")(
    DecoderSpec(
        hf_class="GptOssForCausalLM",
        ffn=experts,
        kv_heads=8,
        head_dim=64,
        qkv_bias=FromConfig("attention_bias", True),
        out_bias=FromConfig("attention_bias", True),
        sinks=True,
        windows="alternate",
        sliding_window=128,
        notes=(
            "gpt-oss: one learned sink logit per head; experts use a clamped SwiGLU "
            "(swiglu_alpha, swiglu_limit: no parameters; saved tensors estimated as SiLU's).",
            "quantization_config (MXFP4 experts) does not change the logical counts.",
        ),
        header_options=("active_embeddings = count",),
    )
)
