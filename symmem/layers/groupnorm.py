"""Group normalisation (``torch.nn.GroupNorm``; Wu and He 2018, "Group Normalization").

The C channels of ``[batch, C, *]`` are split into ``num_groups`` groups, each normalised
over its channels and every spatial position.  Parameters (PyTorch ``nn.GroupNorm`` docs):
``weight`` and ``bias`` of size C each when ``affine``: ``2 C``; no buffers (no running
statistics).  ``num_groups`` must divide ``num_channels`` (PyTorch raises otherwise).

Saved for backward (``native_group_norm``, derivatives.yaml: ``input, mean, rstd``;
measured): the input and one mean and one inverse std per (sample, group), in the
input's dtype on CPU (measured with bf16) and fp32 (``acc_type``) on CUDA, as layer norm.
"""

from __future__ import annotations

from typing import TYPE_CHECKING, Any, ClassVar

import sympy

from symmem.constraints import divides, require
from symmem.errors import ShapeError
from symmem.layers.base import (
    Evaluator,
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
class GroupNorm(Layer):
    kind: ClassVar[str] = "groupnorm"
    summary: ClassVar[str] = "normalise groups of channels of [batch, C, *], then scale and shift"
    examples: ClassVar[tuple[Example, ...]] = (
        Example("groupnorm(2, 4)", "[2, 4, 5, 6]"),
        Example("groupnorm(3, 6, affine = false)", "[2, 6, 7]"),
        Example("groupnorm(1, 4)", "[3, 4]", "one group over [batch, C]"),
    )

    num_groups: Size
    num_channels: Size
    eps: Real = sympy.Rational(1, 100000)
    affine: bool = True

    def validate(self, ev: Evaluator) -> None:
        def message(c: Any, g: Any) -> str:
            return f"num_groups = {g} does not divide num_channels = {c}"

        require(ev, divides(self.num_channels, self.num_groups, message))
        self.require_positive(ev, self.eps, "eps")

    def tensors(self) -> list[ParamTensor]:
        if not self.affine:
            return []
        return [
            ParamTensor("weight", (self.num_channels,)),
            ParamTensor("bias", (self.num_channels,)),
        ]

    def output_shape(self, shape: Shape) -> Shape:
        if len(shape) < 2 or not same(shape[1], self.num_channels):
            raise ShapeError(
                f"expects an input [batch, {self.num_channels}, *] (num_channels at dimension "
                f"1), not {fmt_shape(shape)}"
            )
        return shape

    def activations(self, shape: Shape, policy: ActPolicy) -> list[Saved]:
        """native_group_norm keeps its input, and mean and rstd per (sample, group)."""
        stat = "fp32" if policy.device == "cuda" else "act"
        rows = shape[0] * self.num_groups
        return [
            Saved("input", prod(shape), "act", "input"),
            Saved("mean", rows, stat, small=True),
            Saved("rstd", rows, stat, small=True),
        ]

    def to_torch(self, ev: IntEval) -> torch.nn.Module:
        import torch

        return torch.nn.GroupNorm(
            ev(self.num_groups), ev(self.num_channels), eps=float(self.eps), affine=self.affine
        )
