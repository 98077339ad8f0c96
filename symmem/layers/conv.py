"""Convolutions over 1, 2 and 3 spatial dimensions (``torch.nn.Conv1d/2d/3d``).

Arguments and defaults follow PyTorch: ``in_channels, out_channels,
kernel_size, stride=1, padding=0, dilation=1, groups=1, bias=true`` (square /
cubic kernels: one integer per argument, applied to every spatial dimension).

Parameters (PyTorch ``nn.Conv2d`` docs, "Variables": weight of shape
``(out_channels, in_channels / groups, *kernel_size)``, bias ``(out_channels)``)::

    out * (in / groups) * k^dims  +  out      (the bias term when bias = true)

Shapes are channels first, ``[batch, C, L]``, ``[batch, C, H, W]``,
``[batch, C, D, H, W]`` (or without the batch dimension, as PyTorch allows), and
every spatial size becomes ``floor((n + 2p - d(k-1) - 1) / s) + 1`` (the
``H_out`` formula of the same docs; :func:`symmem.layers.base.conv_out`).
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import TYPE_CHECKING, Any, ClassVar

import sympy

from symmem.constraints import divides, require
from symmem.errors import ShapeError
from symmem.layers.base import (
    Evaluator,
    Example,
    IntEval,
    Layer,
    NonNeg,
    ParamTensor,
    Saved,
    Shape,
    Size,
    conv_out,
    fmt_shape,
    prod,
    register,
    same,
)
from symmem.policy import ActPolicy

if TYPE_CHECKING:
    import torch

_SPATIAL = {1: "L", 2: "H, W", 3: "D, H, W"}


def channels_first(shape: Shape, dims: int) -> int:
    """Index of the channel dimension of a channels-first input with ``dims`` spatial
    dimensions (batched or not, as PyTorch accepts); ShapeError for another rank."""
    if len(shape) not in (dims + 1, dims + 2):
        raise ShapeError(
            f"expects a channels-first input [batch, C, {_SPATIAL[dims]}] (rank {dims + 2}, or "
            f"{dims + 1} without batch), but its input has shape {fmt_shape(shape)}"
        )
    return len(shape) - dims - 1


@dataclass(frozen=True)
class _ConvNd(Layer):
    dims: ClassVar[int] = 2
    summary: ClassVar[str] = "convolution, channels first"

    in_channels: Size
    out_channels: Size
    kernel_size: Size
    stride: Size = sympy.Integer(1)
    padding: NonNeg = sympy.Integer(0)
    dilation: Size = sympy.Integer(1)
    groups: Size = sympy.Integer(1)
    bias: bool = True

    def validate(self, ev: Evaluator) -> None:
        for what, value in (("in_channels", self.in_channels), ("out_channels", self.out_channels)):
            require(ev, divides(value, self.groups, _groups_message(what)))

    def tensors(self) -> list[ParamTensor]:
        k = (self.kernel_size,) * self.dims
        out = [ParamTensor("weight", (self.out_channels, self.in_channels / self.groups, *k))]
        if self.bias:
            out.append(ParamTensor("bias", (self.out_channels,)))
        return out

    def output_shape(self, shape: Shape) -> Shape:
        c = channels_first(shape, self.dims)
        if not same(shape[c], self.in_channels):
            want = ["batch", str(self.in_channels), *_SPATIAL[self.dims].split(", ")]
            if len(shape) == self.dims + 1:
                want = want[1:]
            raise ShapeError(
                f"expects in_channels = {self.in_channels}, i.e. an input [{', '.join(want)}], "
                f"not {fmt_shape(shape)} ({shape[c]} channels)"
            )
        spatial = tuple(
            conv_out(n, self.kernel_size, self.stride, self.padding, self.dilation)
            for n in shape[c + 1 :]
        )
        return (*shape[:c], self.out_channels, *spatial)

    def activations(self, shape: Shape, policy: ActPolicy) -> list[Saved]:
        """convolution keeps its input (for the weight's gradient); measured."""
        return [Saved("input", prod(shape), "act", "input")]

    def to_torch(self, ev: IntEval) -> torch.nn.Module:
        import torch

        cls = {1: torch.nn.Conv1d, 2: torch.nn.Conv2d, 3: torch.nn.Conv3d}[self.dims]
        return cls(
            ev(self.in_channels),
            ev(self.out_channels),
            ev(self.kernel_size),
            stride=ev(self.stride),
            padding=ev(self.padding),
            dilation=ev(self.dilation),
            groups=ev(self.groups),
            bias=self.bias,
        )


@register
@dataclass(frozen=True)
class Conv1d(_ConvNd):
    kind: ClassVar[str] = "conv1d"
    dims: ClassVar[int] = 1
    summary: ClassVar[str] = "1-d convolution [batch, C, L] -> [batch, out_channels, L_out]"
    examples: ClassVar[tuple[Example, ...]] = (
        Example("conv1d(4, 8, 3)", "[2, 4, 17]"),
        Example(
            "conv1d(4, 8, 5, stride = 2, padding = 2, dilation = 2, bias = false)", "[2, 4, 17]"
        ),
    )


@register
@dataclass(frozen=True)
class Conv2d(_ConvNd):
    kind: ClassVar[str] = "conv2d"
    dims: ClassVar[int] = 2
    summary: ClassVar[str] = (
        "2-d convolution [batch, C, H, W] -> [batch, out_channels, H_out, W_out]"
    )
    examples: ClassVar[tuple[Example, ...]] = (
        Example("conv2d(3, 16, 3)", "[2, 3, 15, 15]"),
        Example("conv2d(8, 8, 3, padding = 1, groups = 8)", "[1, 8, 9, 9]", "depthwise"),
    )


@register
@dataclass(frozen=True)
class Conv3d(_ConvNd):
    kind: ClassVar[str] = "conv3d"
    dims: ClassVar[int] = 3
    summary: ClassVar[str] = (
        "3-d convolution [batch, C, D, H, W] -> [batch, out_channels, D_out, H_out, W_out]"
    )
    examples: ClassVar[tuple[Example, ...]] = (Example("conv3d(2, 4, 3)", "[1, 2, 6, 7, 8]"),)


def _groups_message(what: str) -> Any:
    def message(v: Any, g: Any) -> str:
        return (
            f"groups = {g} does not divide {what} = {v}: a grouped convolution "
            f"splits both in_channels and out_channels into `groups` equal parts"
        )

    return message
