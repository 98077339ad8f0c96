"""Recurrent layers: ``rnn`` (Elman, tanh), ``lstm`` (Hochreiter and Schmidhuber
1997) and ``gru`` (Cho et al. 2014): one formula with a gate count G (1, 4, 3).

For hidden size ``h``, a layer reading ``n`` inputs has, per direction::

    G*h*n  (input weights)  +  G*h*h  (recurrent weights)  +  B*G*h  (biases)

Layers after the first read ``n = h * dirs`` (the previous layer's output,
both directions concatenated); ``dirs`` is 2 when ``bidirectional``.

The bias count B is where the two frameworks differ:

* ``convention = pytorch`` (default): ``b_ih`` and ``b_hh``, so B = 2 (PyTorch
  ``nn.RNN``/``nn.LSTM``/``nn.GRU`` docs, "Variables": ``bias_ih_l[k]`` and
  ``bias_hh_l[k]`` of shape ``(G*hidden_size)``).  PyTorch's GRU applies the
  reset gate after the recurrent matmul, ``n = tanh(W_in x + b_in + r * (W_hn h + b_hn))``,
  which is Keras' ``reset_after = true``.
* ``convention = keras``: one bias vector (Keras ``LSTM``/``SimpleRNN``:
  ``bias`` of shape ``(G*units,)``), so B = 1, giving the textbook
  ``4 (n h + h^2 + h)`` for an LSTM; except Keras' GRU with ``reset_after =
  true`` (its default since TF 2 / Keras 3), whose ``bias`` has shape
  ``(2, 3*units)``: B = 2, identical to PyTorch's GRU.

Input ``[batch, seq, input_size]`` (``batch_first = true``) or ``[seq,
input_size]``; output ``[batch, seq, hidden_size * dirs]`` (the full sequence
of the last layer, as ``output`` of PyTorch or ``return_sequences = true``).
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import TYPE_CHECKING, ClassVar, Literal

import sympy

from symmem.errors import SemanticError, ShapeError
from symmem.layers._saved import dropout_saved
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
    fmt_shape,
    prod,
    register,
)
from symmem.policy import ActPolicy

if TYPE_CHECKING:
    import torch


@dataclass(frozen=True)
class _Recurrent(Layer):
    gates: ClassVar[int] = 1
    summary: ClassVar[str] = "recurrent layer"
    recurrent: ClassVar[bool] = True
    dropout_fields: ClassVar[tuple[str, ...]] = ("dropout",)

    input_size: Size
    hidden_size: Size
    num_layers: Size = sympy.Integer(1)
    bidirectional: bool = False
    bias: bool = True
    convention: Literal["pytorch", "keras"] = "pytorch"
    #: GRU only: reset gate after the recurrent matmul (two bias vectors); default true
    reset_after: bool | None = None
    #: dropout on the outputs of every layer but the last (PyTorch ``dropout``)
    dropout: Real = sympy.Integer(0)

    # ------------------------------------------------------------ derived sizes
    @property
    def dirs(self) -> int:
        return 2 if self.bidirectional else 1

    @property
    def bias_vectors(self) -> int:
        """B: bias vectors of size G*h per layer and direction."""
        if not self.bias:
            return 0
        if self.convention == "pytorch":
            return 2
        if self.kind == "gru" and self.reset_after is not False:
            return 2
        return 1

    def validate(self, ev: Evaluator) -> None:
        if self.reset_after is not None and self.kind != "gru":
            raise SemanticError(f"reset_after applies to gru only, not {self.kind}")
        if self.kind == "gru" and self.convention == "pytorch" and self.reset_after is False:
            raise SemanticError(
                "reset_after = false needs convention = keras: PyTorch's GRU always applies the "
                "reset gate after the recurrent matmul (two bias vectors, Keras reset_after = true)"
            )
        self.require_probability(ev, self.dropout, "dropout")

    # ------------------------------------------------------------ formulas
    def tensors(self) -> list[ParamTensor]:
        g, h, b = self.gates, self.hidden_size, self.bias_vectors
        dirs = sympy.Integer(self.dirs)
        first_in, later_in = self.input_size, h * dirs
        later = self.num_layers - 1
        out: list[ParamTensor] = []
        # (name suffix, input size, copies): layer 0, then layers 1..L-1 (identical, counted together)
        groups = [("l0", first_in, dirs)]
        if later != 0:
            groups.append(("l1+", later_in, dirs * later))
        for suffix, n_in, copies in groups:
            if self.convention == "pytorch":
                out += [
                    ParamTensor(f"weight_ih_{suffix}", (g * h, n_in), copies),
                    ParamTensor(f"weight_hh_{suffix}", (g * h, h), copies),
                ]
                if b:
                    out += [
                        ParamTensor(f"bias_ih_{suffix}", (g * h,), copies),
                        ParamTensor(f"bias_hh_{suffix}", (g * h,), copies),
                    ]
            else:
                out += [
                    ParamTensor(f"kernel_{suffix}", (n_in, g * h), copies),
                    ParamTensor(f"recurrent_kernel_{suffix}", (h, g * h), copies),
                ]
                if b == 1:
                    out.append(ParamTensor(f"bias_{suffix}", (g * h,), copies))
                elif b == 2:
                    out.append(ParamTensor(f"bias_{suffix}", (2, g * h), copies))
        return out

    def output_shape(self, shape: Shape) -> Shape:
        if len(shape) not in (2, 3):
            raise ShapeError(
                f"expects an input [batch, seq, input_size] (or [seq, input_size]), but its input has shape {fmt_shape(shape)}"
            )
        self.expect_last_dim(shape, self.input_size, "input_size")
        return (*shape[:-1], self.hidden_size * self.dirs)

    def activations(self, shape: Shape, policy: ActPolicy) -> list[Saved]:
        """ATen's native recurrent path (aten/src/ATen/native/RNN.cpp: the input projection of
        all steps at once, then one cell per step), measured on CPU with oneDNN off, for
        T = batch x seq tokens, S steps, B sequences, D directions, L layers, n inputs:

        the first layer's input (T n; and a reversed copy when bidirectional), each later
        layer's input (T D h: the previous layer's output) and, with training dropout
        between layers, its mask; per layer and direction: RNN (tanh) keeps its S outputs
        and h0, (S + 1) B h; GRU and LSTM keep 7 S B h (GRU: r, z, n gates 3 + two clones
        + tanh per step, S - 1 hidden states, h0; LSTM: the four gates' sigmoid 4 + tanh(c)
        per step, S - 1 products and sums, h0 and c0).  CPU LSTM by default runs oneDNN's
        fused kernel and CUDA runs cuDNN, each keeping an opaque workspace instead (not
        modelled; ``symmem check`` measures recurrent models with oneDNN off).
        """
        t = prod(shape[:-1])
        steps = shape[-2] if len(shape) == 3 else shape[0]
        seqs = t / steps
        d = sympy.Integer(self.dirs)
        h, n_layers = self.hidden_size, self.num_layers
        out = [Saved("input", prod(shape), "act", "input")]
        if self.dirs == 2:
            out.append(Saved("input_reversed", prod(shape), "act"))
        later = n_layers - 1
        if later != 0:
            out.append(Saved("layer_inputs", later * t * d * h, "act"))
            masks = dropout_saved("dropout.mask", later * t * d * h, self.dropout, policy)
            out += masks
        per_dir = (steps + 1) * seqs * h if self.kind == "rnn" else 7 * steps * seqs * h
        out.append(Saved("cells", n_layers * d * per_dir, "act"))
        return out

    def to_torch(self, ev: IntEval) -> torch.nn.Module:
        if self.convention != "pytorch":
            raise NotImplementedError(
                f"{self.kind} with convention = keras has no PyTorch module: PyTorch's recurrent "
                f"layers always have two bias vectors (b_ih and b_hh)"
            )
        import torch

        cls = {"rnn": torch.nn.RNN, "lstm": torch.nn.LSTM, "gru": torch.nn.GRU}[self.kind]

        class _OutputOnly(torch.nn.Module):
            """``batch_first`` recurrent module whose forward returns only the output sequence."""

            def __init__(self, rnn: torch.nn.Module) -> None:
                super().__init__()
                self.rnn = rnn

            def forward(self, x: torch.Tensor) -> torch.Tensor:
                return self.rnn(x)[0]

        return _OutputOnly(
            cls(
                ev(self.input_size),
                ev(self.hidden_size),
                num_layers=ev(self.num_layers),
                bias=self.bias,
                batch_first=True,
                dropout=float(self.dropout),
                bidirectional=self.bidirectional,
            )
        )


@register
@dataclass(frozen=True)
class RNN(_Recurrent):
    kind: ClassVar[str] = "rnn"
    gates: ClassVar[int] = 1
    summary: ClassVar[str] = (
        "Elman RNN (tanh): [batch, seq, input_size] -> [batch, seq, hidden*dirs]"
    )
    examples: ClassVar[tuple[Example, ...]] = (
        Example("rnn(16, 12)", "[2, 8, 16]"),
        Example("rnn(16, 12, num_layers = 2, bidirectional = true)", "[2, 8, 16]"),
    )


@register
@dataclass(frozen=True)
class LSTM(_Recurrent):
    kind: ClassVar[str] = "lstm"
    gates: ClassVar[int] = 4
    summary: ClassVar[str] = "LSTM, 4 gates: [batch, seq, input_size] -> [batch, seq, hidden*dirs]"
    examples: ClassVar[tuple[Example, ...]] = (
        Example("lstm(16, 12)", "[2, 8, 16]"),
        Example("lstm(16, 12, num_layers = 2, dropout = 0.3)", "[2, 8, 16]"),
    )


@register
@dataclass(frozen=True)
class GRU(_Recurrent):
    kind: ClassVar[str] = "gru"
    gates: ClassVar[int] = 3
    summary: ClassVar[str] = "GRU, 3 gates: [batch, seq, input_size] -> [batch, seq, hidden*dirs]"
    examples: ClassVar[tuple[Example, ...]] = (
        Example("gru(16, 12)", "[2, 8, 16]"),
        Example("gru(16, 12, num_layers = 3, bidirectional = true, dropout = 0.2)", "[2, 8, 16]"),
    )
