"""Multi-head, grouped-query and multi-query self-attention.

Parameters (Vaswani et al. 2017; GQA: Ainslie et al. 2023; MQA: Shazeer 2019),
with ``h`` heads, ``g`` key/value heads and head size ``k``:

    q: d*h*k (+ h*k bias)   k, v: d*g*k each (+ g*k bias each)   o: h*k*d (+ d bias)

so multi-head attention (g = h, k = d/h) has ``4 d^2 + 4 d`` with biases.
``kv_heads = 1`` is multi-query attention.  ``qk_norm`` adds RMSNorms of q
and k: per head (``qk_norm_scope = head``: 2k parameters, Qwen3's
``Qwen3RMSNorm(head_dim)``, Gemma-3) or over the whole projection
(``qk_norm_scope = full``: (h + g) k parameters, OLMo-2's
``Olmo2RMSNorm(num_heads * head_dim)`` and ``(num_key_value_heads * head_dim)``).
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import TYPE_CHECKING, ClassVar, Literal

import sympy

from symmem.errors import SemanticError
from symmem.layers.base import Evaluator, IntEval, Layer, ParamTensor, Real, Shape, Size, register

if TYPE_CHECKING:
    import torch


@register
@dataclass(frozen=True)
class Attention(Layer):
    kind: ClassVar[str] = "attention"
    summary: ClassVar[str] = "multi-head / grouped-query / multi-query self-attention"

    d_model: Size
    heads: Size
    kv_heads: Size | None = None
    head_dim: Size | None = None
    qkv_bias: bool = True
    out_bias: bool = True
    qk_norm: bool = False
    causal: bool = True
    dropout: Real = sympy.Integer(0)
    #: sliding-window attention: the KV cache holds at most this many tokens
    window: Size | None = None
    #: attention implementation: eager materialises the b*h*s^2 scores; sdpa / flash do not.
    #: None means the memory model's choice.
    impl: Literal["eager", "sdpa", "flash"] | None = None
    #: where qk_norm normalises: each head (Qwen3, Gemma-3) or the whole q / k projection (OLMo-2)
    qk_norm_scope: Literal["head", "full"] = "head"

    # ------------------------------------------------------------ derived sizes
    @property
    def n_kv(self) -> sympy.Expr:
        return self.heads if self.kv_heads is None else self.kv_heads

    @property
    def dk(self) -> sympy.Expr:
        return self.d_model / self.heads if self.head_dim is None else self.head_dim

    def validate(self, ev: Evaluator) -> None:
        if self.head_dim is None:
            self.require_integer(ev, self.d_model / self.heads, "head_dim = d_model / heads")
        h, g = ev(self.heads), ev(self.n_kv)
        if h is not None and g is not None and h % g:
            raise SemanticError(f"heads = {h} is not a multiple of kv_heads = {g}")

    # ------------------------------------------------------------ formulas
    def tensors(self) -> list[ParamTensor]:
        d, hk, gk = self.d_model, self.heads * self.dk, self.n_kv * self.dk
        out = [
            ParamTensor("q_proj.weight", (hk, d)),
            ParamTensor("k_proj.weight", (gk, d)),
            ParamTensor("v_proj.weight", (gk, d)),
            ParamTensor("o_proj.weight", (d, hk)),
        ]
        if self.qkv_bias:
            out += [ParamTensor("q_proj.bias", (hk,)), ParamTensor("k_proj.bias", (gk,)), ParamTensor("v_proj.bias", (gk,))]
        if self.out_bias:
            out.append(ParamTensor("o_proj.bias", (d,)))
        if self.qk_norm:
            qn, kn = (self.dk, self.dk) if self.qk_norm_scope == "head" else (hk, gk)
            out += [ParamTensor("q_norm.weight", (qn,)), ParamTensor("k_norm.weight", (kn,))]
        return out

    def output_shape(self, shape: Shape) -> Shape:
        self.expect_last_dim(shape, self.d_model, "d_model")
        return shape

    def to_torch(self, ev: IntEval) -> torch.nn.Module:
        from symmem.layers._torch_attention import TorchAttention

        return TorchAttention(
            d_model=ev(self.d_model),
            heads=ev(self.heads),
            kv_heads=ev(self.n_kv),
            head_dim=ev(self.dk),
            qkv_bias=self.qkv_bias,
            out_bias=self.out_bias,
            qk_norm=self.qk_norm,
            causal=self.causal,
            dropout=float(self.dropout),
            impl=self.impl or "sdpa",
            qk_norm_scope=self.qk_norm_scope,
        )
