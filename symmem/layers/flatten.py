"""Flatten a range of dimensions into one (``torch.nn.Flatten``): no parameters.

``flatten(start_dim = 1, end_dim = -1)`` (PyTorch's defaults, which keep the
batch dimension): ``[batch, C, H, W] -> [batch, C*H*W]``.  Negative indices
count from the end, as in PyTorch.
"""

from __future__ import annotations

from typing import TYPE_CHECKING, ClassVar

from symmem.errors import ShapeError
from symmem.layers.base import Example, IntEval, Layer, Shape, fmt_shape, prod, register
from symmem.records import record

if TYPE_CHECKING:
    import torch


@register
@record
class Flatten(Layer):
    kind: ClassVar[str] = "flatten"
    passthrough: ClassVar[bool] = True  # a view: same storage
    summary: ClassVar[str] = (
        "merge dimensions start_dim..end_dim: [batch, C, H, W] -> [batch, C*H*W]"
    )
    examples: ClassVar[tuple[Example, ...]] = (
        Example("flatten", "[2, 4, 6]"),
        Example(
            "linear(6, 6); relu; flatten; linear(24, 5)",
            "[2, 4, 6]",
            "a view between two layers that save it: one storage",
        ),
    )

    start_dim: int = 1
    end_dim: int = -1

    def output_shape(self, shape: Shape) -> Shape:
        rank = len(shape)
        start = self.start_dim + rank if self.start_dim < 0 else self.start_dim
        end = self.end_dim + rank if self.end_dim < 0 else self.end_dim
        if not (0 <= start < rank and 0 <= end < rank):
            raise ShapeError(
                f"start_dim = {self.start_dim}, end_dim = {self.end_dim} are not dimensions of "
                f"its input of shape {fmt_shape(shape)} (rank {rank})"
            )
        if start > end:
            raise ShapeError(
                f"start_dim = {self.start_dim} comes after end_dim = {self.end_dim} for its input "
                f"of shape {fmt_shape(shape)}"
            )
        return (*shape[:start], prod(shape[start : end + 1]), *shape[end + 1 :])

    def to_torch(self, ev: IntEval) -> torch.nn.Module:
        import torch

        return torch.nn.Flatten(self.start_dim, self.end_dim)
