"""Parametric ReLU (``torch.nn.PReLU``; He et al. 2015, "Delving Deep into Rectifiers").

``max(0, x) + a * min(0, x)`` with a learned slope ``a``: one shared slope
(``num_parameters = 1``, PyTorch's default) or one per channel, the channel being
dimension 1 of the input (PyTorch ``nn.PReLU`` docs: "channel dim is the 2nd dim of
input"; an input of rank < 2 has one channel).  Parameters: ``num_parameters``.

Saved for backward: ``_prelu_kernel`` reads ``self`` and ``weight`` (derivatives.yaml);
the weight is a parameter, so the layer keeps its input (measured).
"""

from __future__ import annotations

from typing import TYPE_CHECKING, ClassVar

import sympy

from symmem.errors import ShapeError
from symmem.layers.base import (
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
    same,
)
from symmem.policy import ActPolicy
from symmem.records import record

if TYPE_CHECKING:
    import torch


@register
@record
class PReLU(Layer):
    kind: ClassVar[str] = "prelu"
    summary: ClassVar[str] = "leaky ReLU with learned slopes (one, or one per channel)"
    examples: ClassVar[tuple[Example, ...]] = (
        Example("prelu", "[2, 8, 16]"),
        Example("prelu(4)", "[2, 4, 5, 6]", "one slope per channel (dimension 1)"),
    )

    num_parameters: Size = sympy.Integer(1)
    init: Real = sympy.Rational(1, 4)

    def tensors(self) -> list[ParamTensor]:
        return [ParamTensor("weight", (self.num_parameters,))]

    def output_shape(self, shape: Shape) -> Shape:
        if sympy.sympify(self.num_parameters) == 1:
            return shape
        if len(shape) < 2 or not same(shape[1], self.num_parameters):
            raise ShapeError(
                f"has num_parameters = {self.num_parameters} slopes, one per channel at "
                f"dimension 1, but its input has shape {fmt_shape(shape)}"
            )
        return shape

    def activations(self, shape: Shape, policy: ActPolicy) -> list[Saved]:
        """prelu keeps its input (the weight is a parameter)."""
        return [Saved("input", prod(shape), "act", "input")]

    def to_torch(self, ev: IntEval) -> torch.nn.Module:
        import torch

        return torch.nn.PReLU(ev(self.num_parameters), init=float(self.init))
