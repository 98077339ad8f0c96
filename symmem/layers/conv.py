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

from typing import TYPE_CHECKING, Any, ClassVar, Literal

import sympy

from symmem.constraints import divides, require
from symmem.errors import ShapeError
from symmem.layers.base import (
    Evaluator,
    Example,
    IntEval,
    Layer,
    NonNegs,
    ParamTensor,
    Saved,
    Shape,
    Size,
    Sizes,
    check_per_dim,
    conv_out,
    fmt_shape,
    per_dim,
    prod,
    register,
    same,
)
from symmem.policy import ActPolicy
from symmem.records import record

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


@record
class _ConvNd(Layer):
    dims: ClassVar[int] = 2
    summary: ClassVar[str] = "convolution, channels first"

    in_channels: Size
    out_channels: Size
    kernel_size: Sizes
    stride: Sizes = sympy.Integer(1)
    padding: NonNegs | Literal["same", "valid"] = sympy.Integer(0)
    dilation: Sizes = sympy.Integer(1)
    groups: Size = sympy.Integer(1)
    bias: bool = True

    def validate(self, ev: Evaluator) -> None:
        for what in ("kernel_size", "stride", "padding", "dilation"):
            check_per_dim(getattr(self, what), self.dims, what)
        for what, value in (("in_channels", self.in_channels), ("out_channels", self.out_channels)):
            require(ev, divides(value, self.groups, _groups_message(what)))
        if self.padding == "same":
            for s in per_dim(self.stride, self.dims):
                self.require_at_most(
                    ev,
                    s,
                    sympy.Integer(1),
                    lambda v, _: (
                        f"padding = same needs stride 1, got stride {v} (PyTorch: padding='same' "
                        "is not supported for strided convolutions)"
                    ),
                )

    def tensors(self) -> list[ParamTensor]:
        k = per_dim(self.kernel_size, self.dims)
        out = [ParamTensor("weight", (self.out_channels, self.in_channels / self.groups, *k))]
        if self.bias:
            out.append(ParamTensor("bias", (self.out_channels,)))
        return out

    def pads(self) -> tuple[tuple[sympy.Expr, sympy.Expr], ...]:
        """(left, right) padding per spatial dimension.  ``same``: the total d (k - 1), its
        floor half on the left and the rest on the right (PyTorch ``_convolution_mode``,
        aten/src/ATen/native/Convolution.cpp)."""
        k, d = per_dim(self.kernel_size, self.dims), per_dim(self.dilation, self.dims)
        if self.padding == "same":
            totals = [di * (ki - 1) for ki, di in zip(k, d, strict=True)]
            return tuple((sympy.floor(t / 2), t - sympy.floor(t / 2)) for t in totals)
        if self.padding == "valid":
            return ((sympy.Integer(0),) * 2,) * self.dims
        return tuple((p, p) for p in per_dim(self.padding, self.dims))

    def output_shape(self, shape: Shape) -> Shape:
        c = channels_first(shape, self.dims)
        _check_channels(shape, c, self.in_channels, self.dims)
        k, s, d = (per_dim(v, self.dims) for v in (self.kernel_size, self.stride, self.dilation))
        spatial = tuple(
            conv_out(n, ki, si, (lo + hi) / 2, di)
            for n, ki, si, (lo, hi), di in zip(shape[c + 1 :], k, s, self.pads(), d, strict=True)
        )
        return (*shape[:c], self.out_channels, *spatial)

    def activations(self, shape: Shape, policy: ActPolicy) -> list[Saved]:
        """convolution keeps its input (for the weight's gradient); measured.

        ``padding = same`` with an odd total padding d (k - 1) in some dimension: PyTorch
        pads the input by one on the right of each such dimension (``constant_pad_nd``)
        and convolves the padded copy with the symmetric rest, which is what it keeps
        (measured).  Decided on the kernel and dilation values; a free one keeps a
        ``Piecewise``, counted as the layer's own tensor."""
        if self.padding != "same":
            return [Saved("input", prod(shape), "act", "input")]
        c = channels_first(shape, self.dims)
        extra = [sympy.Mod(hi - lo, 2) for lo, hi in self.pads()]
        padded = prod(
            (*shape[: c + 1], *(n + e for n, e in zip(shape[c + 1 :], extra, strict=True)))
        )
        if all(e == 0 for e in extra):
            return [Saved("input", prod(shape), "act", "input")]
        if all(e.is_number for e in extra):
            return [Saved("padded_input", padded, "act")]
        odd = sympy.Or(*(sympy.Ne(e, 0, evaluate=False) for e in extra))
        return [Saved("padded_input", sympy.Piecewise((padded, odd), (prod(shape), True)), "act")]

    def to_torch(self, ev: IntEval) -> torch.nn.Module:
        import torch

        cls = {1: torch.nn.Conv1d, 2: torch.nn.Conv2d, 3: torch.nn.Conv3d}[self.dims]
        padding = self.padding if isinstance(self.padding, str) else _ints(ev, self.padding)
        return cls(
            ev(self.in_channels),
            ev(self.out_channels),
            _ints(ev, self.kernel_size),
            stride=_ints(ev, self.stride),
            padding=padding,
            dilation=_ints(ev, self.dilation),
            groups=ev(self.groups),
            bias=self.bias,
        )


def _ints(ev: IntEval, value: sympy.Expr | tuple[sympy.Expr, ...]) -> Any:
    """A per-dimension argument for torch: an int, or a tuple of ints."""
    if isinstance(value, tuple):
        return tuple(ev(v) for v in value)
    return ev(value)


def _check_channels(shape: Shape, c: int, in_channels: sympy.Expr, dims: int) -> None:
    if not same(shape[c], in_channels):
        want = ["batch", str(in_channels), *_SPATIAL[dims].split(", ")]
        if len(shape) == dims + 1:
            want = want[1:]
        raise ShapeError(
            f"expects in_channels = {in_channels}, i.e. an input [{', '.join(want)}], "
            f"not {fmt_shape(shape)} ({shape[c]} channels)"
        )


@register
@record
class Conv1d(_ConvNd):
    kind: ClassVar[str] = "conv1d"
    dims: ClassVar[int] = 1
    summary: ClassVar[str] = "1-d convolution [batch, C, L] -> [batch, out_channels, L_out]"
    examples: ClassVar[tuple[Example, ...]] = (
        Example("conv1d(4, 8, 3)", "[2, 4, 17]"),
        Example(
            "conv1d(4, 8, 5, stride = 2, padding = 2, dilation = 2, bias = false)", "[2, 4, 17]"
        ),
        Example("conv1d(4, 8, 4, padding = same)", "[2, 4, 9]", "same, odd total: padded copy"),
        Example("conv1d(4, 8, 3, padding = valid)", "[2, 4, 9]", "valid: no padding"),
    )


@register
@record
class Conv2d(_ConvNd):
    kind: ClassVar[str] = "conv2d"
    dims: ClassVar[int] = 2
    summary: ClassVar[str] = (
        "2-d convolution [batch, C, H, W] -> [batch, out_channels, H_out, W_out]"
    )
    examples: ClassVar[tuple[Example, ...]] = (
        Example("conv2d(3, 16, 3)", "[2, 3, 15, 15]"),
        Example("conv2d(8, 8, 3, padding = 1, groups = 8)", "[1, 8, 9, 9]", "depthwise"),
        Example(
            "conv2d(3, 4, [3, 5], stride = [1, 2], padding = [1, 0], dilation = [2, 1])",
            "[2, 3, 11, 12]",
            "non-square kernel, per-dimension stride, padding and dilation",
        ),
        Example("conv2d(3, 4, [3, 5], padding = same)", "[2, 3, 9, 10]", "same, symmetric"),
        Example(
            "conv2d(3, 4, [4, 3], padding = same, dilation = [1, 2])",
            "[2, 3, 9, 10]",
            "same, odd total in H only: the padded copy grows by one row",
        ),
    )


@register
@record
class Conv3d(_ConvNd):
    kind: ClassVar[str] = "conv3d"
    dims: ClassVar[int] = 3
    summary: ClassVar[str] = (
        "3-d convolution [batch, C, D, H, W] -> [batch, out_channels, D_out, H_out, W_out]"
    )
    examples: ClassVar[tuple[Example, ...]] = (
        Example("conv3d(2, 4, 3)", "[1, 2, 6, 7, 8]"),
        Example("conv3d(2, 4, [1, 3, 3], padding = [0, 1, 1])", "[1, 2, 4, 6, 6]", "(2+1)-d"),
    )


@record
class _ConvTransposeNd(Layer):
    """``torch.nn.ConvTranspose1d/2d/3d``: the gradient of a convolution, an upsampling.

    Weight ``(in_channels, out_channels / groups, *kernel_size)``, bias ``(out_channels)``
    (PyTorch ``nn.ConvTranspose2d`` docs, "Variables"); the parameter count is a
    convolution's.  Each spatial size becomes (the docs' "Shape")::

        (n - 1) s - 2 p + d (k - 1) + output_padding + 1

    with ``output_padding < max(stride, dilation)`` per dimension (PyTorch refuses more).
    It keeps its input for the weight's gradient (measured, as a convolution).
    """

    dims: ClassVar[int] = 2
    summary: ClassVar[str] = "transposed convolution, channels first"

    in_channels: Size
    out_channels: Size
    kernel_size: Sizes
    stride: Sizes = sympy.Integer(1)
    padding: NonNegs = sympy.Integer(0)
    output_padding: NonNegs = sympy.Integer(0)
    groups: Size = sympy.Integer(1)
    bias: bool = True
    dilation: Sizes = sympy.Integer(1)

    def _per_dim(self) -> list[tuple[sympy.Expr, ...]]:
        names = (self.kernel_size, self.stride, self.padding, self.output_padding, self.dilation)
        return [per_dim(v, self.dims) for v in names]

    def validate(self, ev: Evaluator) -> None:
        for what in ("kernel_size", "stride", "padding", "output_padding", "dilation"):
            check_per_dim(getattr(self, what), self.dims, what)
        for what, value in (("in_channels", self.in_channels), ("out_channels", self.out_channels)):
            require(ev, divides(value, self.groups, _groups_message(what)))
        _, s, _, op, d = self._per_dim()
        for si, opi, di in zip(s, op, d, strict=True):
            self.require_at_most(
                ev,
                opi + 1,
                sympy.Max(si, di),
                lambda a, b: (
                    f"output_padding = {a - 1 if a is not None else '?'} must be smaller than "
                    f"stride or dilation ({b}), as PyTorch requires"
                ),
            )

    def tensors(self) -> list[ParamTensor]:
        k = per_dim(self.kernel_size, self.dims)
        out = [ParamTensor("weight", (self.in_channels, self.out_channels / self.groups, *k))]
        if self.bias:
            out.append(ParamTensor("bias", (self.out_channels,)))
        return out

    def output_shape(self, shape: Shape) -> Shape:
        c = channels_first(shape, self.dims)
        _check_channels(shape, c, self.in_channels, self.dims)
        spatial = tuple(
            (n - 1) * si - 2 * pi + di * (ki - 1) + opi + 1
            for n, ki, si, pi, opi, di in zip(shape[c + 1 :], *self._per_dim(), strict=True)
        )
        return (*shape[:c], self.out_channels, *spatial)

    def activations(self, shape: Shape, policy: ActPolicy) -> list[Saved]:
        """convolution_transpose keeps its input (for the weight's gradient); measured."""
        return [Saved("input", prod(shape), "act", "input")]

    def to_torch(self, ev: IntEval) -> torch.nn.Module:
        import torch

        cls = {
            1: torch.nn.ConvTranspose1d,
            2: torch.nn.ConvTranspose2d,
            3: torch.nn.ConvTranspose3d,
        }[self.dims]
        return cls(
            ev(self.in_channels),
            ev(self.out_channels),
            _ints(ev, self.kernel_size),
            stride=_ints(ev, self.stride),
            padding=_ints(ev, self.padding),
            output_padding=_ints(ev, self.output_padding),
            groups=ev(self.groups),
            bias=self.bias,
            dilation=_ints(ev, self.dilation),
        )


@register
@record
class ConvTranspose1d(_ConvTransposeNd):
    kind: ClassVar[str] = "conv_transpose1d"
    dims: ClassVar[int] = 1
    summary: ClassVar[str] = "1-d transposed convolution [batch, C, L] -> [batch, out, L_out]"
    examples: ClassVar[tuple[Example, ...]] = (
        Example("conv_transpose1d(4, 6, 3, stride = 2)", "[2, 4, 7]"),
        Example(
            "conv_transpose1d(4, 6, 3, stride = 2, padding = 1, output_padding = 1, groups = 2, "
            "dilation = 2, bias = false)",
            "[2, 4, 7]",
        ),
    )


@register
@record
class ConvTranspose2d(_ConvTransposeNd):
    kind: ClassVar[str] = "conv_transpose2d"
    dims: ClassVar[int] = 2
    summary: ClassVar[str] = (
        "2-d transposed convolution [batch, C, H, W] -> [batch, out, H_out, W_out]"
    )
    examples: ClassVar[tuple[Example, ...]] = (
        Example("conv_transpose2d(4, 6, 2, stride = 2)", "[2, 4, 5, 6]", "2x upsampling"),
        Example(
            "conv_transpose2d(4, 6, [3, 2], stride = [2, 1], padding = [1, 0], "
            "output_padding = [1, 0], groups = 2)",
            "[2, 4, 5, 6]",
        ),
    )


@register
@record
class ConvTranspose3d(_ConvTransposeNd):
    kind: ClassVar[str] = "conv_transpose3d"
    dims: ClassVar[int] = 3
    summary: ClassVar[str] = (
        "3-d transposed convolution [batch, C, D, H, W] -> [batch, out, D_out, H_out, W_out]"
    )
    examples: ClassVar[tuple[Example, ...]] = (
        Example("conv_transpose3d(2, 4, [1, 2, 2], stride = [1, 2, 2])", "[1, 2, 3, 4, 5]"),
    )


def _groups_message(what: str) -> Any:
    def message(v: Any, g: Any) -> str:
        return (
            f"groups = {g} does not divide {what} = {v}: a grouped convolution "
            f"splits both in_channels and out_channels into `groups` equal parts"
        )

    return message
