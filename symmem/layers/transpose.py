"""Swap two dimensions (``torch.Tensor.transpose``): no parameters, a view.

``transpose(1, 2)`` turns a convolution's channels-first ``[batch, C, L]`` into the token
stream ``[batch, L, C]`` that attention reads: Whisper's ``inputs_embeds.permute(0, 2, 1)``
after its conv front end, and a ViT's ``flatten(2).transpose(1, 2)`` after its patch
convolution (``patchify``).  Negative dimensions count from the end, as in PyTorch.  The
output is a view of the input (the same storage), so the layer keeps nothing for backward.
"""

from __future__ import annotations

from typing import TYPE_CHECKING, ClassVar

from symmem.errors import ShapeError
from symmem.layers.base import Example, IntEval, Layer, Shape, fmt_shape, register
from symmem.records import record

if TYPE_CHECKING:
    import torch


@register
@record
class Transpose(Layer):
    kind: ClassVar[str] = "transpose"
    passthrough: ClassVar[bool] = True  # a view: same storage
    summary: ClassVar[str] = "swap two dimensions: [batch, C, L] -> [batch, L, C]"
    examples: ClassVar[tuple[Example, ...]] = (
        Example("transpose(1, 2)", "[2, 4, 6]"),
        Example(
            "conv1d(4, 8, 3, padding = 1); gelu; transpose(1, 2); pos_embedding(6, 8)",
            "[2, 4, 6]",
            "Whisper's front end: conv, GELU, to tokens, positions added",
        ),
    )

    dim0: int = 1
    dim1: int = 2

    def _dims(self, shape: Shape) -> tuple[int, int]:
        rank = len(shape)
        a = self.dim0 + rank if self.dim0 < 0 else self.dim0
        b = self.dim1 + rank if self.dim1 < 0 else self.dim1
        if not (0 <= a < rank and 0 <= b < rank):
            raise ShapeError(
                f"dim0 = {self.dim0}, dim1 = {self.dim1} are not dimensions of its input of "
                f"shape {fmt_shape(shape)} (rank {rank})"
            )
        return a, b

    def output_shape(self, shape: Shape) -> Shape:
        a, b = self._dims(shape)
        out = list(shape)
        out[a], out[b] = shape[b], shape[a]
        return tuple(out)

    def to_torch(self, ev: IntEval) -> torch.nn.Module:
        from symmem.layers._torch_vision import TorchTranspose

        return TorchTranspose(self.dim0, self.dim1)
