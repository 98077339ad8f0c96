"""Dropout (``torch.nn.Dropout``): no parameters; in training it keeps a mask."""

from __future__ import annotations

from typing import TYPE_CHECKING, ClassVar

import sympy

from symmem.layers._saved import dropout_saved, dropping
from symmem.layers.base import (
    Evaluator,
    Example,
    IntEval,
    Layer,
    Real,
    Saved,
    Shape,
    prod,
    register,
)
from symmem.policy import ActPolicy
from symmem.records import record

if TYPE_CHECKING:
    import torch


@register
@record
class Dropout(Layer):
    kind: ClassVar[str] = "dropout"
    summary: ClassVar[str] = "zero elements with probability p in training"
    examples: ClassVar[tuple[Example, ...]] = (Example("dropout(0.1)", "[2, 8, 16]"),)
    dropout_fields: ClassVar[tuple[str, ...]] = ("p",)

    p: Real = sympy.Rational(1, 10)

    def validate(self, ev: Evaluator) -> None:
        self.require_probability(ev, self.p, "p")

    def passes_through(self, policy: ActPolicy) -> bool:
        """Off, or p = 0 (a number: the memory build gives p its value), dropout returns its
        input itself (aten/src/ATen/native/Dropout.cpp ``_dropout_impl``: ``if (p == 0 ||
        !train ...) return input``), so a tensor saved on both sides is one storage."""
        return dropping(self.p, policy) == 0

    def activations(self, shape: Shape, policy: ActPolicy) -> list[Saved]:
        """The mask (see :func:`symmem.layers._saved.dropout_saved`): 1 byte on CUDA."""
        return dropout_saved("mask", prod(shape), self.p, policy, grads=("input",))

    def to_torch(self, ev: IntEval) -> torch.nn.Module:
        import torch

        return torch.nn.Dropout(float(self.p))
