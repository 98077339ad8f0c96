"""The image features of a vision part written into the text stream at the image tokens'
positions: ``[b, s, d]`` with memory ``[..., n, d]`` -> ``[b, s, d]``.

A vision-language model's prompt holds one placeholder token per image feature; the language
model embeds every token, then replaces the placeholders' rows by the projected image features
(transformers ``LlavaModel.forward``, ``Qwen2VLModel.forward``, ``Gemma3Model.forward``,
``Llama4ForConditionalGeneration.forward``: ``inputs_embeds.masked_scatter(special_image_mask,
image_features)``, the mask ``input_ids == image_token_id`` expanded over the width, a view).
So ``s`` counts the image tokens; the layer requires the memory's tokens (all images of the
batch, ``prod(memory[:-1])``, less ``drop`` leading tokens per image) to fit in the ``b s``
positions.  No parameters.  Saved for
backward: the boolean mask, ``b s`` bytes (``masked_scatter``'s derivative, tools/autograd/
derivatives.yaml: ``self: grad.masked_fill(mask, 0)``, ``source:
masked_scatter_backward(grad, mask, source.sizes())``; the expanded view's storage is ``b s``);
neither input is saved.  ``memory = vision`` names the part whose output it reads
(:meth:`reads_stream`), or a literal shape for the layer on its own.
"""

from __future__ import annotations

from typing import TYPE_CHECKING, ClassVar

import sympy

from symmem import constraints as c
from symmem.constraints import Constraint
from symmem.errors import ShapeError
from symmem.layers.base import (
    Example,
    IntEval,
    Layer,
    Saved,
    Shape,
    Size,
    Stream,
    fmt_shape,
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
class MergeImage(Layer):
    kind: ClassVar[str] = "merge_image"
    summary: ClassVar[str] = "a vision part's features written over the image tokens' rows"
    examples: ClassVar[tuple[Example, ...]] = (
        Example("merge_image(memory = [2, 3, 16])", "[2, 8, 16]"),
        Example(
            "merge_image(memory = [2, 4, 16], drop = 1)",
            "[2, 8, 16]",
            "LLaVA: each image's class token dropped before merging",
        ),
        Example(
            "embedding(50, 16); merge_image(memory = [1, 10, 16])",
            "[2, 8]",
            "after the token embedding, as the vision-language families write it; the "
            "features of one image spread over both sequences",
        ),
    )

    #: the vision part's output [..., n, d] (its name, ``memory = vision``, or a shape)
    memory: Stream
    #: leading tokens of each image the model drops before merging (LLaVA's
    #: ``vision_feature_select_strategy = "default"``: the class token, ``[:, 1:]``)
    drop: Size = sympy.Integer(0)

    @property
    def features(self) -> sympy.Expr:
        """Image features written into the stream: every image's tokens less ``drop``."""
        return prod(self.memory[:-2]) * (self.memory[-2] - self.drop)

    def output_shape(self, shape: Shape) -> Shape:
        if len(shape) < 2:
            raise ShapeError(f"expects tokens [..., s, d], not {fmt_shape(shape)}")
        if len(self.memory) < 2:
            raise ShapeError(f"reads image features [..., n, d], not {fmt_shape(self.memory)}")
        w_in, w_mem = sympy.sympify(shape[-1]), sympy.sympify(self.memory[-1])
        if w_in.is_number and w_mem.is_number and w_in != w_mem:
            raise ShapeError(
                f"writes image features of width {self.memory[-1]} into a stream of width "
                f"{shape[-1]}: the projector must end at the text width"
            )
        return shape

    def shape_requires(self, shape: Shape) -> tuple[Constraint, ...]:
        n, slots = self.features, prod(shape[:-1])
        out: tuple[Constraint, ...] = ()
        if not same(shape[-1], self.memory[-1]):  # equal widths under other names (Qwen2-VL)
            a, b = shape[-1], self.memory[-1]
            out = (
                Constraint(
                    (("nonneg", a - b), ("nonneg", b - a)),
                    (a, b),
                    lambda va, vb: (
                        f"writes image features of width {vb} into a stream of width {va}: the "
                        "projector must end at the text width"
                    ),
                ),
            )
        return out + (
            c.at_most(
                n,
                slots,
                lambda a, b: (
                    f"{a} image features do not fit in the {b} token positions of the text "
                    "stream (batch x seq_len must count the image tokens)"
                ),
            ),
        )

    def activations(self, shape: Shape, policy: ActPolicy) -> list[Saved]:
        return [Saved("image_mask", prod(shape[:-1]), "bool", small=True)]

    def reads_stream(self) -> Shape:
        return self.memory

    def to_torch(self, ev: IntEval) -> torch.nn.Module:
        from symmem.layers._torch_vision import TorchMergeImage

        return TorchMergeImage(tuple(ev(x) for x in self.memory), ev(self.drop))
