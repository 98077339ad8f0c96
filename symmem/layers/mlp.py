"""Two-matrix feed-forward block: ``fc2(act(fc1(x)))`` (Vaswani et al. 2017).

Parameters: ``2 d f`` plus ``f + d`` biases when ``bias``; with ``f = 4d``
that is the ``8 d^2`` of the usual 12 d^2 per-layer rule.
"""

from __future__ import annotations

from typing import TYPE_CHECKING, ClassVar, Literal

import sympy

from symmem.layers._saved import act_fn_saved, dropout_saved, tokens
from symmem.layers.base import (
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

Act = Literal[
    "gelu", "gelu_tanh", "gelu_new", "relu", "silu", "tanh", "sigmoid", "quick_gelu", "relu2"
]


@register
@record
class MLP(Layer):
    kind: ClassVar[str] = "mlp"
    aliases: ClassVar[tuple[str, ...]] = ("ffn",)
    summary: ClassVar[str] = "fc2(act(fc1(x))), d -> d_ff -> d"
    examples: ClassVar[tuple[Example, ...]] = (
        Example("mlp(16, 64)", "[2, 8, 16]"),
        Example("mlp(16, 64, act = gelu_new)", "[2, 8, 16]"),
        Example("mlp(16, 64, act = relu, dropout = 0.1)", "[2, 8, 16]"),
        Example("mlp(16, 64, act = quick_gelu)", "[2, 8, 16]"),
        Example("mlp(16, 64, act = relu2, bias = false)", "[2, 8, 16]", "Nemotron's squared ReLU"),
    )
    dropout_fields: ClassVar[tuple[str, ...]] = ("dropout",)

    d_model: Size
    d_ff: Size
    act: Act = "gelu"
    bias: bool = True
    dropout: Real = sympy.Integer(0)

    def tensors(self) -> list[ParamTensor]:
        d, f = self.d_model, self.d_ff
        # Megatron-LM: fc1 column-parallel, fc2 row-parallel
        out = [
            ParamTensor("fc1.weight", (f, d), matmul=True, tp_split=True),
            ParamTensor("fc2.weight", (d, f), matmul=True, tp_split=True),
        ]
        if self.bias:
            out += [ParamTensor("fc1.bias", (f,)), ParamTensor("fc2.bias", (d,))]
        return out

    def output_shape(self, shape: Shape) -> Shape:
        self.expect_last_dim(shape, self.d_model, "d_model")
        return shape

    def activations(self, shape: Shape, policy: ActPolicy) -> list[Saved]:
        """fc1 keeps x, the activation its input or output (see act_fn_saved), fc2
        its input (the activation's output: counted once when both keep it), and a
        training dropout after fc2 its mask.  GELU with f = 4h gives Korthikanti
        et al. 2022's 19 sbh bytes (2 + 8 + 8 + 1) in 16 bits with 1-byte masks.
        """
        t = tokens(shape)
        nf = t * self.d_ff
        # fc1 / fc2 keep their inputs for their weights only; the activation keeps its tensors
        # for fc1's side (a relu's output, also fc2's input, serves both)
        fc1 = ("input", "fc1.weight")
        has_out = self.act in ("relu", "tanh", "sigmoid")
        grads = (*fc1, "fc2.weight") if has_out else fc1
        out = [Saved("fc1.input", prod(shape), "act", "input", grads=("fc1.weight",))]
        acts = act_fn_saved(
            self.act, nf, "", tp_split=True, in_ref="own", out_ref="own", grads=grads
        )
        out += acts
        if not any(s.name.endswith(".out") for s in acts):  # relu/tanh/sigmoid: fc2 shares it
            out.append(Saved("fc2.input", nf, "act", "own", tp_split=True, grads=("fc2.weight",)))
        out += dropout_saved(
            "dropout.mask", prod(shape), self.dropout, policy, grads=(*fc1, "fc2.weight")
        )
        return out

    def to_torch(self, ev: IntEval) -> torch.nn.Module:
        from symmem.layers._torch_mlp import TorchMLP

        return TorchMLP(
            ev(self.d_model), ev(self.d_ff), self.act, self.bias, float(self.dropout), gated=False
        )
