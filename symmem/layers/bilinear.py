"""Bilinear layer (``torch.nn.Bilinear``): ``y_k = x1^T A_k x2 + b_k``.

Parameters (PyTorch ``nn.Bilinear`` docs, "Variables"): weight
``(out_features, in1_features, in2_features)`` and bias ``(out_features)``::

    out * in1 * in2 + out        (the bias when bias = true)

The DSL has one stream, so the layer reads it as both inputs, ``bilinear(x, x)``:
``in2_features`` must equal ``in1_features`` (a second input of another width needs a
graph with several inputs, which this layer kind does not read yet).  Saved for backward:
``_trilinear`` keeps both of its inputs (derivatives.yaml: ``i1, i2``), here one tensor
(measured; with two distinct inputs PyTorch keeps both, viewed as ``[rows, in]``).
"""

from __future__ import annotations

from typing import TYPE_CHECKING, ClassVar

from symmem.errors import ShapeError
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
    same,
)
from symmem.policy import ActPolicy
from symmem.records import record

if TYPE_CHECKING:
    import torch


@register
@record
class Bilinear(Layer):
    kind: ClassVar[str] = "bilinear"
    summary: ClassVar[str] = "y = x^T A x + b over the last dimension (the stream as both inputs)"
    examples: ClassVar[tuple[Example, ...]] = (
        Example("bilinear(5, 5, 3)", "[2, 4, 5]"),
        Example("bilinear(6, 6, 2, bias = false)", "[3, 6]"),
    )

    in1_features: Size
    in2_features: Size
    out_features: Size
    bias: bool = True

    def tensors(self) -> list[ParamTensor]:
        out = [ParamTensor("weight", (self.out_features, self.in1_features, self.in2_features))]
        if self.bias:
            out.append(ParamTensor("bias", (self.out_features,)))
        return out

    def output_shape(self, shape: Shape) -> Shape:
        self.expect_last_dim(shape, self.in1_features, "in1_features")
        if not same(self.in1_features, self.in2_features):
            raise ShapeError(
                f"reads its one input stream as both inputs, so in2_features = "
                f"{self.in2_features} must equal in1_features = {self.in1_features}"
            )
        return (*shape[:-1], self.out_features)

    def activations(self, shape: Shape, policy: ActPolicy) -> list[Saved]:
        """_trilinear keeps its two inputs: the stream, once."""
        return [Saved("input", prod(shape), "act", "input")]

    def to_torch(self, ev: IntEval) -> torch.nn.Module:
        import torch

        class _SelfBilinear(torch.nn.Bilinear):
            def forward(self, x: torch.Tensor) -> torch.Tensor:  # type: ignore[override]
                return super().forward(x, x)

        return _SelfBilinear(
            ev(self.in1_features), ev(self.in2_features), ev(self.out_features), bias=self.bias
        )
