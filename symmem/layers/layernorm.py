"""Layer normalisation over the last dimension (``torch.nn.LayerNorm``).

Parameters: ``d`` scales (``elementwise_affine``) plus ``d`` shifts (``bias``,
PyTorch >= 2.1 lets it be switched off, as OLMo and some Llama-style models do).
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import TYPE_CHECKING, ClassVar

from symmem.layers._saved import tokens
from symmem.layers.base import (
    Example,
    IntEval,
    Layer,
    ParamTensor,
    Real,
    Saved,
    Shape,
    Size,
    prod,
    register,
)
from symmem.policy import ActPolicy

if TYPE_CHECKING:
    import torch


@register
@dataclass(frozen=True)
class LayerNorm(Layer):
    kind: ClassVar[str] = "layernorm"
    summary: ClassVar[str] = "normalise the last dimension, then scale and shift"
    examples: ClassVar[tuple[Example, ...]] = (
        Example("layernorm(16)", "[2, 8, 16]"),
        Example("layernorm(16, bias = false)", "[2, 8, 16]"),
        Example("layernorm(16, affine = false)", "[2, 8, 16]"),
    )

    normalized_shape: Size
    affine: bool = True
    bias: bool = True
    eps: Real | None = None

    def tensors(self) -> list[ParamTensor]:
        if not self.affine:
            return []
        out = [ParamTensor("weight", (self.normalized_shape,))]
        if self.bias:
            out.append(ParamTensor("bias", (self.normalized_shape,)))
        return out

    def output_shape(self, shape: Shape) -> Shape:
        self.expect_last_dim(shape, self.normalized_shape, "normalized_shape")
        return shape

    def activations(self, shape: Shape, policy: ActPolicy) -> list[Saved]:
        """native_layer_norm keeps its input, mean and rstd (one per row).

        The statistics are fp32 on CUDA (``acc_type``,
        aten/src/ATen/native/cuda/layer_norm_kernel.cu) and in the input's dtype on CPU
        (measured, torch 2.13 with bf16 weights).
        """
        rows = tokens(shape)
        stat = "fp32" if policy.device == "cuda" else "act"
        return [
            Saved("input", prod(shape), "act", "input"),
            Saved("mean", rows, stat, small=True),
            Saved("rstd", rows, stat, small=True),
        ]

    def to_torch(self, ev: IntEval) -> torch.nn.Module:
        import torch

        return torch.nn.LayerNorm(
            ev(self.normalized_shape),
            elementwise_affine=self.affine,
            bias=self.bias and self.affine,
        )
