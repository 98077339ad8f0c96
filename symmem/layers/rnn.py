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

``lstm(..., proj_size = p)`` (PyTorch >= 1.8; Sak et al. 2014, "Long Short-Term Memory
Based Recurrent Neural Network Architectures for Large Vocabulary Speech Recognition"):
the hidden state is projected to ``p < h`` by ``weight_hr_l[k]`` of shape ``(p, h)``; the
recurrent weights read it (``weight_hh`` ``(4h, p)``), the output and the next layer's
input are ``p * dirs`` wide.  Per layer and direction::

    4 h n + 4 h p + 2 * 4 h + p h
"""

from __future__ import annotations

from typing import TYPE_CHECKING, ClassVar, Literal

import sympy

from symmem import dtypes
from symmem.errors import SemanticError, ShapeError
from symmem.layers._saved import dropout_saved, dropping, times
from symmem.layers.base import (
    Evaluator,
    Example,
    IntEval,
    Layer,
    NonNeg,
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
from symmem.records import record

if TYPE_CHECKING:
    import torch


def _batch_is_one(seqs: sympy.Expr) -> sympy.Expr:
    """1 at batch 1, else 0: decided on a number, a Piecewise while the batch is free."""
    seqs = sympy.sympify(seqs)
    if not seqs.free_symbols:
        return sympy.Integer(int(seqs == 1))
    return sympy.Piecewise((1, sympy.Eq(seqs, 1, evaluate=False)), (0, True), evaluate=False)


def _first_input(shape: Shape, seqs: sympy.Expr) -> list[Saved]:
    """The first layer's input: with ``batch_first`` the kernels read it transposed,
    [seq, batch, n]; at batch 1 that is a view of the stream tensor (saved as the stream,
    shared with whoever else keeps it), at batch > 1 the input projection keeps a
    contiguous copy of its own (measured, native and oneDNN paths)."""
    n = prod(shape)
    if len(shape) != 3:
        return [Saved("input", n, "act", "input")]
    one = _batch_is_one(seqs)
    return times([Saved("input", n, "act", "input")], one) + times(
        [Saved("input_transposed", n, "act")], 1 - one
    )


def _good_ld(dim: sympy.Expr, size: sympy.Expr) -> sympy.Expr:
    """oneDNN's ``rnn_utils::get_good_ld``: ``dim`` rounded up to 64 bytes of ``size``-byte
    elements, plus 64 bytes more when that is a multiple of 256 elements."""
    per = 64 / size
    ld = sympy.ceiling(dim / per) * per
    if not ld.free_symbols:
        return ld + (per if ld % 256 == 0 else 0)
    return ld + per * sympy.Piecewise(
        (1, sympy.Eq(sympy.Mod(ld, 256), 0, evaluate=False)), (0, True), evaluate=False
    )


def _onednn_workspace(
    steps: sympy.Expr, seqs: sympy.Expr, n: sympy.Expr, h: sympy.Expr, size: sympy.Expr
) -> sympy.Expr:
    """Bytes of one oneDNN LSTM workspace (one layer, one direction; see _fused_saved)."""

    def page(x: sympy.Expr) -> sympy.Expr:
        return sympy.ceiling(x / 4096) * 4096

    states = 2 * (steps + 1) * seqs
    wide = sympy.Max(n, h)
    regions = [
        steps * seqs * _good_ld(4 * h, size) * size,  # gates
        steps * seqs * _good_ld(h, size) * size,  # h of every step
        states * _good_ld(wide, size) * size,  # layer states
        states * h * size,  # c states
        states * _good_ld(wide, 4) * 4,  # diff layer states (fp32)
        states * _good_ld(wide, 4) * 4,  # diff iter states (fp32)
        states * h * 4,  # diff c states (fp32)
    ]
    return sympy.Add(*[page(r) for r in regions])


@record
class _Recurrent(Layer):
    gates: ClassVar[int] = 1
    summary: ClassVar[str] = "recurrent layer"
    recurrent: ClassVar[bool] = True
    dropout_fields: ClassVar[tuple[str, ...]] = ("dropout",)
    decided_fields: ClassVar[tuple[str, ...]] = ("proj_size",)

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
    #: LSTM only: the projected hidden width (0: no projection), PyTorch ``proj_size``
    proj_size: NonNeg = sympy.Integer(0)

    # ------------------------------------------------------------ derived sizes
    @property
    def dirs(self) -> int:
        return 2 if self.bidirectional else 1

    @property
    def projected(self) -> bool:
        """Has a projection (``proj_size`` not 0; a free one counts as set)."""
        return sympy.sympify(self.proj_size) != 0

    @property
    def width(self) -> sympy.Expr:
        """The hidden state's width as the next step and layer read it: p, or h."""
        return self.proj_size if self.projected else self.hidden_size

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
        if self.projected:
            if self.kind != "lstm":
                raise SemanticError(f"proj_size applies to lstm only, not {self.kind}")
            if self.convention != "pytorch":
                raise SemanticError("proj_size needs convention = pytorch (Keras has none)")
            self.require_at_most(
                ev,
                self.proj_size + 1,
                self.hidden_size,
                lambda a, b: (
                    f"proj_size = {a - 1 if a is not None else '?'} must be smaller than "
                    f"hidden_size = {b}, as PyTorch requires"
                ),
            )

    # ------------------------------------------------------------ formulas
    def tensors(self) -> list[ParamTensor]:
        g, h, b = self.gates, self.hidden_size, self.bias_vectors
        w = self.width
        dirs = sympy.Integer(self.dirs)
        first_in, later_in = self.input_size, w * dirs
        later = self.num_layers - 1
        out: list[ParamTensor] = []
        # (name suffix, input size, copies): layer 0, then layers 1..L-1 (identical, counted
        # together)
        groups = [("l0", first_in, dirs)]
        if later != 0:
            groups.append(("l1+", later_in, dirs * later))
        for suffix, n_in, copies in groups:
            if self.convention == "pytorch":
                out += [
                    ParamTensor(f"weight_ih_{suffix}", (g * h, n_in), copies),
                    ParamTensor(f"weight_hh_{suffix}", (g * h, w), copies),
                ]
                if b:
                    out += [
                        ParamTensor(f"bias_ih_{suffix}", (g * h,), copies),
                        ParamTensor(f"bias_hh_{suffix}", (g * h,), copies),
                    ]
                if self.projected:
                    out.append(ParamTensor(f"weight_hr_{suffix}", (w, h), copies))
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
                "expects an input [batch, seq, input_size] (or [seq, input_size]), but its input "
                f"has shape {fmt_shape(shape)}"
            )
        self.expect_last_dim(shape, self.input_size, "input_size")
        return (*shape[:-1], self.width * self.dirs)

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

        With ``proj_size = p`` each later layer's input and mask are T D p, and each layer
        and direction keeps S B p more (the projected state of every step): 7 S B h + S B p
        (measured, native path, five points each varying one size, and with 2 layers and
        bidirectional).  PyTorch runs a projected LSTM on the native path even with oneDNN
        on (measured), so ``onednn`` counts it so; cuDNN's projection is not modelled (the
        native formula is used, unmeasured).
        """
        t = prod(shape[:-1])
        steps = shape[-2] if len(shape) == 3 else shape[0]
        seqs = t / steps
        d = sympy.Integer(self.dirs)
        h, n_layers, w = self.hidden_size, self.num_layers, self.width
        if self.kind == "lstm" and policy.rnn in ("onednn", "cudnn") and not self.projected:
            return self._fused_saved(shape, policy)
        out = _first_input(shape, seqs)
        if self.dirs == 2:
            out.append(Saved("input_reversed", prod(shape), "act"))
        later = n_layers - 1
        if later != 0:
            out.append(Saved("layer_inputs", later * t * d * w, "act"))
            masks = dropout_saved("dropout.mask", later * t * d * w, self.dropout, policy)
            out += masks
        per_dir = (steps + 1) * seqs * h if self.kind == "rnn" else 7 * steps * seqs * h
        if self.projected:
            per_dir += steps * seqs * w
        out.append(Saved("cells", n_layers * d * per_dir, "act"))
        return out

    def _fused_saved(self, shape: Shape, policy: ActPolicy) -> list[Saved]:
        """An LSTM on a fused kernel (``policy.rnn``): what PyTorch keeps around it, and the
        kernel's opaque buffer.

        Around it (aten/src/ATen/native/mkldnn/RNN.cpp ``mkldnn_rnn_layer``, measured;
        cuDNN's ``_cudnn_rnn`` keeps the same tensors): each layer's input (the first one's
        is a transposed copy when batch > 1: ``batch_first``) and output (T D h), the
        initial states h0, c0 ([L D, B, h] each), each layer's final hy, cy (D B h each),
        and between layers the training dropout's mask and output.

        ``onednn`` (PyTorch's CPU default for LSTM): one workspace per layer and direction,
        oneDNN's ``rnn_utils::set_workspace_sizes`` / ``set_offsets`` with n_layer = n_dir
        = 1: the gates (S B ld(4h)), h (S B ld(h)), the layer states (2 (S + 1) B ld(max(n,
        h))) and c states (2 (S + 1) B h) in the activation dtype; the diff states (twice 2
        (S + 1) B ld(max(n, h))) and diff c (2 (S + 1) B h) in fp32; each region rounded up
        to a 4096-byte page; ``ld(x)`` (``get_good_ld``) rounds x up to 64 bytes and adds 64
        bytes when the result is a multiple of 256 elements.  Measured to the byte (fp32
        and bf16, uni- and bidirectional, batch 1-5, seq 4-33, widths 8-200; torch 2.13).

        ``cudnn``: the reserve space is opaque (``cudnnGetRNNTempSpaceSizes`` reports it at
        run time); counted as the gates, c and h of every step (6 S B h per layer and
        direction, activation dtype).  Not measured (no GPU here): an estimate."""
        t = prod(shape[:-1])
        steps = shape[-2] if len(shape) == 3 else shape[0]
        seqs = t / steps
        d = sympy.Integer(self.dirs)
        h, n_layers = self.hidden_size, self.num_layers
        later = n_layers - 1
        out = _first_input(shape, seqs)
        # the last layer's output is the module's output (transposed back: at batch 1 a view
        # of the same storage, which a next layer keeping its input shares)
        one = _batch_is_one(seqs)
        out += times([Saved("output", t * d * h, "act", "output")], one)
        out += times([Saved("last_output", t * d * h, "act")], 1 - one)
        out += [
            Saved("layer_outputs", later * t * d * h, "act"),
            Saved("h0_c0", 2 * n_layers * d * seqs * h, "act", small=True),
            Saved("hy_cy", 2 * n_layers * d * seqs * h, "act", small=True),
        ]
        on = dropping(self.dropout, policy)
        out += dropout_saved("dropout.mask", later * t * d * h, self.dropout, policy)
        out += times([Saved("dropout.out", later * t * d * h, "act")], on)
        if policy.rnn == "cudnn":
            reserve = n_layers * d * 6 * steps * seqs * h
            return [*out, Saved("cudnn_reserve", reserve, "act")]
        size = sympy.Integer(int(dtypes.nbytes(policy.dtype)))
        first = _onednn_workspace(steps, seqs, self.input_size, h, size)
        rest = _onednn_workspace(steps, seqs, h * d, h, size)
        ws = d * (first + later * rest)
        return [*out, Saved("onednn_workspace", ws, "int8")]

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
                **({"proj_size": ev(self.proj_size)} if self.projected else {}),
            )
        )


@register
@record
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
@record
class LSTM(_Recurrent):
    kind: ClassVar[str] = "lstm"
    gates: ClassVar[int] = 4
    summary: ClassVar[str] = "LSTM, 4 gates: [batch, seq, input_size] -> [batch, seq, hidden*dirs]"
    examples: ClassVar[tuple[Example, ...]] = (
        Example("lstm(16, 12)", "[2, 8, 16]"),
        Example("lstm(16, 12, num_layers = 2, dropout = 0.3)", "[2, 8, 16]"),
        Example("lstm(16, 12, proj_size = 5)", "[2, 8, 16]", "projected hidden state"),
        Example(
            "lstm(16, 12, num_layers = 2, bidirectional = true, dropout = 0.3, proj_size = 4)",
            "[3, 5, 16]",
        ),
    )


@register
@record
class GRU(_Recurrent):
    kind: ClassVar[str] = "gru"
    gates: ClassVar[int] = 3
    summary: ClassVar[str] = "GRU, 3 gates: [batch, seq, input_size] -> [batch, seq, hidden*dirs]"
    examples: ClassVar[tuple[Example, ...]] = (
        Example("gru(16, 12)", "[2, 8, 16]"),
        Example("gru(16, 12, num_layers = 3, bidirectional = true, dropout = 0.2)", "[2, 8, 16]"),
    )
