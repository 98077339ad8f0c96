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

from typing import TYPE_CHECKING, ClassVar

import sympy

from symmem.layers._saved import low_precision, rmsnorm_saved, times, tokens
from symmem.layers.base import (
    Example,
    IntEval,
    Layer,
    ParamTensor,
    Saved,
    Shape,
    Size,
    prod,
    register,
)
from symmem.policy import ActPolicy
from symmem.records import record

if TYPE_CHECKING:
    import torch


@register
@record
class MLA(Layer):
    kind: ClassVar[str] = "mla"
    aliases: ClassVar[tuple[str, ...]] = ("latent_attention",)
    summary: ClassVar[str] = (
        "DeepSeek multi-head latent attention (low-rank KV, decoupled RoPE key)"
    )
    examples: ClassVar[tuple[Example, ...]] = (
        Example(
            "mla(16, heads = 4, kv_lora_rank = 8, qk_nope_head_dim = 6, qk_rope_head_dim = 2, "
            "v_head_dim = 5)",
            "[2, 8, 16]",
            "q/k head 8 != v head 5: the CPU runs the sdpa math path",
        ),
        Example(
            "mla(16, heads = 4, kv_lora_rank = 8, qk_nope_head_dim = 6, qk_rope_head_dim = 2, "
            "v_head_dim = 5, q_lora_rank = 12)",
            "[2, 8, 16]",
        ),
    )

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
        dn, dr, dv, dc = (
            self.qk_nope_head_dim,
            self.qk_rope_head_dim,
            self.v_head_dim,
            self.kv_lora_rank,
        )
        out: list[ParamTensor] = []
        if self.q_lora_rank is not None:
            r = self.q_lora_rank
            out.append(ParamTensor("q_a_proj.weight", (r, d), matmul=True))
            if self.bias:
                out.append(ParamTensor("q_a_proj.bias", (r,)))
            out += [
                ParamTensor("q_a_layernorm.weight", (r,)),
                ParamTensor("q_b_proj.weight", (h * (dn + dr), r), matmul=True, tp_split=True),
            ]
        else:
            out.append(ParamTensor("q_proj.weight", (h * (dn + dr), d), matmul=True, tp_split=True))
        # Megatron-Core MLASelfAttention: the down-projections (q_a, kv_a) are replicated,
        # the up-projections and o split by heads
        out.append(ParamTensor("kv_a_proj_with_mqa.weight", (dc + dr, d), matmul=True))
        if self.bias:
            out.append(ParamTensor("kv_a_proj_with_mqa.bias", (dc + dr,)))
        out += [
            ParamTensor("kv_a_layernorm.weight", (dc,)),
            ParamTensor("kv_b_proj.weight", (h * (dn + dv), dc), matmul=True, tp_split=True),
            ParamTensor("o_proj.weight", (d, h * dv), matmul=True, tp_split=True),
        ]
        if self.bias:
            out.append(ParamTensor("o_proj.bias", (d,)))
        return out

    def output_shape(self, shape: Shape) -> Shape:
        self.expect_last_dim(shape, self.d_model, "d_model")
        return shape

    def activations(self, shape: Shape, policy: ActPolicy) -> list[Saved]:
        """What MLA keeps (symmem's TorchMLA = transformers' DeepseekV3Attention without RoPE),
        T tokens, h heads, c = kv_lora_rank, r = qk_rope_head_dim, q/k head qk = nope + r,
        v head dv:

        x (read by q_proj / q_a_proj and kv_a_proj: one tensor); with q_lora_rank rq the
        q_a_layernorm (an RMSNorm of T rq) and q_b_proj's input (T rq); kv_a_layernorm: an
        RMSNorm on c_kv, a *view* of kv_a_proj's output, so in fp32 it keeps the whole
        T (c + r) storage (in bf16 its fp32 copy of T c); kv_b_proj's input (T c).
        Attention: q and k have head size qk, v has dv.  When they differ (DeepSeek:
        192 vs 128) the CPU runs sdpa's math path: scaled q and k (T h qk each), the
        softmax (b h s^2) and v (T h dv), all fp32, and o_proj's input (T h dv).  On
        CUDA the memory-efficient kernel takes different v sizes: q, k (T h qk each),
        v (a view of kv_b_proj's output: its whole T h (nope + dv) storage), the
        output (T h dv, whose reshape o_proj reads) and the fp32 log-sum-exp (b h s).
        Measured on CPU; the CUDA rule is from PyTorch's sdp_utils (flash needs equal
        head sizes, memory-efficient does not).
        """
        t = tokens(shape)
        s = shape[-2] if len(shape) >= 2 else sympy.Integer(1)
        bh = (t / s) * self.heads
        h, c, r = self.heads, self.kv_lora_rank, self.qk_rope_head_dim
        qk, dv, dn = self.qk_nope_head_dim + r, self.v_head_dim, self.qk_nope_head_dim
        low = low_precision(policy)
        out = [Saved("input", prod(shape), "act", "input")]
        if self.q_lora_rank is not None:
            out += rmsnorm_saved(
                "q_a_layernorm.", (t, self.q_lora_rank), True, policy, in_ref="own"
            )
            out.append(Saved("q_b_proj.input", t * self.q_lora_rank, "act"))
        kv_norm = rmsnorm_saved("kv_a_layernorm.", (t, c), True, policy, in_ref="own")
        if not low:  # the fp32 norm reads a view: the whole kv_a_proj output stays
            kv_norm[0] = Saved("kv_a_proj.output", t * (c + r), "act")
        out += kv_norm
        out.append(Saved("kv_b_proj.input", t * c, "act"))
        math = [
            Saved("q_scaled", t * h * qk, "fp32", tp_split=True),
            Saved("k_scaled", t * h * qk, "fp32", tp_split=True),
            Saved("probs", bh * s * s, "fp32", tp_split=True, core=True),
            Saved("v", t * h * dv, "fp32", tp_split=True),
            Saved("o_proj.input", t * h * dv, "act", tp_split=True),
        ]
        fused = [
            Saved("q", t * h * qk, "act", tp_split=True),
            Saved("k", t * h * qk, "act", tp_split=True),
            Saved("kv_b_proj.output", t * h * (dn + dv), "act", tp_split=True),
            Saved("out", t * h * dv, "act", tp_split=True),
            Saved("logsumexp", bh * s, "fp32", tp_split=True, small=True),
        ]
        if policy.device != "cpu":
            return out + fused
        # the CPU's math path when the head sizes differ, decided on their values: sizes are
        # polynomials (simplify() costs 0.15 s of imports); head sizes held in symbols give a
        # Piecewise that the values decide (qk = dv as symbols of equal value is the fused path)
        diff = sympy.expand(qk - dv)
        if not diff.free_symbols:
            return out + (fused if diff == 0 else math)
        differ = sympy.Piecewise((1, sympy.Ne(diff, 0, evaluate=False)), (0, True), evaluate=False)
        equal = sympy.Piecewise((1, sympy.Eq(diff, 0, evaluate=False)), (0, True), evaluate=False)
        return out + times(math, differ) + times(fused, equal)
        return out

    def kv_cache(self, shape: Shape, policy: ActPolicy) -> sympy.Expr:
        """The compressed cache: kv_lora_rank + qk_rope_head_dim per token (DeepSeek-V2
        Section 2.1.2; 576 elements per token and layer for DeepSeek-V3)."""
        return tokens(shape) * (self.kv_lora_rank + self.qk_rope_head_dim)

    def attends(self) -> str | None:
        return "causal"  # the compressed latent cache is replicated under tp (kv_cache_split = 1)

    def parallel_sizes(self) -> dict[str, sympy.Expr]:
        return {"tp": self.heads}

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
