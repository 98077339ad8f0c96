"""Lookup tables: ``embedding`` (tokens -> vectors) and ``pos_embedding`` (learned
absolute positions added to the stream, as in GPT-2 and BERT).

Parameters: ``num_embeddings * embedding_dim`` (``torch.nn.Embedding``).
An ``embedding`` maps an integer tensor of shape [...] to [..., dim]; a
``pos_embedding`` takes the stream [..., dim] and returns it unchanged in shape
(its rows are added, one per position).
"""

from __future__ import annotations

from typing import TYPE_CHECKING, ClassVar

import sympy

from symmem.layers.base import (
    Example,
    IntEval,
    Layer,
    ParamTensor,
    Ref,
    Saved,
    Shape,
    Size,
    prod,
    register,
)
from symmem.policy import ActPolicy
from symmem.records import record

if TYPE_CHECKING:
    import torch


@register
@record
class Embedding(Layer):
    kind: ClassVar[str] = "embedding"
    summary: ClassVar[str] = "token ids [...] -> vectors [..., dim]"
    examples: ClassVar[tuple[Example, ...]] = (Example("embedding(100, 16)", "[2, 8]"),)

    num_embeddings: Size
    embedding_dim: Size
    tie: Ref | None = None

    def tensors(self) -> list[ParamTensor]:
        # vocab-parallel under tensor parallelism (Megatron-LM VocabParallelEmbedding)
        return [
            ParamTensor(
                "weight", (self.num_embeddings, self.embedding_dim), lookup=True, tp_split=True
            )
        ]

    def output_shape(self, shape: Shape) -> Shape:
        return (*shape, self.embedding_dim)

    def token_vocab(self) -> sympy.Expr:
        """Its input is token ids in [0, num_embeddings)."""
        return self.num_embeddings

    def activations(self, shape: Shape, policy: ActPolicy) -> list[Saved]:
        """embedding_backward needs the indices (int64), not the table rows: for the table's
        gradient only (a frozen table keeps none)."""
        return [Saved("indices", prod(shape), "int64", "input", small=True, grads=("weight",))]

    def to_torch(self, ev: IntEval) -> torch.nn.Module:
        import torch

        return torch.nn.Embedding(ev(self.num_embeddings), ev(self.embedding_dim))


@register
@record
class PosEmbedding(Layer):
    kind: ClassVar[str] = "pos_embedding"
    aliases: ClassVar[tuple[str, ...]] = ("positional_embedding",)
    summary: ClassVar[str] = "learned absolute positions added to the stream [..., seq, dim]"
    examples: ClassVar[tuple[Example, ...]] = (Example("pos_embedding(32, 16)", "[2, 8, 16]"),)

    num_positions: Size
    embedding_dim: Size

    def tensors(self) -> list[ParamTensor]:
        return [ParamTensor("weight", (self.num_positions, self.embedding_dim), lookup=True)]

    def output_shape(self, shape: Shape) -> Shape:
        self.expect_last_dim(shape, self.embedding_dim, "embedding_dim")
        return shape

    def positions(self) -> sympy.Expr:
        return self.num_positions

    def activations(self, shape: Shape, policy: ActPolicy) -> list[Saved]:
        """Slicing the table (symmem's and plain PyTorch's way) keeps nothing.  transformers
        looks the rows up by an int64 id tensor made per forward, [1, s], which the
        embedding backward keeps (``policy.position_ids``): GPT-2's ``wpe(position_ids)``,
        ``position_ids = cache_position.unsqueeze(0)``; BERT slices a buffer for its
        positions but gathers its token-type ids at them (``torch.gather``: a new [1, s]
        tensor), which ``token_type_embeddings`` keeps: the same 8 s bytes."""
        if not policy.position_ids:
            return []
        s = shape[-2] if len(shape) >= 2 else sympy.Integer(1)
        return [Saved("position_ids", s, "int64", small=True, grads=("weight",))]

    def to_torch(self, ev: IntEval) -> torch.nn.Module:
        import torch

        class _AddPositions(torch.nn.Module):
            def __init__(self, n: int, d: int) -> None:
                super().__init__()
                self.weight = torch.nn.Parameter(torch.randn(n, d) * 0.02)

            def forward(self, x: torch.Tensor) -> torch.Tensor:
                return x + self.weight[: x.shape[-2]]

        return _AddPositions(ev(self.num_positions), ev(self.embedding_dim))
