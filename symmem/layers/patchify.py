"""Image to tokens: a patch convolution, then ``[batch, d, H/p, W/p] -> [batch, N, d]``.

``patchify(in_channels, dim, patch)`` is a ViT's patch embedding (Dosovitskiy et al. 2021,
"An Image is Worth 16x16 Words", eq. 1; transformers' ``ViTPatchEmbeddings``,
``CLIPVisionEmbeddings.patch_embedding``, ``SiglipVisionEmbeddings.patch_embedding``): a
``Conv2d(in_channels, dim, kernel = stride = patch)`` whose output is flattened and
transposed to ``N = floor(H / p) * floor(W / p)`` tokens of width ``dim``.  Parameters:
``dim * in_channels * p^2`` (+ ``dim`` bias).  Saved for backward: the convolution's input
(the image); flatten and transpose are views.
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
class Patchify(Layer):
    kind: ClassVar[str] = "patchify"
    summary: ClassVar[str] = "image [batch, C, H, W] -> patch tokens [batch, (H/p)(W/p), dim]"
    examples: ClassVar[tuple[Example, ...]] = (
        Example("patchify(3, 16, 4)", "[2, 3, 8, 12]"),
        Example(
            "patchify(3, 16, 4, bias = false); layernorm(16)",
            "[2, 3, 9, 8]",
            "a size that is not a multiple of the patch (PyTorch's conv drops the rest)",
        ),
    )

    in_channels: Size
    dim: Size
    patch: Size
    bias: bool = True

    def tensors(self) -> list[ParamTensor]:
        out = [
            ParamTensor("projection.weight", (self.dim, self.in_channels, self.patch, self.patch))
        ]
        if self.bias:
            out.append(ParamTensor("projection.bias", (self.dim,)))
        return out

    def output_shape(self, shape: Shape) -> Shape:
        if len(shape) != 4 or not same(shape[1], self.in_channels):
            raise ShapeError(
                f"expects an image [batch, {self.in_channels}, H, W], not {fmt_shape(shape)}"
            )
        n = sympy.floor(shape[2] / self.patch) * sympy.floor(shape[3] / self.patch)
        return (shape[0], n, self.dim)

    def activations(self, shape: Shape, policy: ActPolicy) -> list[Saved]:
        """The convolution keeps its input (the image); the rest are views."""
        return [Saved("input", prod(shape), "act", "input")]

    def to_torch(self, ev: IntEval) -> torch.nn.Module:
        from symmem.layers._torch_vision import TorchPatchify

        return TorchPatchify(ev(self.in_channels), ev(self.dim), ev(self.patch), self.bias)
