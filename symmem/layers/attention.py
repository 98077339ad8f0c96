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
``sinks`` (gpt-oss, Xiao et al. 2023 "Efficient Streaming Language Models with
Attention Sinks"; OpenAI 2025 gpt-oss model card) adds one learned logit per
head, ``h`` parameters, as an extra softmax column that takes probability and
gives no value: transformers' ``GptOssAttention.sinks``.
"""

from __future__ import annotations

from dataclasses import replace
from typing import TYPE_CHECKING, ClassVar, Literal

import sympy

from symmem.constraints import divides, require
from symmem.layers._saved import (
    dropping,
    eager_softmax_saved,
    low_precision,
    rmsnorm_saved,
    times,
    tokens,
)
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
    prod,
    register,
)
from symmem.policy import ActPolicy
from symmem.records import record

if TYPE_CHECKING:
    import torch


def _one(batch: sympy.Expr) -> sympy.Expr:
    """1 at batch 1, else 0: decided when the batch is a number, a Piecewise while it is free
    (the batch stays a symbol in formulas, to be solved and swept over)."""
    batch = sympy.sympify(batch)
    if not batch.free_symbols:
        return sympy.Integer(int(batch == 1))
    return sympy.Piecewise((1, sympy.Eq(batch, 1, evaluate=False)), (0, True), evaluate=False)


def projections(
    d: Size,
    d_kv_in: Size,
    hk: Size,
    gk: Size,
    qkv_bias: bool,
    k_bias: bool | None,
    out_bias: bool,
) -> list[ParamTensor]:
    """The q, k, v and o projections of an attention layer: q and o between ``d`` and the
    heads' width ``hk``, k and v from ``d_kv_in`` (``d`` for self-attention, the memory's
    width for cross-attention) to the KV heads' width ``gk``.  Megatron-LM splits q, k and v
    column-parallel and o row-parallel.  ``k_bias`` None: k has a bias when q and v do
    (Whisper's k_proj has none)."""
    out = [
        ParamTensor("q_proj.weight", (hk, d), matmul=True, tp_split=True),
        ParamTensor("k_proj.weight", (gk, d_kv_in), matmul=True, tp_split=True),
        ParamTensor("v_proj.weight", (gk, d_kv_in), matmul=True, tp_split=True),
        ParamTensor("o_proj.weight", (d, hk), matmul=True, tp_split=True),
    ]
    if qkv_bias:
        out.append(ParamTensor("q_proj.bias", (hk,)))
    if qkv_bias if k_bias is None else k_bias:
        out.append(ParamTensor("k_proj.bias", (gk,)))
    if qkv_bias:
        out.append(ParamTensor("v_proj.bias", (gk,)))
    if out_bias:
        out.append(ParamTensor("o_proj.bias", (d,)))
    return out


@register
@record
class Attention(Layer):
    kind: ClassVar[str] = "attention"
    summary: ClassVar[str] = "multi-head / grouped-query / multi-query self-attention"
    examples: ClassVar[tuple[Example, ...]] = (
        Example("attention(16, heads = 4)", "[2, 8, 16]"),
        Example("attention(16, heads = 4, kv_heads = 2, qk_norm = true)", "[2, 8, 16]"),
        Example(
            "attention(16, heads = 4, kv_heads = 2, qk_norm = true, qk_norm_scope = full)",
            "[2, 8, 16]",
        ),
        Example("attention(16, heads = 4, causal = false, dropout = 0.1)", "[2, 8, 16]"),
        Example(
            "attention(16, heads = 4, kv_heads = 2, sinks = true, window = 4)",
            "[2, 8, 16]",
            "gpt-oss: a learned sink logit per head (eager softmax over s + 1 columns)",
        ),
        Example("attention(16, heads = 4, sinks = true, dropout = 0.1)", "[2, 8, 16]"),
        Example(
            "attention(16, heads = 4, causal = false, k_bias = false)",
            "[2, 8, 16]",
            "Whisper: q, v and o with biases, k without",
        ),
    )
    dropout_fields: ClassVar[tuple[str, ...]] = ("dropout",)

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
    #: eager softmax in fp32 then cast back (true: transformers' Llama family), or in the
    #: activation dtype (false: GPT-2, BERT, T5, Falcon); none: the implementation's rule
    softmax_fp32: bool | None = None
    #: q, k and v are views of one projection's output (GPT-2's ``c_attn``, a single Conv1D
    #: of width 3d): a saved view of one of them keeps the whole 3 T d storage
    fused_qkv: bool = False
    #: a learned sink logit per head (gpt-oss): h parameters, one more softmax column
    sinks: bool = False
    #: the k projection's bias (None: as qkv_bias; Whisper's k_proj has none)
    k_bias: bool | None = None

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
        require(
            ev,
            divides(
                self.heads,
                self.n_kv,
                lambda h, g: f"heads = {h} is not a multiple of kv_heads = {g}",
            ),
        )

    # ------------------------------------------------------------ formulas
    def tensors(self) -> list[ParamTensor]:
        d, hk, gk = self.d_model, self.heads * self.dk, self.n_kv * self.dk
        out = projections(d, d, hk, gk, self.qkv_bias, self.k_bias, self.out_bias)
        if self.qk_norm:
            qn, kn = (self.dk, self.dk) if self.qk_norm_scope == "head" else (hk, gk)
            out += [ParamTensor("q_norm.weight", (qn,)), ParamTensor("k_norm.weight", (kn,))]
        if self.sinks:
            out.append(ParamTensor("sinks", (self.heads,), tp_split=True))
        return out

    def output_shape(self, shape: Shape) -> Shape:
        self.expect_last_dim(shape, self.d_model, "d_model")
        return shape

    def activations(self, shape: Shape, policy: ActPolicy) -> list[Saved]:
        """What one attention layer keeps for backward (b*s tokens of width d).

        Always: the input x (read by the q, k and v projections: one tensor).
        ``eager`` (q @ k^T, softmax, dropout, @ v): q, k and v with k and v
        *expanded* to all heads for grouped-query attention (``repeat_kv``
        makes new tensors, so GQA saves as much as multi-head), the boolean
        causal mask (s^2, ``masked_fill``), the softmax output b*h*s^2 (plus
        its cast copy when the softmax runs in fp32: ``policy.softmax_fp32``),
        and with training dropout its mask and output (b*h*s^2 each), and
        o_proj's input (transpose + reshape copies).  Korthikanti et al. 2022
        Section 4.1: 11 sbh + 5 a s^2 b bytes in 16 bits (x 2, q k 4, v 2,
        o 2, with the residual dropout mask 1 outside this layer).
        ``sdpa`` / ``flash`` (fused kernel: CPU ``_scaled_dot_product_flash_attention_for_cpu``,
        CUDA flash / memory-efficient): q, k, v at their own head counts (no
        expansion), the output (whose transpose + reshape is a view, so
        o_proj's input is the same storage) and the fp32 log-sum-exp b*h*s.
        On CPU, sdpa with dropout runs the math path
        (``_scaled_dot_product_attention_math``), which upcasts bf16/fp16 to
        fp32, expands k and v, and keeps scaled q and k, v, the softmax, the
        dropout noise and its output, all fp32, plus o_proj's input.
        With ``sinks`` (gpt-oss), transformers has no sdpa path (``_supports_sdpa =
        False``: sdpa falls back to eager, as here): the eager softmax runs over
        s + 1 columns (the sink's appended by ``cat``), after subtracting the row
        maximum (``max(dim)`` keeps its int64 indices, b*h*s), and ``@ v`` reads a
        view of the softmax output (its storage, s + 1 columns wide, counted once).
        Measured with saved_tensors_hooks (torch 2.13 CPU); tests/test_activations.py.

        Under a frozen base (:attr:`Saved.grads`): x and o_proj's input are the operands of
        the projections' weight gradients; ``q @ k^T`` keeps q for k's gradient and k for q's;
        ``@ v`` keeps the probabilities for v's gradient and v for theirs; the fused kernels
        keep q, k, v, their output and the log-sum-exp whenever q, k or v needs a gradient
        (tests/test_lora_saved.py).
        """
        ups: list[tuple[str, ...]] = [("input", f"{n}_proj.weight") for n in "qkv"]
        q_up, k_up, v_up = ups
        qk: tuple[str, ...] = ("input", "q_proj.weight", "k_proj.weight")
        qkv: tuple[str, ...] = (*qk, "v_proj.weight")
        if self.fused_qkv:  # q, k and v are slices of one output: each needs what any needs
            q_up = k_up = v_up = qk = qkv
        impl = self.impl or policy.attention
        if self.sinks and impl == "sdpa":
            impl = "eager"
        t = tokens(shape)
        s = shape[-2] if len(shape) >= 2 else sympy.Integer(1)
        bh = (t / s) * self.heads  # batch x heads
        hk, gk = self.heads * self.dk, self.n_kv * self.dk
        projs = ("q_proj.weight", "k_proj.weight", "v_proj.weight")
        out = [Saved("input", prod(shape), "act", "input", grads=projs)]
        if self.qk_norm:
            full = self.qk_norm_scope == "full"
            qshape = (t, hk) if full else (t * self.heads, self.dk)
            kshape = (t, gk) if full else (t * self.n_kv, self.dk)
            out += rmsnorm_saved(
                "q_norm.", qshape, True, policy, in_ref="own", tp_split=True, upstream=q_up
            )
            out += rmsnorm_saved(
                "k_norm.", kshape, True, policy, in_ref="own", tp_split=True, upstream=k_up
            )
            # q and k lie downstream of their norms' weights too
            q_up, k_up = (*q_up, "q_norm.weight"), (*k_up, "k_norm.weight")
            qk = (*qk, "q_norm.weight", "k_norm.weight")
            qkv = (*qkv, "q_norm.weight", "k_norm.weight")
        # 1 when the attention dropout keeps tensors, decided at p's value (a Piecewise while free)
        on = dropping(self.dropout, policy)
        scores = bh * s * s
        cols = bh * s * (s + 1) if self.sinks else scores
        if impl == "eager":
            out += [
                Saved("q", t * hk, "act", tp_split=True, grads=k_up),
                Saved("k", t * hk, "act", tp_split=True, grads=q_up),  # expanded to all heads
                Saved("v", t * hk, "act", tp_split=True, grads=qk),
            ]
            if self.causal and policy.causal_mask:
                out.append(Saved("causal_mask", s * s, "bool", small=True, grads=qk))
            if self.sinks:
                out.append(
                    Saved("row_max.indices", bh * s, "int64", tp_split=True, small=True, grads=qk)
                )
            out += eager_softmax_saved(
                cols, scores, self.dropout, policy, self.softmax_fp32, qk=qk, v=v_up
            )
            out.append(
                Saved("o_proj.input", t * hk, "act", tp_split=True, grads=("o_proj.weight",))
            )
            return out
        # the kernel keeps all five when q, k or v needs a gradient; its output is o_proj's input
        fused = [
            Saved("q", t * hk, "act", tp_split=True, grads=qkv),
            Saved("k", t * gk, "act", tp_split=True, grads=qkv),
            Saved("v", t * gk, "act", tp_split=True, grads=qkv),
            Saved("out", t * hk, "act", tp_split=True, grads=(*qkv, "o_proj.weight")),
            Saved("logsumexp", bh * s, "fp32", tp_split=True, small=True, grads=qkv),
        ]
        if policy.device != "cpu":
            return out + fused
        v = t * hk
        if self.fused_qkv and not low_precision(policy):
            # in fp32 the math path keeps v itself: at batch 1 the view of the fused projection
            # (no copy: [1, h, s, k] -> [h, s, k] is a view), so its whole 3 T d storage;
            # at batch > 1 bmm's reshape copies it (measured, transformers' GPT-2)
            v = v * (1 + 2 * _one(t / s))
        math = [
            Saved("q_scaled", t * hk, "fp32", tp_split=True, grads=k_up),
            Saved("k_scaled", t * hk, "fp32", tp_split=True, grads=q_up),
            Saved("v", v, "fp32", tp_split=True, grads=qk),
            Saved("probs", scores, "fp32", tp_split=True, core=True, grads=qk),
            Saved("attn_dropout.noise", scores, "fp32", tp_split=True, core=True, grads=qk),
            Saved("attn_dropout.out", scores, "fp32", tp_split=True, core=True, grads=v_up),
            Saved("o_proj.input", t * hk, "act", tp_split=True, grads=("o_proj.weight",)),
        ]
        # the CPU runs sdpa with dropout on the math path, without on its flash kernel
        return out + times(fused, 1 - on) + times(math, on)

    def with_policy(self, policy: ActPolicy) -> Attention:
        impl = self.impl or policy.attention
        if self.sinks and impl == "sdpa":
            impl = "eager"  # transformers' gpt-oss has no sdpa path
        return self if self.impl == impl else replace(self, impl=impl)

    def kv_cache(self, shape: Shape, policy: ActPolicy) -> sympy.Expr:
        """Keys and values of every cached token: 2 * batch * tokens * kv_heads * head_dim,
        with tokens capped at ``window`` for sliding-window layers (Mistral's rolling buffer)."""
        t = tokens(shape)
        s = shape[-2] if len(shape) >= 2 else sympy.Integer(1)
        if self.window is not None:
            t = t / s * sympy.Min(s, self.window)
        return 2 * t * self.n_kv * self.dk

    def kv_cache_split(self, tp: sympy.Expr) -> sympy.Expr:
        # k / v heads split over tp ranks, replicated when there are fewer kv heads than ranks
        return sympy.Min(tp, self.n_kv)

    def kv_window(self) -> sympy.Expr | None:
        return self.window

    def attends(self) -> str | None:
        return "causal" if self.causal else "bidirectional"

    def parallel_sizes(self) -> dict[str, sympy.Expr]:
        return {"tp": self.heads}

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
            impl="eager" if self.sinks and self.impl in (None, "sdpa") else self.impl or "sdpa",
            qk_norm_scope=self.qk_norm_scope,
            softmax_fp32=bool(self.softmax_fp32),
            sinks=self.sinks,
            k_bias=self.qkv_bias if self.k_bias is None else self.k_bias,
        )
