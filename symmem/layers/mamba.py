"""The Mamba selective state-space mixer (Gu and Dao 2023, "Mamba: Linear-Time Sequence
Modeling with Selective State Spaces", arXiv:2312.00752, Section 3 and Algorithm 2).

With ``d`` = d_model, ``I`` = d_inner (``expand * d``), ``N`` = d_state, ``k`` =
d_conv and ``R`` = dt_rank, as transformers' ``MambaMixer`` builds it::

    in_proj   d -> 2I          2 I d   (+ 2I bias when ``bias``)
    conv1d    depthwise, k     I k     (+ I bias when ``conv_bias``)
    x_proj    I -> R + 2N      I (R + 2N)
    dt_proj   R -> I           R I + I
    A_log     I x N            I N
    D         I                I
    out_proj  I -> d           I d     (+ d when ``bias``)

Inference cache (the recurrent state, constant in the context length), per
sequence: the convolution state ``I k`` and the SSM state ``I N`` (transformers'
``MambaCache`` / the generic cache's conv and recurrent states).
"""

from __future__ import annotations

from typing import TYPE_CHECKING, ClassVar, Literal

import sympy

from symmem.layers._saved import low_precision, tokens
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
class Mamba(Layer):
    kind: ClassVar[str] = "mamba"
    summary: ClassVar[str] = "Mamba selective-SSM mixer: [batch, seq, d] -> [batch, seq, d]"
    examples: ClassVar[tuple[Example, ...]] = (
        Example("mamba(16, 32, 4, 4, 3)", "[2, 5, 16]"),
        Example("mamba(16, 32, 4, 4, 3, bias = true, conv_bias = false)", "[1, 7, 16]"),
        Example("mamba(16, 32, 4, 4, 3, bc_norm = weightless)", "[2, 5, 16]", "Falcon-Mamba"),
        Example("mamba(16, 32, 4, 4, 3, bc_norm = weighted)", "[3, 2, 16]", "Jamba"),
    )

    d_model: Size
    d_inner: Size
    d_state: Size = sympy.Integer(16)
    d_conv: Size = sympy.Integer(4)
    dt_rank: Size | None = None
    bias: bool = False
    conv_bias: bool = True
    #: RMSNorms of dt, B and C after x_proj: Falcon-Mamba's (no weight) or Jamba's (R + 2N
    #: weights)
    bc_norm: Literal["none", "weightless", "weighted"] = "none"

    @property
    def rank(self) -> sympy.Expr:
        """``dt_rank``; Mamba's default is ceil(d_model / 16)."""
        return sympy.ceiling(self.d_model / 16) if self.dt_rank is None else self.dt_rank

    def tensors(self) -> list[ParamTensor]:
        d, i, n, k, r = self.d_model, self.d_inner, self.d_state, self.d_conv, self.rank
        one = sympy.Integer(1)
        out = [ParamTensor("in_proj.weight", (2 * i, d), matmul=True, tp_split=True)]
        if self.bias:
            out.append(ParamTensor("in_proj.bias", (2 * i,)))
        out.append(ParamTensor("conv1d.weight", (i, one, k), tp_split=True))
        if self.conv_bias:
            out.append(ParamTensor("conv1d.bias", (i,)))
        out += [
            ParamTensor("x_proj.weight", (r + 2 * n, i), matmul=True),
            ParamTensor("dt_proj.weight", (i, r), matmul=True, tp_split=True),
            ParamTensor("dt_proj.bias", (i,)),
            ParamTensor("A_log", (i, n), tp_split=True),
            ParamTensor("D", (i,)),
            ParamTensor("out_proj.weight", (d, i), matmul=True, tp_split=True),
        ]
        if self.bias:
            out.append(ParamTensor("out_proj.bias", (d,)))
        if self.bc_norm == "weighted":
            out += [
                ParamTensor("dt_layernorm.weight", (r,)),
                ParamTensor("b_layernorm.weight", (n,)),
                ParamTensor("c_layernorm.weight", (n,)),
            ]
        return out

    def output_shape(self, shape: Shape) -> Shape:
        self.expect_last_dim(shape, self.d_model, "d_model")
        return shape

    def activations(self, shape: Shape, policy: ActPolicy) -> list[Saved]:
        """What the PyTorch reference path keeps (transformers' ``MambaMixer`` without the
        CUDA kernels: causal ``conv1d``, then the selective scan as a loop over the s
        steps, ``mamba_selective_scan``), for b sequences of s tokens, T = b s:

        in the activation dtype: the input (T d), in_proj's output (T 2I: conv1d reads
        one half, silu(gate) the other), the padded conv output (b I (s + k - 1): silu
        reads a slice), x_proj's input (a contiguous copy of the transposed silu output,
        T I, when b > 1: for one sequence the transpose is a view) and output
        (T (R + 2N): dt_proj, B and C read views), dt + dt_bias and
        softplus(dt) (T I each), the silu output (T I, read by the skip D x), silu(gate)
        (T I), out_proj's input (a copy, T I) and the zero initial state (b I N);
        in fp32: exp(A_log) and A = -exp(A_log) (I N each), the discretised A and B
        (T I N each), the output plus the skip (T I), and the state after each step
        (b I N each, read by the next step and by the product with C).  In bf16 / fp16
        the loop also keeps each state cast back (b I N, s of them) and the last fp32
        state is read by nothing; B, the silu output and D are read through fp32 copies
        (T N, T I, I).

        With ``bc_norm`` (RMSNorms of dt, B and C in fp32, cast back): in fp32 the
        normalised dt, B, C (T (R + 2N)) and three inverse RMS (T each) are kept as well;
        in bf16 / fp16 x_proj's output is no longer kept, but its fp32 copy (T (R + 2N)),
        the three inverse RMS and the normalised dt and C cast back (T (R + N)) are (B is
        read through its fp32 copy).  A weighted norm (Jamba) also keeps the cast
        normalised dt, B, C that its weight multiplies (T (R + 2N)).  Measured with
        saved_tensors_hooks against transformers 5.x's MambaMixer, FalconMambaMixer and
        JambaMambaMixer (tests/layers/test_mamba.py).
        """
        t = tokens(shape)
        s = shape[-2] if len(shape) >= 2 else sympy.Integer(1)
        b = t / s
        i, n, k = self.d_inner, self.d_state, self.d_conv
        low = low_precision(policy)
        state = b * i * n
        out = [
            Saved("input", prod(shape), "act", "input"),
            Saved("in_proj.out", t * 2 * i, "act", tp_split=True),
            Saved("conv1d.out", b * i * (s + k - 1), "act", tp_split=True),
            # x_proj reads the transposed silu output: a copy, except for one sequence,
            # whose transpose reshapes as a view (the silu output, kept anyway)
            Saved(
                "x_proj.input",
                sympy.Piecewise((0, sympy.Eq(b, 1)), (t * i, True)),
                "act",
                tp_split=True,
            ),
            *self._x_proj_out(t, low),
            Saved("dt_biased", t * i, "act", tp_split=True),
            Saved("dt", t * i, "act", tp_split=True),
            Saved("silu.out", t * i, "act", tp_split=True),
            Saved("gate.silu", t * i, "act", tp_split=True),
            Saved("out_proj.input", t * i, "act", tp_split=True),
            Saved("state0", state, "act", tp_split=True, small=True),
            Saved("exp_A_log", i * n, "fp32", tp_split=True, small=True),
            Saved("A", i * n, "fp32", tp_split=True, small=True),
            Saved("discrete_A", t * i * n, "fp32", tp_split=True),
            Saved("discrete_B", t * i * n, "fp32", tp_split=True),
            Saved("scan_plus_skip", t * i, "fp32", tp_split=True),
            Saved("states", (s - 1 if low else s) * state, "fp32", tp_split=True),
        ]
        if low:
            out += [
                Saved("states_cast", s * state, "act", tp_split=True),
                Saved("B_fp32", t * n, "fp32"),
                Saved("silu.out_fp32", t * i, "fp32", tp_split=True),
                Saved("D_fp32", i, "fp32", tp_split=True, small=True),
            ]
        return out

    def _x_proj_out(self, t: sympy.Expr, low: bool) -> list[Saved]:
        """x_proj's output (dt, B, C) and, with ``bc_norm``, what their norms keep."""
        r, n = self.rank, self.d_state
        if self.bc_norm == "none":
            return [Saved("x_proj.out", t * (r + 2 * n), "act")]
        out = [Saved("bc_norm.rsqrt", 3 * t, "fp32", small=True)]
        if low:
            out += [
                Saved("bc_norm.in_fp32", t * (r + 2 * n), "fp32"),
                Saved("bc_norm.dt_C", t * (r + n), "act"),
            ]
        else:
            out += [
                Saved("x_proj.out", t * (r + 2 * n), "act"),
                Saved("bc_norm.out", t * (r + 2 * n), "act"),
            ]
        if self.bc_norm == "weighted":
            out.append(Saved("bc_norm.weighted", t * (r + 2 * n), "act"))
        return out

    def kv_cache(self, shape: Shape, policy: ActPolicy) -> sympy.Expr:
        """The recurrent state of each sequence: conv state I k plus SSM state I N,
        whatever the number of tokens (in the KV-cache dtype, as transformers keeps both in
        the model's dtype)."""
        b = tokens(shape) / shape[-2] if len(shape) >= 2 else sympy.Integer(1)
        return b * self.d_inner * (self.d_conv + self.d_state)

    def kv_cache_split(self, tp: sympy.Expr) -> sympy.Expr:
        return tp  # channels split over tensor-parallel ranks

    def attends(self) -> str | None:
        return "causal"  # mixes the sequence causally: generated token by token

    def parallel_sizes(self) -> dict[str, sympy.Expr]:
        return {"tp": self.d_inner}

    def to_torch(self, ev: IntEval) -> torch.nn.Module:
        from symmem.layers._torch_mamba import TorchMamba

        return TorchMamba(
            ev(self.d_model),
            ev(self.d_inner),
            ev(self.d_state),
            ev(self.d_conv),
            ev(self.rank),
            self.bias,
            self.conv_bias,
            self.bc_norm,
        )
