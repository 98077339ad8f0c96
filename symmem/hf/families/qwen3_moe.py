"""Qwen3-MoE (``Qwen3MoeForCausalLM``): Qwen3's attention, routed experts without a shared one."""

from __future__ import annotations

from symmem.hf.config import HFConfig
from symmem.hf.decoder import DecoderSpec, FeedForward, sparse_moe_ffn
from symmem.hf.registry import register
from symmem.hf.writer import MemWriter


def experts(c: HFConfig, w: MemWriter, n: int) -> FeedForward:
    """MoE layers as Qwen2-MoE's (``num_experts``, or ``num_local_experts``), no shared expert."""
    key = "num_experts" if c.has("num_experts") else "num_local_experts"
    e = c.int(key, 128, minimum=0)
    return sparse_moe_ffn(c, w, n, experts=e, dense_width=6144, expert_width=768, per_token=8)


QWEN3_MOE = register("qwen3_moe")(
    DecoderSpec(
        hf_class="Qwen3MoeForCausalLM",
        ffn=experts,
        kv_heads=4,
        qk_norm=True,
        windows="qwen3_moe",
        header_options=("active_embeddings = count",),
    )
)
