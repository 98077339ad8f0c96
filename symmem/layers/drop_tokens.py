"""Leading or trailing tokens left out of the stream: ``[..., s, d] -> [..., s - count, d]``.

A slice of the token axis, a view of the same storage (nothing saved: ``slice``'s derivative
needs only the sizes, tools/autograd/derivatives.yaml ``slice_backward``).  Llama 4's vision
model drops its class token, which it appended after the patches, before the pixel shuffle
(transformers ``Llama4VisionModel.forward``: ``hidden_state = hidden_state[:, :-1, :]``,
after ``layernorm_post``: ``drop_tokens(at = last)``); a ViT head that reads the patches only
drops the leading class token (``[:, 1:]``, LLaVA's ``vision_feature_select_strategy =
"default"``).  No parameters.
"""

from __future__ import annotations

from typing import TYPE_CHECKING, ClassVar, Literal

import sympy

from symmem import constraints as c
from symmem.constraints import Constraint
from symmem.errors import ShapeError
from symmem.layers.base import Example, IntEval, Layer, Shape, Size, fmt_shape, register
from symmem.records import record

if TYPE_CHECKING:
    import torch


@register
@record
class DropTokens(Layer):
    kind: ClassVar[str] = "drop_tokens"
    passthrough: ClassVar[bool] = True  # a slice: a view of the same storage
    summary: ClassVar[str] = "leave out leading or trailing tokens: [..., s, d] -> [..., s - n, d]"
    examples: ClassVar[tuple[Example, ...]] = (
        Example("drop_tokens(2)", "[2, 5, 16]"),
        Example(
            "cls_token(16, at = last); layernorm(16); drop_tokens(at = last); linear(16, 4)",
            "[2, 4, 16]",
            "Llama 4's vision class token: appended, normalised with the patches, dropped",
        ),
    )

    #: how many tokens to leave out
    count: Size = sympy.Integer(1)
    #: the first ``count`` tokens (``x[:, count:]``) or the last (``x[:, :-count]``)
    at: Literal["first", "last"] = "first"

    def output_shape(self, shape: Shape) -> Shape:
        if len(shape) < 2:
            raise ShapeError(f"expects tokens [..., s, d], not {fmt_shape(shape)}")
        s = sympy.sympify(shape[-2])
        n = sympy.sympify(self.count)
        if s.is_number and n.is_number and n >= s:
            raise ShapeError(f"drops {self.count} of the {shape[-2]} tokens: none would be left")
        return (*shape[:-2], shape[-2] - self.count, shape[-1])

    def shape_requires(self, shape: Shape) -> tuple[Constraint, ...]:
        return (
            c.at_most(
                self.count + 1,
                shape[-2],
                lambda a, b: f"drops {a - 1} of the {b} tokens: none would be left",
            ),
        )

    def to_torch(self, ev: IntEval) -> torch.nn.Module:
        from symmem.layers._torch_vision import TorchDropTokens

        return TorchDropTokens(ev(self.count), self.at == "last")
