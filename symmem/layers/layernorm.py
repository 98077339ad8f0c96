"""Layer normalisation over the last dimension, or the last several
(``torch.nn.LayerNorm``; ``normalized_shape`` one size or a list ``[h, w]``).

Parameters: ``prod(normalized_shape)`` scales (``elementwise_affine``) plus as many
shifts (``bias``, PyTorch >= 2.1 lets it be switched off, as OLMo and some Llama-style
models do).  The statistics are one mean and one rstd per row, a row being every
leading dimension the normalisation does not cover.
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
    Real,
    Saved,
    Shape,
    Sizes,
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


@register
@record
class LayerNorm(Layer):
    kind: ClassVar[str] = "layernorm"
    summary: ClassVar[str] = "normalise the last dimension, then scale and shift"
    examples: ClassVar[tuple[Example, ...]] = (
        Example("layernorm(16)", "[2, 8, 16]"),
        Example("layernorm(16, bias = false)", "[2, 8, 16]"),
        Example("layernorm(16, affine = false)", "[2, 8, 16]"),
        Example("layernorm([5, 6])", "[2, 4, 5, 6]", "over the last two dimensions"),
    )

    normalized_shape: Sizes
    affine: bool = True
    bias: bool = True
    eps: Real | None = None

    def tensors(self) -> list[ParamTensor]:
        if not self.affine:
            return []
        dims = self.dims
        out = [ParamTensor("weight", dims)]
        if self.bias:
            out.append(ParamTensor("bias", dims))
        return out

    @property
    def dims(self) -> tuple[sympy.Expr, ...]:
        """The normalised trailing dimensions."""
        return per_dim(self.normalized_shape, 1)

    def output_shape(self, shape: Shape) -> Shape:
        dims = self.dims
        if len(dims) == 1:
            self.expect_last_dim(shape, dims[0], "normalized_shape")
        elif len(shape) < len(dims) or not all(
            same(a, b) for a, b in zip(shape[-len(dims) :], dims, strict=True)
        ):
            raise ShapeError(
                f"expects an input [..., {', '.join(map(str, dims))}] (normalized_shape = "
                f"{fmt_shape(dims)}), not {fmt_shape(shape)}"
            )
        return shape

    def activations(self, shape: Shape, policy: ActPolicy) -> list[Saved]:
        """native_layer_norm keeps its input, mean and rstd (one per row).

        The statistics are fp32 on CUDA (``acc_type``,
        aten/src/ATen/native/cuda/layer_norm_kernel.cu) and in the input's dtype on CPU
        (measured, torch 2.13 with bf16 weights).
        """
        rows = prod(shape[: len(shape) - len(self.dims)])
        stat = "fp32" if policy.device == "cuda" else "act"
        # native_layer_norm keeps all three whatever is frozen, when anything needs a gradient
        grads = ("input", "weight", "bias")
        return [
            Saved("input", prod(shape), "act", "input", grads=grads),
            Saved("mean", rows, stat, small=True, grads=grads),
            Saved("rstd", rows, stat, small=True, grads=grads),
        ]

    def to_torch(self, ev: IntEval) -> torch.nn.Module:
        import torch

        return torch.nn.LayerNorm(
            [ev(d) for d in self.dims],
            elementwise_affine=self.affine,
            bias=self.bias and self.affine,
        )
