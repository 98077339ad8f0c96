"""``torch.nn.MultiheadAttention``: self-attention, or attention over a memory whose keys and
values have their own widths (``kdim``, ``vdim``), with ``add_bias_kv`` and
``add_zero_attn``.

Parameters (PyTorch ``nn.MultiheadAttention`` source, ``_qkv_same_embed_dim``), E =
``embed_dim``:

* kdim = vdim = E: one packed ``in_proj_weight`` (3E, E);
* otherwise ``q_proj_weight`` (E, E), ``k_proj_weight`` (E, kdim), ``v_proj_weight``
  (E, vdim): ``E (E + kdim + vdim)``;
* ``in_proj_bias`` (3E) and ``out_proj`` (E, E) + bias (E) when ``bias``; ``bias_k`` and
  ``bias_v`` (1, 1, E each) when ``add_bias_kv``.

The DSL has one stream (the query).  Keys and values come from the stream itself
(self-attention), or, with ``memory_len = M``, from a memory of M positions per sample,
``[batch, M, kdim]`` for the keys and ``[batch, M, vdim]`` for the values (one tensor when
kdim = vdim): an encoder's output, which this layer takes as its length and widths until
the graph has a second input (the PyTorch equivalent makes a random memory in its forward).
The memory tensors the key and value projections keep are counted with this layer: at
batch > 1 each projection keeps its own copy (see below), at batch 1 a view, so several
layers reading one memory keep it once, which this count, per layer, does not know.

Saved tensors: docstring of :meth:`MultiheadAttention.activations`.
"""

from __future__ import annotations

from dataclasses import replace
from typing import TYPE_CHECKING, ClassVar

import sympy

from symmem.errors import SemanticError
from symmem.layers._saved import dropping, low_precision, times, tokens
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
    same,
)
from symmem.policy import ActPolicy
from symmem.records import record

if TYPE_CHECKING:
    import torch


def _one(batch: sympy.Expr) -> sympy.Expr:
    """1 at batch 1, else 0: decided on a number, a Piecewise while the batch is free."""
    batch = sympy.sympify(batch)
    if not batch.free_symbols:
        return sympy.Integer(int(batch == 1))
    return sympy.Piecewise((1, sympy.Eq(batch, 1, evaluate=False)), (0, True), evaluate=False)


@register
@record
class MultiheadAttention(Layer):
    kind: ClassVar[str] = "mha"
    aliases: ClassVar[tuple[str, ...]] = ("multihead_attention",)
    summary: ClassVar[str] = "torch.nn.MultiheadAttention: self-attention or over a memory"
    dropout_fields: ClassVar[tuple[str, ...]] = ("dropout",)
    examples: ClassVar[tuple[Example, ...]] = (
        Example("mha(16, 4)", "[2, 8, 16]"),
        Example("mha(16, 4, causal = true)", "[2, 8, 16]"),
        Example("mha(16, 4, memory_len = 6)", "[2, 8, 16]", "over a memory of width E"),
        Example("mha(16, 4, kdim = 12, vdim = 10, memory_len = 6)", "[2, 8, 16]", "kdim / vdim"),
        Example("mha(16, 4, kdim = 12, vdim = 12, memory_len = 6)", "[2, 8, 16]"),
        Example("mha(16, 4, kdim = 12, vdim = 12, memory_len = 6)", "[1, 8, 16]", "batch 1"),
        Example("mha(16, 4)", "[1, 8, 16]", "batch 1: x itself, no copy"),
        Example("linear(16, 16); relu; mha(16, 4)", "[2, 8, 16]", "x copied beside relu's out"),
        Example("linear(16, 16); relu; mha(16, 4)", "[1, 8, 16]", "x is relu's out, once"),
        Example("mha(16, 4, add_bias_kv = true, add_zero_attn = true)", "[2, 8, 16]"),
        Example(
            "mha(16, 4, kdim = 12, vdim = 10, memory_len = 6, add_bias_kv = true)", "[2, 8, 16]"
        ),
        Example("mha(16, 4, dropout = 0.1)", "[2, 8, 16]"),
        Example("mha(16, 4, kdim = 12, vdim = 10, memory_len = 6, dropout = 0.1)", "[2, 8, 16]"),
        Example("mha(16, 4, causal = true, dropout = 0.1)", "[2, 8, 16]"),
    )

    embed_dim: Size
    num_heads: Size
    dropout: Real = sympy.Integer(0)
    bias: bool = True
    add_bias_kv: bool = False
    add_zero_attn: bool = False
    kdim: Size | None = None
    vdim: Size | None = None
    #: positions of the memory the keys and values are read from (None: self-attention)
    memory_len: Size | None = None
    #: a causal mask (self-attention only)
    causal: bool = False
    #: PyTorch's ``need_weights``: true runs the explicit softmax path, false sdpa; none:
    #: the policy's attention (``eager`` is true)
    need_weights: bool | None = None

    # ------------------------------------------------------------ derived sizes
    @property
    def k_width(self) -> sympy.Expr:
        return self.embed_dim if self.kdim is None else self.kdim

    @property
    def v_width(self) -> sympy.Expr:
        return self.embed_dim if self.vdim is None else self.vdim

    @property
    def packed(self) -> bool:
        """PyTorch's ``_qkv_same_embed_dim``: one in_proj_weight."""
        return same(self.k_width, self.embed_dim) and same(self.v_width, self.embed_dim)

    def validate(self, ev: Evaluator) -> None:
        self.require_divides(ev, self.embed_dim, self.num_heads, "embed_dim / num_heads")
        self.require_probability(ev, self.dropout, "dropout")
        if self.memory_len is None and not self.packed:
            raise SemanticError(
                "kdim / vdim other than embed_dim need a memory to read keys and values from: "
                "give memory_len (the self-attention stream has width embed_dim)"
            )
        if self.memory_len is not None and self.causal:
            raise SemanticError("causal applies to self-attention, not over a memory")

    def tensors(self) -> list[ParamTensor]:
        e = self.embed_dim
        if self.packed:
            out = [ParamTensor("in_proj_weight", (3 * e, e), tp_split=True)]
        else:
            out = [
                ParamTensor("q_proj_weight", (e, e), tp_split=True),
                ParamTensor("k_proj_weight", (e, self.k_width), tp_split=True),
                ParamTensor("v_proj_weight", (e, self.v_width), tp_split=True),
            ]
        if self.bias:
            out.append(ParamTensor("in_proj_bias", (3 * e,), tp_split=True))
        out.append(ParamTensor("out_proj.weight", (e, e), matmul=True, tp_split=True))
        if self.bias:
            out.append(ParamTensor("out_proj.bias", (e,)))
        if self.add_bias_kv:
            out += [ParamTensor("bias_k", (1, 1, e)), ParamTensor("bias_v", (1, 1, e))]
        return out

    def output_shape(self, shape: Shape) -> Shape:
        self.expect_last_dim(shape, self.embed_dim, "embed_dim")
        return shape

    def attends(self) -> str | None:
        return "causal" if self.causal else "bidirectional"

    def parallel_sizes(self) -> dict[str, sympy.Expr]:
        return {"tp": self.num_heads}

    def kv_cache_split(self, tp: sympy.Expr) -> sympy.Expr:
        return sympy.Min(tp, self.num_heads)

    def kv_cache(self, shape: Shape, policy: ActPolicy) -> sympy.Expr:
        """Projected keys and values, E wide each: of every token for self-attention, of the
        memory's M positions (once, whatever the generated length) over a memory."""
        t = tokens(shape)
        if self.memory_len is None:
            return 2 * t * self.embed_dim
        s = shape[-2] if len(shape) >= 2 else sympy.Integer(1)
        return 2 * (t / s) * self.memory_len * self.embed_dim

    def with_policy(self, policy: ActPolicy) -> MultiheadAttention:
        if self.need_weights is not None:
            return self
        return replace(self, need_weights=policy.attention == "eager")

    def activations(self, shape: Shape, policy: ActPolicy) -> list[Saved]:
        """What ``F.multi_head_attention_forward`` keeps (torch 2.13, measured on CPU), for
        T = batch x s query tokens of width E, H heads, a source of L = (M or s) + bias_kv +
        zero_attn positions per sample:

        * the query stream x (the q projection's input) and the memory (one tensor, or the
          key's and the value's when kdim != vdim).  With ``batch_first`` PyTorch transposes
          them to [s, b, E] and ``F.linear`` flattens that into a copy at batch > 1: x is
          then a copy of its own, and a memory read by the separate k and v projections is
          copied twice (measured: at batch 1 the saved x is the stream tensor itself);
        * the projections: self-attention makes one packed q|k|v tensor (3 T E) whose views
          q, k, v are what attention reads; over a memory of width E, q (T E) and a packed
          k|v (2 b M E); otherwise q, k, v apart.  ``add_bias_kv`` / ``add_zero_attn``
          concatenate onto k and v: new tensors of b L E each, and the packed tensor is
          kept only if another view of it is;
        * ``need_weights = true`` (the explicit path): q scaled (T E), k, v, the softmax
          (b H s L), with training dropout its noise and output (b H s L each), and
          out_proj's input (a transpose copy, T E);
        * ``need_weights = false``: ``scaled_dot_product_attention`` on q, k, v, keeping
          them, its output (which is out_proj's input) and the fp32 log-sum-exp (b H s);
          on CPU with training dropout the math path instead: q and k scaled, v, the
          softmax, the dropout noise and output, upcast to fp32 in bf16 / fp16 (v then a
          copy, b L E), and out_proj's input.
        """
        t = tokens(shape)
        s = shape[-2] if len(shape) >= 2 else sympy.Integer(1)
        b, e, h = t / s, self.embed_dim, self.num_heads
        src = s if self.memory_len is None else self.memory_len
        length = src + int(self.add_bias_kv) + int(self.add_zero_attn)
        extended = self.add_bias_kv or self.add_zero_attn
        scores = b * h * s * length
        kv = b * length * e  # elements of k (and of v) as attention reads them
        # batch_first: the projections read x and the memory transposed, [s, b, E]; F.linear
        # flattens that into a copy at batch > 1 (one per projection), a view at batch 1
        one = _one(b)
        out = times([Saved("input", prod(shape), "act", "input")], one)
        out += times([Saved("input_copy", prod(shape), "act")], 1 - one)
        if self.memory_len is not None:
            m = b * self.memory_len
            if same(self.k_width, self.v_width):
                # one tensor; copied once per projection reading it at batch > 1 (the packed
                # k|v projection reads it once, the separate k and v projections twice)
                reads = 1 if self.packed else 2 - one
                out.append(Saved("memory", reads * m * self.k_width, "act"))
            else:
                out += [
                    Saved("memory_k", m * self.k_width, "act"),
                    Saved("memory_v", m * self.v_width, "act"),
                ]
        # what q, k and v are: a view of a packed tensor (its name and size) or their own
        if self.memory_len is None:
            q_of = k_of = ("qkv", 3 * t * e)
        elif self.packed:
            q_of, k_of = ("q", t * e), ("kv", 2 * b * self.memory_len * e)
        else:
            q_of, k_of = ("q", t * e), ("k|v", None)
        if extended:
            k_of = ("k|v", None)
        nw = policy.attention == "eager" if self.need_weights is None else self.need_weights
        on = dropping(self.dropout, policy)

        def kept(views: list[tuple[str, sympy.Expr | None]], dtype: str) -> list[Saved]:
            """The packed storages the saved views belong to (once each), k and v apart."""
            got: list[Saved] = []
            for name, size in views:
                if size is None:
                    got += [
                        Saved("k", kv, dtype, tp_split=True),
                        Saved("v", kv, dtype, tp_split=True),
                    ]
                elif all(x.name != name for x in got):
                    got.append(Saved(name, size, dtype, tp_split=True))
            return got

        if nw:
            out += kept([k_of], "act")
            out += [
                Saved("q_scaled", t * e, "act", tp_split=True),
                Saved("probs", scores, "act", tp_split=True, core=True),
                Saved("out_proj.input", t * e, "act", tp_split=True),
            ]
            out += times(
                [
                    Saved("attn_dropout.noise", scores, "mask", tp_split=True, core=True),
                    Saved("attn_dropout.out", scores, "act", tp_split=True, core=True),
                ],
                on,
            )
            return out
        fused = [
            *kept([q_of, k_of], "act"),
            Saved("out", t * e, "act", tp_split=True),
            Saved("logsumexp", b * h * s, "fp32", tp_split=True, small=True),
        ]
        if policy.device != "cpu":
            return out + fused
        low = low_precision(policy)
        wide = "fp32" if low else "act"
        if low:
            v_math = [Saved("v_fp32", kv, "fp32", tp_split=True)]
        else:  # v itself: a view of its packed tensor, or its own
            v_math = kept([k_of], "act")
            v_math = [x for x in v_math if x.name != "k"]
        math = [
            *v_math,
            Saved("q_scaled", t * e, wide, tp_split=True),
            Saved("k_scaled", kv, wide, tp_split=True),
            Saved("probs", scores, wide, tp_split=True, core=True),
            Saved("attn_dropout.noise", scores, wide, tp_split=True, core=True),
            Saved("attn_dropout.out", scores, wide, tp_split=True, core=True),
            Saved("out_proj.input", t * e, "act", tp_split=True),
        ]
        return out + times(fused, 1 - on) + times(math, on)

    def to_torch(self, ev: IntEval) -> torch.nn.Module:
        import torch

        e, k_w, v_w = ev(self.embed_dim), ev(self.k_width), ev(self.v_width)
        mha = torch.nn.MultiheadAttention(
            e,
            ev(self.num_heads),
            dropout=float(self.dropout),
            bias=self.bias,
            add_bias_kv=self.add_bias_kv,
            add_zero_attn=self.add_zero_attn,
            kdim=k_w,
            vdim=v_w,
            batch_first=True,
        )
        memory = None if self.memory_len is None else ev(self.memory_len)
        need_weights = bool(self.need_weights)
        causal = self.causal

        class _Mha(torch.nn.Module):
            def __init__(self) -> None:
                super().__init__()
                self.mha = mha

            def forward(self, x: torch.Tensor) -> torch.Tensor:
                key = value = x
                if memory is not None:  # an encoder's output, as the memory
                    key = torch.randn(x.shape[0], memory, k_w, dtype=x.dtype)
                    value = key if k_w == v_w else torch.randn(x.shape[0], memory, v_w).to(x)
                mask = None
                if causal:
                    mask = torch.nn.Transformer.generate_square_subsequent_mask(
                        x.shape[1], dtype=x.dtype
                    )
                return self.mha(
                    x, key, value, need_weights=need_weights, attn_mask=mask, is_causal=causal
                )[0]

        return _Mha()
