"""Merge groups of neighbouring tokens into one wider token: ``[..., s, d] -> [..., s / k, k d]``.

Qwen2-VL's ``PatchMerger`` (Wang et al. 2024, "Qwen2-VL", sec. 2.1: "compress adjacent 2 x 2
tokens into a single token") views its ``[N, d]`` patch features as ``[N / m^2, m^2 d]``
(``m = spatial_merge_size``) before its MLP; the patches arrive ordered so that each group of
``k = m^2`` is one 2 x 2 square.  A view (no parameters, nothing saved): ``reshape`` of a
contiguous tensor.  ``s`` must be a multiple of ``k``.
"""

from __future__ import annotations

from typing import TYPE_CHECKING, ClassVar

from symmem.errors import ShapeError
from symmem.layers.base import (
    Example,
    IntEval,
    Layer,
    Shape,
    Size,
    fmt_shape,
    register,
)
from symmem.records import record

if TYPE_CHECKING:
    import torch


@register
@record
class MergeTokens(Layer):
    kind: ClassVar[str] = "merge_tokens"
    passthrough: ClassVar[bool] = True  # a view: same storage
    summary: ClassVar[str] = "k neighbouring tokens into one: [..., s, d] -> [..., s / k, k d]"
    examples: ClassVar[tuple[Example, ...]] = (
        Example("merge_tokens(4)", "[2, 8, 6]"),
        Example(
            "layernorm(6); merge_tokens(4); linear(24, 24); gelu; linear(24, 10)",
            "[2, 8, 6]",
            "Qwen2-VL's patch merger: LayerNorm, 2 x 2 patches into one, an MLP",
        ),
    )

    k: Size

    def output_shape(self, shape: Shape) -> Shape:
        if len(shape) < 2:
            raise ShapeError(f"expects tokens [..., s, d], not {fmt_shape(shape)}")
        return (*shape[:-2], shape[-2] / self.k, shape[-1] * self.k)

    def to_torch(self, ev: IntEval) -> torch.nn.Module:
        from symmem.layers._torch_vision import TorchMergeTokens

        return TorchMergeTokens(ev(self.k))
