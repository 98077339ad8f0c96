"""Pooling: ``maxpool1d/2d``, ``avgpool1d/2d``, ``adaptive_avgpool1d/2d`` and
``global_avgpool2d``.  No parameters; the channel count is kept.

Output sizes (PyTorch ``nn.MaxPool2d`` / ``nn.AvgPool2d`` docs, "Shape"):
``floor((n + 2p - d(k-1) - 1) / s) + 1`` with ``stride`` defaulting to
``kernel_size`` (average pooling has no dilation: d = 1).  With
``ceil_mode = true`` the floor becomes a ceiling, and a last window that would
start in the right padding is dropped (PyTorch ``pooling_output_shape`` in
``aten/src/ATen/native/Pool.h``)::

    out = ceil((n + 2p - d(k-1) - 1) / s) + 1;  if (out - 1) * s >= n + p: out -= 1

PyTorch also requires ``padding <= kernel_size / 2``, checked here.
``adaptive_avgpool2d(o)`` gives an ``o x o`` map whatever the input size
(``nn.AdaptiveAvgPool2d``); ``global_avgpool2d`` averages ``[batch, C, H, W]``
into ``[batch, C]`` (Keras ``GlobalAveragePooling2D``, Lin et al. 2014 "Network
in Network").
"""

from __future__ import annotations

from typing import TYPE_CHECKING, Any, ClassVar

import sympy

from symmem.constraints import at_most, require
from symmem.layers.base import (
    Evaluator,
    Example,
    IntEval,
    Layer,
    NonNegs,
    Saved,
    Shape,
    Sizes,
    check_per_dim,
    per_dim,
    prod,
    register,
)
from symmem.layers.conv import channels_first
from symmem.policy import ActPolicy
from symmem.records import record

if TYPE_CHECKING:
    import torch


def pool_out(
    size: sympy.Expr,
    kernel: sympy.Expr,
    stride: sympy.Expr,
    padding: sympy.Expr,
    dilation: sympy.Expr,
    ceil_mode: bool,
) -> sympy.Expr:
    """PyTorch's pooling output size, floor or ceil mode, exact."""
    span = size + 2 * padding - dilation * (kernel - 1) - 1
    if not ceil_mode:
        return sympy.floor(span / stride) + 1
    out = sympy.ceiling(span / stride) + 1
    return sympy.Piecewise((out - 1, (out - 1) * stride >= size + padding), (out, True))


def check_padding(ev: Evaluator, padding: sympy.Expr, kernel: sympy.Expr) -> None:
    """PyTorch: "pad should be at most half of effective kernel size"."""
    require(
        ev,
        at_most(
            2 * padding,
            kernel,
            lambda p2, k: (
                f"padding = {_half(p2)} is more than half of kernel_size = {k} "
                "(PyTorch requires padding <= kernel_size / 2)"
            ),
        ),
    )


def _check_windows(ev: Evaluator, layer: Any, names: tuple[str, ...]) -> None:
    """Per-dimension lists of the right length, and padding <= kernel / 2 in each dimension."""
    for name in names:
        if getattr(layer, name) is not None:
            check_per_dim(getattr(layer, name), layer.dims, name)
    for p, k in zip(
        per_dim(layer.padding, layer.dims), per_dim(layer.kernel_size, layer.dims), strict=True
    ):
        check_padding(ev, p, k)


def _ints(ev: IntEval, value: sympy.Expr | tuple[sympy.Expr, ...]) -> Any:
    """A per-dimension argument for torch: an int, or a tuple of ints."""
    if isinstance(value, tuple):
        return tuple(ev(v) for v in value)
    return ev(value)


def _half(twice: Any) -> Any:
    if twice is None:
        return None
    half = twice / 2
    return int(half) if float(half).is_integer() else half


@record
class _PoolNd(Layer):
    dims: ClassVar[int] = 2
    summary: ClassVar[str] = "pooling"

    kernel_size: Sizes
    stride: Sizes | None = None
    padding: NonNegs = sympy.Integer(0)
    dilation: Sizes = sympy.Integer(1)
    ceil_mode: bool = False

    @property
    def step(self) -> sympy.Expr | tuple[sympy.Expr, ...]:
        return self.kernel_size if self.stride is None else self.stride

    def validate(self, ev: Evaluator) -> None:
        _check_windows(ev, self, ("kernel_size", "stride", "padding", "dilation"))

    def output_shape(self, shape: Shape) -> Shape:
        c = channels_first(shape, self.dims)
        k, s, p, d = (
            per_dim(v, self.dims)
            for v in (self.kernel_size, self.step, self.padding, self.dilation)
        )
        spatial = tuple(
            pool_out(n, ki, si, pi, di, self.ceil_mode)
            for n, ki, si, pi, di in zip(shape[c + 1 :], k, s, p, d, strict=True)
        )
        return (*shape[: c + 1], *spatial)


@record
class _MaxPool(_PoolNd):
    def activations(self, shape: Shape, policy: ActPolicy) -> list[Saved]:
        """max_pool keeps its input and the argmax indices (int64, one per output element)."""
        return [
            Saved("input", prod(shape), "act", "input"),
            Saved("indices", prod(self.output_shape(shape)), "int64"),
        ]

    def to_torch(self, ev: IntEval) -> torch.nn.Module:
        import torch

        cls = {1: torch.nn.MaxPool1d, 2: torch.nn.MaxPool2d}[self.dims]
        return cls(
            _ints(ev, self.kernel_size),
            stride=_ints(ev, self.step),
            padding=_ints(ev, self.padding),
            dilation=_ints(ev, self.dilation),
            ceil_mode=self.ceil_mode,
        )


@register
@record
class MaxPool1d(_MaxPool):
    kind: ClassVar[str] = "maxpool1d"
    dims: ClassVar[int] = 1
    summary: ClassVar[str] = "max over windows of L: [batch, C, L] -> [batch, C, L_out]"
    examples: ClassVar[tuple[Example, ...]] = (Example("maxpool1d(2)", "[2, 3, 9]"),)


@register
@record
class MaxPool2d(_MaxPool):
    kind: ClassVar[str] = "maxpool2d"
    dims: ClassVar[int] = 2
    summary: ClassVar[str] = "max over windows: [batch, C, H, W] -> [batch, C, H_out, W_out]"
    examples: ClassVar[tuple[Example, ...]] = (
        Example("maxpool2d(3, stride = 2, padding = 1)", "[2, 3, 12, 12]"),
        Example(
            "maxpool2d([3, 2], stride = [2, 1], padding = [1, 0], dilation = [1, 2])",
            "[2, 3, 9, 10]",
            "per-dimension window",
        ),
    )


@record
class _AvgPool(Layer):
    """Average pooling: PyTorch's ``nn.AvgPool*d`` has no dilation argument."""

    dims: ClassVar[int] = 2
    summary: ClassVar[str] = "average pooling"

    kernel_size: Sizes
    stride: Sizes | None = None
    padding: NonNegs = sympy.Integer(0)
    ceil_mode: bool = False
    count_include_pad: bool = True

    @property
    def step(self) -> sympy.Expr | tuple[sympy.Expr, ...]:
        return self.kernel_size if self.stride is None else self.stride

    def validate(self, ev: Evaluator) -> None:
        _check_windows(ev, self, ("kernel_size", "stride", "padding"))

    def output_shape(self, shape: Shape) -> Shape:
        c = channels_first(shape, self.dims)
        one = sympy.Integer(1)
        k, s, p = (per_dim(v, self.dims) for v in (self.kernel_size, self.step, self.padding))
        spatial = tuple(
            pool_out(n, ki, si, pi, one, self.ceil_mode)
            for n, ki, si, pi in zip(shape[c + 1 :], k, s, p, strict=True)
        )
        return (*shape[: c + 1], *spatial)

    def activations(self, shape: Shape, policy: ActPolicy) -> list[Saved]:
        """avg_pool keeps its input (measured, torch 2.13)."""
        return [Saved("input", prod(shape), "act", "input")]

    def to_torch(self, ev: IntEval) -> torch.nn.Module:
        import torch

        cls = {1: torch.nn.AvgPool1d, 2: torch.nn.AvgPool2d}[self.dims]
        return cls(
            _ints(ev, self.kernel_size),
            stride=_ints(ev, self.step),
            padding=_ints(ev, self.padding),
            ceil_mode=self.ceil_mode,
            count_include_pad=self.count_include_pad,
        )


@register
@record
class AvgPool1d(_AvgPool):
    kind: ClassVar[str] = "avgpool1d"
    dims: ClassVar[int] = 1
    summary: ClassVar[str] = "mean over windows of L: [batch, C, L] -> [batch, C, L_out]"
    examples: ClassVar[tuple[Example, ...]] = (Example("avgpool1d(3)", "[2, 3, 10]"),)


@register
@record
class AvgPool2d(_AvgPool):
    kind: ClassVar[str] = "avgpool2d"
    dims: ClassVar[int] = 2
    summary: ClassVar[str] = "mean over windows: [batch, C, H, W] -> [batch, C, H_out, W_out]"
    examples: ClassVar[tuple[Example, ...]] = (
        Example("avgpool2d(2)", "[2, 3, 9, 9]"),
        Example(
            "avgpool2d(3, stride = 2, padding = 1, ceil_mode = true, count_include_pad = false)",
            "[2, 3, 9, 9]",
        ),
        Example("avgpool2d([3, 2], stride = [2, 1], padding = [1, 0])", "[2, 3, 9, 10]"),
    )


@record
class _AdaptiveAvgPool(Layer):
    dims: ClassVar[int] = 2
    summary: ClassVar[str] = "adaptive average pooling"

    output_size: Sizes

    decided_fields: ClassVar[tuple[str, ...]] = ("output_size",)

    def validate(self, ev: Evaluator) -> None:
        check_per_dim(self.output_size, self.dims, "output_size")

    def output_shape(self, shape: Shape) -> Shape:
        c = channels_first(shape, self.dims)
        return (*shape[: c + 1], *per_dim(self.output_size, self.dims))

    def activations(self, shape: Shape, policy: ActPolicy) -> list[Saved]:
        """adaptive_avg_pool keeps its input, except output size 1 (every dimension), which
        PyTorch computes as a mean (keeps nothing); measured.  Decided on the size's value (the
        memory build gives it its number); a free size is taken as not 1."""
        if all(sympy.sympify(o) == 1 for o in per_dim(self.output_size, self.dims)):
            return []
        return [Saved("input", prod(shape), "act", "input")]

    def to_torch(self, ev: IntEval) -> torch.nn.Module:
        import torch

        cls = {1: torch.nn.AdaptiveAvgPool1d, 2: torch.nn.AdaptiveAvgPool2d}[self.dims]
        return cls(_ints(ev, self.output_size))


@register
@record
class AdaptiveAvgPool1d(_AdaptiveAvgPool):
    kind: ClassVar[str] = "adaptive_avgpool1d"
    dims: ClassVar[int] = 1
    summary: ClassVar[str] = "mean into output_size bins: [batch, C, L] -> [batch, C, output_size]"
    examples: ClassVar[tuple[Example, ...]] = (Example("adaptive_avgpool1d(4)", "[2, 3, 10]"),)


@register
@record
class AdaptiveAvgPool2d(_AdaptiveAvgPool):
    kind: ClassVar[str] = "adaptive_avgpool2d"
    dims: ClassVar[int] = 2
    summary: ClassVar[str] = "mean into o x o bins: [batch, C, H, W] -> [batch, C, o, o]"
    examples: ClassVar[tuple[Example, ...]] = (
        Example("adaptive_avgpool2d(3)", "[2, 3, 8, 8]"),
        Example("adaptive_avgpool2d([3, 1])", "[2, 3, 8, 8]", "o_h x o_w bins"),
    )


@register
@record
class GlobalAvgPool2d(Layer):
    kind: ClassVar[str] = "global_avgpool2d"
    summary: ClassVar[str] = "mean over H and W: [batch, C, H, W] -> [batch, C]"
    examples: ClassVar[tuple[Example, ...]] = (Example("global_avgpool2d", "[2, 3, 5, 5]"),)

    def output_shape(self, shape: Shape) -> Shape:
        c = channels_first(shape, 2)
        return shape[: c + 1]

    def to_torch(self, ev: IntEval) -> torch.nn.Module:
        import torch

        class _GlobalAvgPool2d(torch.nn.Module):
            def forward(self, x: torch.Tensor) -> torch.Tensor:
                return x.mean(dim=(-2, -1))

        return _GlobalAvgPool2d()
