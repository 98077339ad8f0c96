"""``torch.nn.TransformerDecoderLayer``: self-attention, attention over a memory (the
encoder's output), and a feed-forward block, each with a residual and a layer norm
(Vaswani et al. 2017, sec. 3.1, "Decoder").

Parameters (PyTorch ``nn.TransformerDecoderLayer``: two ``nn.MultiheadAttention`` of
``embed_dim = d_model``, ``linear1`` (F, d), ``linear2`` (d, F), three ``LayerNorm(d)``),
with ``bias = true``::

    2 (4 d^2 + 4 d)  +  2 d F + F + d  +  3 * 2 d

(without bias: ``8 d^2 + 2 d F + 3 d``, the norms keep their weights only).

The DSL has one stream (the target); the memory the cross-attention reads is taken as
its length, ``memory_len`` (its width is ``d_model``, as PyTorch requires), until the graph
has a second input.  The PyTorch equivalent makes a random memory in its forward.
``causal = true`` passes the square subsequent mask as ``tgt_mask`` (what a decoder is
trained with; PyTorch's own default is no mask).

Saved tensors: those of its parts (:class:`~symmem.layers.mha.MultiheadAttention`, layer
norm, the activation, dropout), composed as the forward runs them (measured on CPU).
"""

from __future__ import annotations

from dataclasses import replace
from typing import TYPE_CHECKING, ClassVar, Literal

import sympy

from symmem.errors import SemanticError
from symmem.layers._saved import act_fn_saved, dropout_saved, dropping, times, tokens
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
from symmem.layers.layernorm import LayerNorm
from symmem.layers.mha import MultiheadAttention
from symmem.policy import ActPolicy
from symmem.records import record

if TYPE_CHECKING:
    import torch


def _own(saved: list[Saved], prefix: str, keep_input: bool = False) -> list[Saved]:
    """A part's tensors as the composite's: renamed, and its stream tensors its own (the
    part's input is the layer's input only where ``keep_input``)."""
    out = []
    for s in saved:
        ref = "input" if (keep_input and s.ref == "input") else "own"
        out.append(replace(s, name=prefix + s.name, ref=ref))
    return out


@register
@record
class TransformerDecoderLayer(Layer):
    kind: ClassVar[str] = "transformer_decoder_layer"
    summary: ClassVar[str] = (
        "torch.nn.TransformerDecoderLayer: self-attention, attention over a memory, FFN"
    )
    dropout_fields: ClassVar[tuple[str, ...]] = ("dropout",)
    examples: ClassVar[tuple[Example, ...]] = (
        Example("transformer_decoder_layer(16, 4, 32, memory_len = 6)", "[2, 8, 16]"),
        Example("transformer_decoder_layer(16, 4, 32, dropout = 0, memory_len = 6)", "[1, 8, 16]"),
        Example(
            "transformer_decoder_layer(16, 4, 32, activation = gelu, norm_first = true, "
            "memory_len = 5)",
            "[2, 8, 16]",
        ),
        Example(
            "transformer_decoder_layer(16, 4, 32, dropout = 0, bias = false, causal = false, "
            "memory_len = 5)",
            "[2, 8, 16]",
        ),
    )

    d_model: Size
    nhead: Size
    dim_feedforward: Size = sympy.Integer(2048)
    dropout: Real = sympy.Rational(1, 10)
    activation: Literal["relu", "gelu"] = "relu"
    norm_first: bool = False
    bias: bool = True
    #: positions of the memory (the encoder's output) per sample
    memory_len: Size | None = None
    causal: bool = True

    def _attn(self, memory: bool) -> MultiheadAttention:
        return MultiheadAttention(
            self.d_model,
            self.nhead,
            dropout=self.dropout,
            bias=self.bias,
            memory_len=self.memory_len if memory else None,
            causal=self.causal and not memory,
            need_weights=False,
        )

    def _norm(self) -> LayerNorm:
        return LayerNorm(self.d_model, bias=self.bias)

    def validate(self, ev: Evaluator) -> None:

        if self.memory_len is None:
            raise SemanticError(
                "needs memory_len, the length of the memory its cross-attention reads (the "
                "encoder's output; its width is d_model)"
            )
        self._attn(False).validate(ev)
        self.require_probability(ev, self.dropout, "dropout")

    def tensors(self) -> list[ParamTensor]:
        d, f = self.d_model, self.dim_feedforward
        out: list[ParamTensor] = []
        for name, memory in (("self_attn.", False), ("multihead_attn.", True)):
            out += [replace(t, name=name + t.name) for t in self._attn(memory).tensors()]
        out.append(ParamTensor("linear1.weight", (f, d), matmul=True, tp_split=True))
        if self.bias:
            out.append(ParamTensor("linear1.bias", (f,), tp_split=True))
        out.append(ParamTensor("linear2.weight", (d, f), matmul=True, tp_split=True))
        if self.bias:
            out.append(ParamTensor("linear2.bias", (d,)))
        for i in (1, 2, 3):
            out += [replace(t, name=f"norm{i}.{t.name}") for t in self._norm().tensors()]
        return out

    def output_shape(self, shape: Shape) -> Shape:
        self.expect_last_dim(shape, self.d_model, "d_model")
        return shape

    def attends(self) -> str | None:
        return "causal" if self.causal else "bidirectional"

    def parallel_sizes(self) -> dict[str, sympy.Expr]:
        return {"tp": self.nhead}

    def kv_cache_split(self, tp: sympy.Expr) -> sympy.Expr:
        return sympy.Min(tp, self.nhead)

    def kv_cache(self, shape: Shape, policy: ActPolicy) -> sympy.Expr:
        """The self-attention's keys and values of every token, and the cross-attention's of
        the memory (once)."""
        return self._attn(False).kv_cache(shape, policy) + self._attn(True).kv_cache(shape, policy)

    def activations(self, shape: Shape, policy: ActPolicy) -> list[Saved]:
        """Post-norm (``norm_first = false``): ``x = norm1(x + dropout1(sa(x)))``, then
        ``norm2(x + dropout2(ca(x, memory)))``, then ``norm3(x + dropout3(ff(x)))``, ``ff =
        linear2(dropout(act(linear1(x))))``.  Each part keeps what it keeps alone; the
        residual sums are new tensors (what the norms keep), a norm's output is what the next
        part reads.  Pre-norm (``norm_first = true``): ``x + dropout1(sa(norm1(x)))`` and so
        on: norm1 keeps the layer's input, each part reads a norm's output."""
        n, t = prod(shape), tokens(shape)
        f, p = self.dim_feedforward, self.dropout
        pre = self.norm_first
        out: list[Saved] = []
        for i, (part, memory) in enumerate((("sa.", False), ("ca.", True)), start=1):
            norm = _own(self._norm().activations(shape, policy), f"norm{i}.", pre and i == 1)
            attn = _own(self._attn(memory).activations(shape, policy), part, not pre and i == 1)
            out += norm + attn + dropout_saved(f"dropout{i}.mask", n, p, policy)
        out += _own(self._norm().activations(shape, policy), "norm3.")
        out.append(Saved("linear1.input", n, "act"))
        acts = act_fn_saved(self.activation, t * f, "ff.", tp_split=True)
        out += acts
        on = dropping(p, policy)
        out += dropout_saved("ff.dropout.mask", t * f, p, policy, tp_split=True)
        # linear2 reads the dropout's output, or (p = 0) the activation's output, which relu
        # keeps already
        shared = self.activation == "relu"
        lin2 = [Saved("linear2.input", t * f, "act", tp_split=True)]
        out += times(lin2, on) + (times(lin2, 1 - on) if not shared else [])
        out += dropout_saved("dropout3.mask", n, p, policy)
        return out

    def to_torch(self, ev: IntEval) -> torch.nn.Module:
        import torch

        layer = torch.nn.TransformerDecoderLayer(
            ev(self.d_model),
            ev(self.nhead),
            dim_feedforward=ev(self.dim_feedforward),
            dropout=float(self.dropout),
            activation=self.activation,
            batch_first=True,
            norm_first=self.norm_first,
            bias=self.bias,
        )
        memory = ev(self.memory_len) if self.memory_len is not None else 1
        causal = self.causal

        class _Decoder(torch.nn.Module):
            def __init__(self) -> None:
                super().__init__()
                self.layer = layer

            def forward(self, x: torch.Tensor) -> torch.Tensor:
                mem = torch.randn(x.shape[0], memory, x.shape[-1], dtype=x.dtype)
                mask = None
                if causal:
                    mask = torch.nn.Transformer.generate_square_subsequent_mask(
                        x.shape[1], dtype=x.dtype
                    )
                return self.layer(x, mem, tgt_mask=mask, tgt_is_causal=causal)

        return _Decoder()
