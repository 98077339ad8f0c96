"""Learned tokens joined to the stream: ``[batch, s, d] -> [batch, s + count, d]``.

A ViT's class token (Dosovitskiy et al. 2021, eq. 1; transformers' ``ViTEmbeddings.cls_token``,
``CLIPVisionEmbeddings.class_embedding``): ``count * d`` parameters, concatenated before the
patch tokens.  ``at = last`` puts them after the patches instead: Llama 4's vision model
(transformers ``Llama4VisionModel.forward``: ``torch.cat([hidden_state, class_embedding],
dim=1)``, removed again before the pixel shuffle, ``drop_tokens(at = last)``).  ``cat`` keeps
nothing for backward (its gradient is a split by sizes).
"""

from __future__ import annotations

from typing import TYPE_CHECKING, ClassVar, Literal

import sympy

from symmem.layers.base import Example, IntEval, Layer, ParamTensor, Shape, Size, register
from symmem.records import record

if TYPE_CHECKING:
    import torch


@register
@record
class ClsToken(Layer):
    kind: ClassVar[str] = "cls_token"
    summary: ClassVar[str] = "learned tokens before the stream: [b, s, d] -> [b, s + count, d]"
    examples: ClassVar[tuple[Example, ...]] = (
        Example("cls_token(16)", "[2, 5, 16]"),
        Example("linear(16, 16); cls_token(16, count = 2); linear(16, 4)", "[2, 5, 16]"),
        Example("cls_token(16, at = last)", "[2, 5, 16]", "Llama 4's vision class token"),
    )

    dim: Size
    count: Size = sympy.Integer(1)
    #: before the stream's tokens (ViT, CLIP) or after them (Llama 4)
    at: Literal["first", "last"] = "first"

    def tensors(self) -> list[ParamTensor]:
        return [ParamTensor("cls_token", (self.count, self.dim))]

    def output_shape(self, shape: Shape) -> Shape:
        self.expect_last_dim(shape, self.dim, "dim")
        return (*shape[:-2], shape[-2] + self.count, shape[-1])

    def to_torch(self, ev: IntEval) -> torch.nn.Module:
        from symmem.layers._torch_vision import TorchClsToken

        return TorchClsToken(ev(self.dim), ev(self.count), self.at == "last")
