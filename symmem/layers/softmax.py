"""Softmax over the last dimension (``torch.nn.Softmax(dim=-1)``): no parameters."""

from __future__ import annotations

from typing import TYPE_CHECKING, ClassVar

from symmem.layers.base import Example, IntEval, Layer, Saved, Shape, prod, register
from symmem.policy import ActPolicy
from symmem.records import record

if TYPE_CHECKING:
    import torch


@register
@record
class Softmax(Layer):
    kind: ClassVar[str] = "softmax"
    summary: ClassVar[str] = "normalised exponentials over the last dimension"
    examples: ClassVar[tuple[Example, ...]] = (Example("softmax", "[2, 8, 16]"),)

    def activations(self, shape: Shape, policy: ActPolicy) -> list[Saved]:
        """_softmax_backward_data reads the softmax's output."""
        return [Saved("output", prod(shape), "act", "output")]

    def to_torch(self, ev: IntEval) -> torch.nn.Module:
        import torch

        return torch.nn.Softmax(dim=-1)
