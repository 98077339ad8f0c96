"""Instance normalisation (``torch.nn.InstanceNorm1d/2d/3d``; Ulyanov et al. 2016,
"Instance Normalization: The Missing Ingredient for Fast Stylization").

Each (sample, channel) is normalised over its spatial positions.  PyTorch's defaults
differ from batch norm: ``affine = false`` and ``track_running_stats = false``.
Parameters (``nn.InstanceNorm2d`` docs): ``weight`` and ``bias`` of C each when
``affine``; buffers when ``track_running_stats``: ``running_mean``, ``running_var``
(C each) and ``num_batches_tracked``, ``2 C + 1`` (buffers, not parameters, as batch
norm's).

Saved for backward: PyTorch runs instance norm as a batch norm over the input viewed as
``[1, batch * C, *]`` (``at::instance_norm``, aten/src/ATen/native/Normalization.cpp), with
the weight and the running statistics repeated ``batch`` times (``repeat_if_defined``).
So it keeps the input (a view), the batch mean and inverse std per (sample, channel), and
the repeated weight (when affine) and running mean and variance (when tracked), each
``batch * C`` and new tensors (measured; the repeated bias is not read by the backward).
"""

from __future__ import annotations

from typing import ClassVar

from symmem.layers.base import Example, Saved, Shape, prod, register
from symmem.layers.batchnorm import _BatchNorm
from symmem.policy import ActPolicy
from symmem.records import record


@record
class _InstanceNorm(_BatchNorm):
    """Batch norm's parameters, buffers and checks (symmem.layers.batchnorm), with PyTorch's
    instance-norm defaults and what instance norm saves."""

    ranks: ClassVar[tuple[int, ...]] = (4,)
    layout: ClassVar[str] = "[batch, C, H, W]"
    summary: ClassVar[str] = "instance normalisation"

    affine: bool = False
    track_running_stats: bool = False

    def activations(self, shape: Shape, policy: ActPolicy) -> list[Saved]:
        """The input, mean and inverse std per (sample, channel), and the weight and running
        statistics repeated per sample (see the module docstring); measured on CPU."""
        stat = "fp32" if policy.device == "cuda" else "act"
        rows = shape[0] * self.num_features
        out = [
            Saved("input", prod(shape), "act", "input"),
            Saved("save_mean", rows, stat, small=True),
            Saved("save_invstd", rows, stat, small=True),
        ]
        if self.affine:
            out.append(Saved("weight_repeated", rows, "act", small=True))
        if self.track_running_stats:
            out += [
                Saved("running_mean_repeated", rows, "act", small=True),
                Saved("running_var_repeated", rows, "act", small=True),
            ]
        return out


@register
@record
class InstanceNorm1d(_InstanceNorm):
    kind: ClassVar[str] = "instancenorm1d"
    torch_class: ClassVar[str] = "InstanceNorm1d"
    ranks: ClassVar[tuple[int, ...]] = (3,)
    layout: ClassVar[str] = "[batch, C, L]"
    summary: ClassVar[str] = "normalise each (sample, channel) of [batch, C, L] over L"
    examples: ClassVar[tuple[Example, ...]] = (
        Example("instancenorm1d(4)", "[2, 4, 7]"),
        Example("instancenorm1d(4, affine = true, track_running_stats = true)", "[2, 4, 7]"),
    )


@register
@record
class InstanceNorm2d(_InstanceNorm):
    kind: ClassVar[str] = "instancenorm2d"
    torch_class: ClassVar[str] = "InstanceNorm2d"
    ranks: ClassVar[tuple[int, ...]] = (4,)
    layout: ClassVar[str] = "[batch, C, H, W]"
    summary: ClassVar[str] = "normalise each (sample, channel) of [batch, C, H, W] over H, W"
    examples: ClassVar[tuple[Example, ...]] = (
        Example("instancenorm2d(4, affine = true)", "[2, 4, 5, 6]"),
        Example("instancenorm2d(4, track_running_stats = true)", "[2, 4, 5, 6]"),
    )


@register
@record
class InstanceNorm3d(_InstanceNorm):
    kind: ClassVar[str] = "instancenorm3d"
    torch_class: ClassVar[str] = "InstanceNorm3d"
    ranks: ClassVar[tuple[int, ...]] = (5,)
    layout: ClassVar[str] = "[batch, C, D, H, W]"
    summary: ClassVar[str] = "normalise each (sample, channel) of [batch, C, D, H, W]"
    examples: ClassVar[tuple[Example, ...]] = (Example("instancenorm3d(2)", "[1, 2, 3, 4, 5]"),)
