"""A free-standing parameter tensor that leaves the stream unchanged.

For tensors that belong to a model but not to a layer kind of their own:
T5's relative-attention bias table (``param rel_bias(num_buckets, heads)``),
ViT's class token (``param cls_token(1, 1, d)``), BERT's token-type
embedding table.  Parameters: the product of the dimensions (one to four
``Size`` dimensions).  Output shape = input shape.
"""

from __future__ import annotations

from typing import TYPE_CHECKING, ClassVar

from symmem.layers.base import Example, IntEval, Layer, ParamTensor, Shape, Size, register
from symmem.records import record

if TYPE_CHECKING:
    import torch


@register
@record
class Param(Layer):
    kind: ClassVar[str] = "param"
    passthrough: ClassVar[bool] = True  # forward is the identity
    aliases: ClassVar[tuple[str, ...]] = ("parameter",)
    summary: ClassVar[str] = "a parameter tensor of the given shape; the stream passes unchanged"
    examples: ClassVar[tuple[Example, ...]] = (Example("param(4, 16)", "[2, 8, 16]"),)

    # A variadic shape written as four optional fields: the DSL argument binder
    # (symmem.graph._instantiate) binds positional arguments to fields one by one.
    dim0: Size
    dim1: Size | None = None
    dim2: Size | None = None
    dim3: Size | None = None

    @property
    def shape(self) -> Shape:
        return tuple(d for d in (self.dim0, self.dim1, self.dim2, self.dim3) if d is not None)

    def tensors(self) -> list[ParamTensor]:
        return [ParamTensor("weight", self.shape)]

    def output_shape(self, shape: Shape) -> Shape:
        return shape

    def to_torch(self, ev: IntEval) -> torch.nn.Module:
        import torch

        class _Param(torch.nn.Module):
            """Holds the tensor; forward is the identity (the tensor is read elsewhere)."""

            def __init__(self, shape: tuple[int, ...]) -> None:
                super().__init__()
                self.weight = torch.nn.Parameter(torch.zeros(shape))

            def forward(self, x: torch.Tensor) -> torch.Tensor:
                return x

        return _Param(tuple(ev(d) for d in self.shape))
