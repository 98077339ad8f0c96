"""Cross-attention: queries from the stream, keys and values from a second input.

The decoder of an encoder-decoder (Vaswani et al. 2017, Section 3.2.3 "encoder-decoder
attention"; transformers' ``T5Attention(is_cross_attention)``, ``BartAttention`` with
``key_value_states``, ``WhisperAttention``) reads the encoder's output, the ``memory``:
``[batch, m, d_mem]``, the output shape of the part it names (``memory = encoder``).  With
``h`` heads, ``g`` key/value heads and head size ``k``:

    q: d*h*k (+ h*k)   k, v: d_mem*g*k each (+ g*k each; ``k_bias = false``: no k bias,
    Whisper)   o: h*k*d (+ d)

Its KV cache is the memory's keys and values, computed once from the encoder output and
kept for every generated token: ``2 * batch * m * g * k`` elements, constant in the number
of generated tokens (transformers' ``EncoderDecoderCache.cross_attention_cache``).
"""

from __future__ import annotations

from dataclasses import replace
from typing import TYPE_CHECKING, ClassVar, Literal

import sympy

from symmem.errors import ShapeError
from symmem.layers._saved import (
    dropping,
    eager_softmax_saved,
    times,
    tokens,
)
from symmem.layers.attention import projections
from symmem.layers.base import (
    Evaluator,
    Example,
    IntEval,
    Layer,
    ParamTensor,
    Real,
    Saved,
    Shape,
    Size,
    Stream,
    fmt_shape,
    prod,
    register,
)
from symmem.policy import ActPolicy
from symmem.records import record

if TYPE_CHECKING:
    import torch


@register
@record
class CrossAttention(Layer):
    kind: ClassVar[str] = "cross_attention"
    summary: ClassVar[str] = "attention from the stream to a second input (an encoder's output)"
    examples: ClassVar[tuple[Example, ...]] = (
        Example("cross_attention(16, memory = [2, 5, 12], heads = 4)", "[2, 8, 16]"),
        Example(
            "cross_attention(16, memory = [2, 5, 16], heads = 4, kv_heads = 2, k_bias = false)",
            "[2, 8, 16]",
            "grouped keys and values; Whisper's k_proj without bias",
        ),
        Example(
            "cross_attention(16, memory = [2, 5, 16], heads = 4, dropout = 0.1)",
            "[2, 8, 16]",
        ),
    )
    dropout_fields: ClassVar[tuple[str, ...]] = ("dropout",)

    d_model: Size
    #: the second input, [batch, m, d_mem]: a part's name or a shape
    memory: Stream
    heads: Size
    kv_heads: Size | None = None
    head_dim: Size | None = None
    qkv_bias: bool = True
    #: the k projection's bias (None: as qkv_bias; Whisper's k_proj has none)
    k_bias: bool | None = None
    out_bias: bool = True
    dropout: Real = sympy.Integer(0)
    impl: Literal["eager", "sdpa", "flash"] | None = None
    #: eager softmax in fp32 then cast back; none: the implementation's rule
    softmax_fp32: bool | None = None

    @property
    def n_kv(self) -> sympy.Expr:
        return self.heads if self.kv_heads is None else self.kv_heads

    @property
    def dk(self) -> sympy.Expr:
        return self.d_model / self.heads if self.head_dim is None else self.head_dim

    @property
    def m(self) -> sympy.Expr:
        """The memory's length (its second-to-last dimension)."""
        return self.memory[-2] if len(self.memory) >= 2 else sympy.Integer(1)

    @property
    def d_mem(self) -> sympy.Expr:
        return self.memory[-1]

    def reads_stream(self) -> Shape:
        return self.memory

    def validate(self, ev: Evaluator) -> None:
        if self.head_dim is None:
            self.require_integer(ev, self.d_model / self.heads, "head_dim = d_model / heads")

    def tensors(self) -> list[ParamTensor]:
        hk, gk = self.heads * self.dk, self.n_kv * self.dk
        return projections(
            self.d_model, self.d_mem, hk, gk, self.qkv_bias, self.k_bias, self.out_bias
        )

    def output_shape(self, shape: Shape) -> Shape:
        self.expect_last_dim(shape, self.d_model, "d_model")
        if len(self.memory) != len(shape):
            raise ShapeError(
                f"reads the memory {fmt_shape(self.memory)}, whose rank differs from its input's"
            )
        return shape

    def activations(self, shape: Shape, policy: ActPolicy) -> list[Saved]:
        """What one cross-attention keeps for backward, as self-attention
        (:class:`symmem.layers.attention.Attention`, measured the same way) with the keys'
        length ``m`` in place of ``s``: the input x (read by q_proj) and the memory (read by
        k_proj and v_proj: one tensor; counted by each cross-attention layer), no causal mask.
        Eager: q, k and v (k, v expanded to all heads), the softmax b*h*s*m (and its cast
        copy in fp32), its dropout mask and output, o_proj's input.  sdpa / flash: q, k, v,
        the output and the fp32 log-sum-exp b*h*s; on CPU with dropout the math path (fp32
        scaled q, k, v, softmax, dropout noise and output).
        """
        impl = self.impl or policy.attention
        t = tokens(shape)
        s = shape[-2] if len(shape) >= 2 else sympy.Integer(1)
        bh = (t / s) * self.heads
        tm = prod(self.memory[:-1])  # batch x m
        hk, gk = self.heads * self.dk, self.n_kv * self.dk
        out = [
            Saved("input", prod(shape), "act", "input"),
            # the encoder output, read by k_proj and v_proj: one storage for every layer
            Saved("memory", prod(self.memory), "act", "memory"),
        ]
        on = dropping(self.dropout, policy)
        scores = bh * s * self.m
        if impl == "eager":
            out += [
                Saved("q", t * hk, "act", tp_split=True),
                Saved("k", tm * hk, "act", tp_split=True),
                Saved("v", tm * hk, "act", tp_split=True),
            ]
            out += eager_softmax_saved(scores, scores, self.dropout, policy, self.softmax_fp32)
            out.append(Saved("o_proj.input", t * hk, "act", tp_split=True))
            return out
        fused = [
            Saved("q", t * hk, "act", tp_split=True),
            Saved("k", tm * gk, "act", tp_split=True),
            Saved("v", tm * gk, "act", tp_split=True),
            Saved("out", t * hk, "act", tp_split=True),
            Saved("logsumexp", bh * s, "fp32", tp_split=True, small=True),
        ]
        if policy.device != "cpu":
            return out + fused
        math = [
            Saved("q_scaled", t * hk, "fp32", tp_split=True),
            Saved("k_scaled", tm * hk, "fp32", tp_split=True),
            Saved("v", tm * hk, "fp32", tp_split=True),
            Saved("probs", scores, "fp32", tp_split=True, core=True),
            Saved("attn_dropout.noise", scores, "fp32", tp_split=True, core=True),
            Saved("attn_dropout.out", scores, "fp32", tp_split=True, core=True),
            Saved("o_proj.input", t * hk, "act", tp_split=True),
        ]
        return out + times(fused, 1 - on) + times(math, on)

    def with_policy(self, policy: ActPolicy) -> CrossAttention:
        impl = self.impl or policy.attention
        return self if self.impl == impl else replace(self, impl=impl)

    def kv_cache(self, shape: Shape, policy: ActPolicy) -> sympy.Expr:
        """The memory's keys and values, once: 2 * batch * m * kv_heads * head_dim (constant
        in the generated tokens)."""
        return 2 * prod(self.memory[:-1]) * self.n_kv * self.dk

    def kv_cache_split(self, tp: sympy.Expr) -> sympy.Expr:
        return sympy.Min(tp, self.n_kv)

    def attends(self) -> str | None:
        return "cross"

    def parallel_sizes(self) -> dict[str, sympy.Expr]:
        return {"tp": self.heads}

    def to_torch(self, ev: IntEval) -> torch.nn.Module:
        from symmem.layers._torch_attention import TorchCrossAttention

        return TorchCrossAttention(
            d_model=ev(self.d_model),
            memory=tuple(ev(x) for x in self.memory),
            heads=ev(self.heads),
            kv_heads=ev(self.n_kv),
            head_dim=ev(self.dk),
            qkv_bias=self.qkv_bias,
            k_bias=self.qkv_bias if self.k_bias is None else self.k_bias,
            out_bias=self.out_bias,
            dropout=float(self.dropout),
            impl=self.impl or "sdpa",
            softmax_fp32=bool(self.softmax_fp32),
        )
