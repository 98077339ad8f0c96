"""The Mamba-2 mixer (Dao and Gu 2024, "Transformers are SSMs: Generalized Models and
Efficient Algorithms Through Structured State Space Duality", arXiv:2405.21060, Section 7.1
and Figure 6), as transformers' ``Mamba2Mixer`` builds it.

With ``d`` = d_model, ``I`` = d_inner (``expand * d``), ``N`` = d_state, ``H`` heads of
``P = I / H`` channels, ``G`` = n_groups (B and C are shared by the ``H / G`` heads of a
group), ``k`` = d_conv and the convolved width ``D_c = I + 2 G N`` (x, B and C)::

    in_proj   d -> I + D_c + H     (z, then x B C, then dt)   d (2I + 2GN + H)  (+ bias)
    conv1d    depthwise over x B C, k                         D_c k  (+ D_c when ``conv_bias``)
    dt_bias, A_log, D                                         H each
    norm      gated RMSNorm over I (per group of I / G)       I
    out_proj  I -> d                                          I d    (+ d when ``bias``)

Inference cache (constant in the context length), per sequence: the convolution state
``D_c k`` and the SSM state ``H x P x N = I N`` (transformers' linear-attention cache
layer: ``conv_states`` [b, D_c, k] and ``recurrent_states`` [b, H, P, N]).
"""

from __future__ import annotations

from typing import TYPE_CHECKING, ClassVar

import sympy

from symmem.layers._saved import low_precision, tokens
from symmem.layers.base import (
    Evaluator,
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
class Mamba2(Layer):
    kind: ClassVar[str] = "mamba2"
    summary: ClassVar[str] = "Mamba-2 (SSD) mixer with heads and groups: [batch, seq, d] -> same"
    examples: ClassVar[tuple[Example, ...]] = (
        Example("mamba2(16, 32, 4, 4, n_groups = 2)", "[2, 5, 16]"),
        Example("mamba2(16, 32, 4, 4, n_groups = 4, bias = true, conv_bias = false)", "[1, 7, 16]"),
    )

    d_model: Size
    d_inner: Size
    d_state: Size
    n_heads: Size
    n_groups: Size = sympy.Integer(1)
    d_conv: Size = sympy.Integer(4)
    bias: bool = False
    conv_bias: bool = True

    @property
    def conv_dim(self) -> sympy.Expr:
        return self.d_inner + 2 * self.n_groups * self.d_state

    def validate(self, ev: Evaluator) -> None:
        self.require_divides(ev, self.d_inner, self.n_heads, "d_inner")
        self.require_divides(ev, self.n_heads, self.n_groups, "n_heads")

    def tensors(self) -> list[ParamTensor]:
        d, i, h, k, c = self.d_model, self.d_inner, self.n_heads, self.d_conv, self.conv_dim
        one = sympy.Integer(1)
        # tensor parallelism splits heads and groups (Megatron-LM's MambaMixer: n_groups and
        # n_heads divisible by tp): every per-channel tensor, in_proj by rows, out_proj by
        # columns; out_proj's bias is whole
        out = [ParamTensor("in_proj.weight", (i + c + h, d), matmul=True, tp_split=True)]
        if self.bias:
            out.append(ParamTensor("in_proj.bias", (i + c + h,), tp_split=True))
        out.append(ParamTensor("conv1d.weight", (c, one, k), tp_split=True))
        if self.conv_bias:
            out.append(ParamTensor("conv1d.bias", (c,), tp_split=True))
        out += [
            ParamTensor("dt_bias", (h,), tp_split=True),
            ParamTensor("A_log", (h,), tp_split=True),
            ParamTensor("D", (h,), tp_split=True),
            ParamTensor("norm.weight", (i,), tp_split=True),
            ParamTensor("out_proj.weight", (d, i), matmul=True, tp_split=True),
        ]
        if self.bias:
            out.append(ParamTensor("out_proj.bias", (d,)))
        return out

    def output_shape(self, shape: Shape) -> Shape:
        self.expect_last_dim(shape, self.d_model, "d_model")
        return shape

    def activations(self, shape: Shape, policy: ActPolicy) -> list[Saved]:
        """What symmem's PyTorch module (``to_torch``: the recurrence as a sequential scan,
        each step ``h = exp(dt A) h + dt x B^T``, ``y = h C + D x``; then the gated norm)
        keeps, for b sequences of s tokens, T = b s, measured with saved_tensors_hooks
        (tests/layers/test_examples.py):

        in the activation dtype: the input (T d), in_proj's output (T (I + D_c + H): the
        conv reads a view of it, the gate another), the padded conv output
        (b D_c (s + k - 1): silu reads a slice), silu's output (T D_c: x, B and C are views
        of it), dt + dt_bias and softplus(dt) (T H each), dt x (T I), B and C repeated
        over the heads of a group (T H N each), the normalised product (T I) and
        out_proj's input (T I); in fp32: exp(A_log) and A (H each), exp(dt A) (T H), the
        scan output plus the skip (T I), silu(z) and the gated product (T I each), the
        inverse RMS per group (T G), and the states: the zero state and the state after
        each step (b I N each, s + 1 of them) in fp32; in bf16 / fp16 the last fp32 state is
        read by nothing, each state is also kept cast back (s of them) and z is read
        through an fp32 copy (T I).
        """
        t = tokens(shape)
        s = shape[-2] if len(shape) >= 2 else sympy.Integer(1)
        b = t / s
        i, n, h, g, k, c = (
            self.d_inner,
            self.d_state,
            self.n_heads,
            self.n_groups,
            self.d_conv,
            self.conv_dim,
        )
        low = low_precision(policy)
        state = b * i * n
        out = [
            Saved("input", prod(shape), "act", "input"),
            Saved("in_proj.out", t * (i + c + h), "act", tp_split=True),
            Saved("conv1d.out", b * c * (s + k - 1), "act", tp_split=True),
            Saved("silu.out", t * c, "act", tp_split=True),
            Saved("dt_biased", t * h, "act", tp_split=True),
            Saved("dt", t * h, "act", tp_split=True),
            Saved("dt_x", t * i, "act", tp_split=True),
            Saved("B_heads", t * h * n, "act", tp_split=True),
            Saved("C_heads", t * h * n, "act", tp_split=True),
            Saved("normed", t * i, "act", tp_split=True),
            Saved("out_proj.input", t * i, "act", tp_split=True),
            Saved("exp_A_log", h, "fp32", tp_split=True, small=True),
            Saved("A", h, "fp32", tp_split=True, small=True),
            Saved("dA", t * h, "fp32", tp_split=True),
            Saved("scan_plus_skip", t * i, "fp32", tp_split=True),
            Saved("gate.silu", t * i, "fp32", tp_split=True),
            Saved("gated", t * i, "fp32", tp_split=True),
            Saved("rsqrt", t * g, "fp32", tp_split=True),
            Saved("states", (s if low else s + 1) * state, "fp32", tp_split=True),
        ]
        if low:
            out += [
                Saved("states_cast", s * state, "act", tp_split=True),
                Saved("gate_fp32", t * i, "fp32", tp_split=True),
            ]
        return out

    def kv_cache(self, shape: Shape, policy: ActPolicy) -> sympy.Expr:
        """The recurrent state of each sequence: conv state D_c k plus SSM state
        H x P x N = I N, whatever the number of tokens."""
        b = tokens(shape) / shape[-2] if len(shape) >= 2 else sympy.Integer(1)
        return b * (self.conv_dim * self.d_conv + self.d_inner * self.d_state)

    def kv_cache_split(self, tp: sympy.Expr) -> sympy.Expr:
        return tp  # heads and groups split over tensor-parallel ranks

    def attends(self) -> str | None:
        return "causal"  # mixes the sequence causally: generated token by token

    def parallel_sizes(self) -> dict[str, sympy.Expr]:
        return {"tp": self.n_groups}

    def to_torch(self, ev: IntEval) -> torch.nn.Module:
        from symmem.layers._torch_mamba2 import TorchMamba2

        return TorchMamba2(
            ev(self.d_model),
            ev(self.d_inner),
            ev(self.d_state),
            ev(self.n_heads),
            ev(self.n_groups),
            ev(self.d_conv),
            self.bias,
            self.conv_bias,
        )
