"""Batch normalisation over the channel dimension (``torch.nn.BatchNorm1d/2d/3d``;
Ioffe and Szegedy 2015).

Parameters (PyTorch ``nn.BatchNorm2d`` docs): ``weight`` (gamma) and ``bias``
(beta) of size C each when ``affine``: ``2 C``.

Buffers (not parameters: ``parameters()`` skips them, ``state_dict()`` and a
checkpoint keep them) when ``track_running_stats``: ``running_mean`` and
``running_var`` (C each) and the scalar ``num_batches_tracked``: ``2 C + 1``.
``Model.params()`` reports them as buffers; ``include_buffers = True`` counts
them, as ``state_dict()`` does.

Input: ``[batch, C]`` or ``[batch, C, L]`` (1d), ``[batch, C, H, W]`` (2d),
``[batch, C, D, H, W]`` (3d); the channel is dimension 1.
"""

from __future__ import annotations

from typing import TYPE_CHECKING, ClassVar

import sympy

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


@record
class _BatchNorm(Layer):
    #: allowed input ranks
    ranks: ClassVar[tuple[int, ...]] = (4,)
    #: the torch.nn class it is (instance norm shares everything but defaults and saved)
    torch_class: ClassVar[str] = "BatchNorm2d"
    layout: ClassVar[str] = "[batch, C, H, W]"
    summary: ClassVar[str] = "batch normalisation over channels"

    num_features: Size
    eps: Real = sympy.Rational(1, 100000)
    momentum: Real = sympy.Rational(1, 10)
    affine: bool = True
    track_running_stats: bool = True

    def validate(self, ev: Evaluator) -> None:
        self.require_positive(ev, self.eps, "eps")

    def tensors(self) -> list[ParamTensor]:
        c = self.num_features
        out: list[ParamTensor] = []
        if self.affine:
            out += [ParamTensor("weight", (c,)), ParamTensor("bias", (c,))]
        if self.track_running_stats:
            out += [
                ParamTensor("running_mean", (c,), buffer=True),
                ParamTensor("running_var", (c,), buffer=True),
                ParamTensor("num_batches_tracked", (), buffer=True),
            ]
        return out

    def output_shape(self, shape: Shape) -> Shape:
        if len(shape) not in self.ranks:
            raise ShapeError(
                f"expects an input {self.layout}, but its input has shape {fmt_shape(shape)}"
            )
        if not same(shape[1], self.num_features):
            raise ShapeError(
                f"expects num_features = {self.num_features} channels at dimension 1 of "
                f"{self.layout}, not {fmt_shape(shape)} ({shape[1]} channels)"
            )
        return shape

    def activations(self, shape: Shape, policy: ActPolicy) -> list[Saved]:
        """Training batch norm keeps its input and the batch mean and inverse std per
        channel (fp32 on CUDA, the activation dtype on CPU, as layer norm); the running
        statistics it also keeps are buffers, alive anyway.  Measured on CPU."""
        stat = "fp32" if policy.device == "cuda" else "act"
        return [
            Saved("input", prod(shape), "act", "input"),
            Saved("save_mean", self.num_features, stat, small=True),
            Saved("save_invstd", self.num_features, stat, small=True),
        ]

    def to_torch(self, ev: IntEval) -> torch.nn.Module:
        import torch

        cls = getattr(torch.nn, self.torch_class)
        return cls(
            ev(self.num_features),
            eps=float(self.eps),
            momentum=float(self.momentum),
            affine=self.affine,
            track_running_stats=self.track_running_stats,
        )


@register
@record
class BatchNorm1d(_BatchNorm):
    kind: ClassVar[str] = "batchnorm1d"
    torch_class: ClassVar[str] = "BatchNorm1d"
    ranks: ClassVar[tuple[int, ...]] = (2, 3)
    layout: ClassVar[str] = "[batch, C] or [batch, C, L]"
    summary: ClassVar[str] = "batch normalisation of [batch, C] or [batch, C, L]"
    examples: ClassVar[tuple[Example, ...]] = (
        Example("batchnorm1d(4)", "[2, 4, 9]"),
        Example("batchnorm1d(4, affine = false)", "[3, 4]"),
    )


@register
@record
class BatchNorm2d(_BatchNorm):
    kind: ClassVar[str] = "batchnorm2d"
    torch_class: ClassVar[str] = "BatchNorm2d"
    ranks: ClassVar[tuple[int, ...]] = (4,)
    layout: ClassVar[str] = "[batch, C, H, W]"
    summary: ClassVar[str] = "batch normalisation of [batch, C, H, W] over channels"
    examples: ClassVar[tuple[Example, ...]] = (Example("batchnorm2d(3)", "[2, 3, 5, 5]"),)


@register
@record
class BatchNorm3d(_BatchNorm):
    kind: ClassVar[str] = "batchnorm3d"
    torch_class: ClassVar[str] = "BatchNorm3d"
    ranks: ClassVar[tuple[int, ...]] = (5,)
    layout: ClassVar[str] = "[batch, C, D, H, W]"
    summary: ClassVar[str] = "batch normalisation of [batch, C, D, H, W] over channels"
    examples: ClassVar[tuple[Example, ...]] = (Example("batchnorm3d(2)", "[1, 2, 3, 4, 5]"),)
