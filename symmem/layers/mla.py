"""Multi-head latent attention (DeepSeek-V2, arXiv:2405.04434, section 2.1,
equations 9-19; DeepSeek-V3, arXiv:2412.19437, section 2.1.1, equations 1-11).

Keys and values are compressed into a latent of ``kv_lora_rank`` (``d_c``)
plus a decoupled RoPE key of ``qk_rope_head_dim`` (``d_r``) shared by all
heads; queries optionally go through a latent of ``q_lora_rank`` (``d_c'``).
As transformers' ``DeepseekV3Attention`` / ``DeepseekV2Attention`` build it,
with ``h`` heads, ``d_n`` = qk_nope_head_dim, ``d_v`` = v_head_dim:

    q_a_proj            d -> d_c'            (+ d_c' bias if ``bias``)
    q_a_layernorm       RMSNorm(d_c')
    q_b_proj            d_c' -> h (d_n + d_r)  no bias
      (or, without q_lora_rank: q_proj d -> h (d_n + d_r), no bias)
    kv_a_proj_with_mqa  d -> d_c + d_r        (+ bias if ``bias``)
    kv_a_layernorm      RMSNorm(d_c)
    kv_b_proj           d_c -> h (d_n + d_v)   no bias
    o_proj              h d_v -> d            (+ d bias if ``bias``)

``bias`` is transformers' ``config.attention_bias`` (false for every
published DeepSeek model).  RoPE has no parameters.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import TYPE_CHECKING, ClassVar

from symmem.layers.base import IntEval, Layer, ParamTensor, Shape, Size, register

if TYPE_CHECKING:
    import torch


@register
@dataclass(frozen=True)
class MLA(Layer):
    kind: ClassVar[str] = "mla"
    aliases: ClassVar[tuple[str, ...]] = ("latent_attention",)
    summary: ClassVar[str] = "DeepSeek multi-head latent attention (low-rank KV, decoupled RoPE key)"

    d_model: Size
    heads: Size
    kv_lora_rank: Size
    qk_nope_head_dim: Size
    qk_rope_head_dim: Size
    v_head_dim: Size
    q_lora_rank: Size | None = None
    bias: bool = False

    def tensors(self) -> list[ParamTensor]:
        d, h = self.d_model, self.heads
        dn, dr, dv, dc = self.qk_nope_head_dim, self.qk_rope_head_dim, self.v_head_dim, self.kv_lora_rank
        out: list[ParamTensor] = []
        if self.q_lora_rank is not None:
            r = self.q_lora_rank
            out.append(ParamTensor("q_a_proj.weight", (r, d)))
            if self.bias:
                out.append(ParamTensor("q_a_proj.bias", (r,)))
            out += [ParamTensor("q_a_layernorm.weight", (r,)), ParamTensor("q_b_proj.weight", (h * (dn + dr), r))]
        else:
            out.append(ParamTensor("q_proj.weight", (h * (dn + dr), d)))
        out.append(ParamTensor("kv_a_proj_with_mqa.weight", (dc + dr, d)))
        if self.bias:
            out.append(ParamTensor("kv_a_proj_with_mqa.bias", (dc + dr,)))
        out += [
            ParamTensor("kv_a_layernorm.weight", (dc,)),
            ParamTensor("kv_b_proj.weight", (h * (dn + dv), dc)),
            ParamTensor("o_proj.weight", (d, h * dv)),
        ]
        if self.bias:
            out.append(ParamTensor("o_proj.bias", (d,)))
        return out

    def output_shape(self, shape: Shape) -> Shape:
        self.expect_last_dim(shape, self.d_model, "d_model")
        return shape

    def to_torch(self, ev: IntEval) -> torch.nn.Module:
        from symmem.layers._torch_mla import TorchMLA

        return TorchMLA(
            d_model=ev(self.d_model),
            heads=ev(self.heads),
            kv_lora_rank=ev(self.kv_lora_rank),
            qk_nope_head_dim=ev(self.qk_nope_head_dim),
            qk_rope_head_dim=ev(self.qk_rope_head_dim),
            v_head_dim=ev(self.v_head_dim),
            q_lora_rank=None if self.q_lora_rank is None else ev(self.q_lora_rank),
            bias=self.bias,
        )
