"""Fully connected layer (``torch.nn.Linear``; Keras ``Dense``).

Parameters: ``out * in`` weights plus ``out`` biases when ``bias`` (PyTorch
``nn.Linear`` docs: weight of shape (out_features, in_features), bias (out_features)).
``tie = other`` shares the weight with an earlier layer (GPT-2's LM head uses
the token embedding): the tied weight is counted once, at its first owner.
"""

from __future__ import annotations

from typing import TYPE_CHECKING, ClassVar

from symmem.layers.base import (
    Example,
    IntEval,
    Layer,
    ParamTensor,
    Ref,
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
class Linear(Layer):
    kind: ClassVar[str] = "linear"
    aliases: ClassVar[tuple[str, ...]] = ("dense",)
    summary: ClassVar[str] = "y = x W^T + b over the last dimension"
    examples: ClassVar[tuple[Example, ...]] = (
        Example("linear(16, 32)", "[2, 8, 16]"),
        Example("linear(16, 8, bias = false)", "[2, 8, 16]"),
    )
    can_be_output_head: ClassVar[bool] = True

    in_features: Size
    out_features: Size
    bias: bool = True
    tie: Ref | None = None

    def tensors(self) -> list[ParamTensor]:
        # a plain linear stays replicated under tensor parallelism (the memory model splits
        # the model's output head, which Megatron makes column-parallel, by its place)
        out = [ParamTensor("weight", (self.out_features, self.in_features), matmul=True)]
        if self.bias:
            out.append(ParamTensor("bias", (self.out_features,)))
        return out

    def output_shape(self, shape: Shape) -> Shape:
        self.expect_last_dim(shape, self.in_features, "in_features")
        return (*shape[:-1], self.out_features)

    def activations(self, shape: Shape, policy: ActPolicy) -> list[Saved]:
        """addmm / matmul keep the input for the weight's gradient only (derivatives.yaml:
        ``mat2: mat1.t().mm(grad)``): a frozen weight keeps none."""
        return [Saved("input", prod(shape), "act", "input", grads=("weight",))]

    def to_torch(self, ev: IntEval) -> torch.nn.Module:
        import torch

        return torch.nn.Linear(ev(self.in_features), ev(self.out_features), bias=self.bias)
