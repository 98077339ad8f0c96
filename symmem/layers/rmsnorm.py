"""Root-mean-square normalisation (Zhang & Sennrich 2019; ``torch.nn.RMSNorm``,
``LlamaRMSNorm``): ``d`` scales and no shift.
"""

from __future__ import annotations

from typing import TYPE_CHECKING, ClassVar

from symmem.layers._saved import rmsnorm_saved
from symmem.layers.base import (
    Example,
    IntEval,
    Layer,
    ParamTensor,
    Real,
    Saved,
    Shape,
    Size,
    register,
)
from symmem.policy import ActPolicy
from symmem.records import record

if TYPE_CHECKING:
    import torch


@register
@record
class RMSNorm(Layer):
    kind: ClassVar[str] = "rmsnorm"
    summary: ClassVar[str] = "x / rms(x) * g over the last dimension"
    examples: ClassVar[tuple[Example, ...]] = (
        Example("rmsnorm(16)", "[2, 8, 16]"),
        Example("rmsnorm(16, affine = false)", "[2, 8, 16]"),
    )

    normalized_shape: Size
    affine: bool = True
    eps: Real | None = None

    def tensors(self) -> list[ParamTensor]:
        return [ParamTensor("weight", (self.normalized_shape,))] if self.affine else []

    def output_shape(self, shape: Shape) -> Shape:
        self.expect_last_dim(shape, self.normalized_shape, "normalized_shape")
        return shape

    def activations(self, shape: Shape, policy: ActPolicy) -> list[Saved]:
        """Composite ops with an fp32 upcast: see :func:`symmem.layers._saved.rmsnorm_saved`."""
        return rmsnorm_saved("", shape, self.affine, policy, upstream=("input",))

    def to_torch(self, ev: IntEval) -> torch.nn.Module:
        import torch

        return torch.nn.RMSNorm(ev(self.normalized_shape), elementwise_affine=self.affine)
