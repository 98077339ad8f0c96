"""Bags of embeddings reduced to one vector (``torch.nn.EmbeddingBag``).

Input: token ids ``[batch, bag]`` (each row one bag of ``bag`` ids, PyTorch's 2-D form
without offsets); output ``[batch, embedding_dim]``, the sum, mean or max of the bag's
rows (``mode``, PyTorch's default ``mean``).  Parameters: ``num_embeddings *
embedding_dim`` (``nn.EmbeddingBag`` docs), as ``nn.Embedding``.

Saved for backward (``_embedding_bag`` in derivatives.yaml reads ``indices, offsets,
offset2bag, bag_size, maximum_indices``), measured on CPU (torch 2.13), n = batch * bag ids
and B = batch bags, all int64:

* the ids (n; the input, viewed flat), the offsets ``F.embedding_bag`` makes (B);
* ``offset2bag``: empty in ``sum`` mode, ``n + 1`` in ``mean`` and ``max``
  (``_embedding_bag_cpu_impl_out`` sizes it ``n + 1``);
* ``bag_size`` (B) and ``max_indices``: B in ``sum`` and ``mean``, ``B * embedding_dim``
  in ``max`` (the argmax per output element).

The CUDA kernels size these buffers differently (``_embedding_bag_cuda``); they are
all O(ids) but the ``max`` indices, and this kind counts the CPU sizes.
"""

from __future__ import annotations

from typing import TYPE_CHECKING, ClassVar, Literal

import sympy

from symmem.errors import ShapeError
from symmem.layers.base import (
    Example,
    IntEval,
    Layer,
    ParamTensor,
    Saved,
    Shape,
    Size,
    fmt_shape,
    prod,
    register,
)
from symmem.policy import ActPolicy
from symmem.records import record

if TYPE_CHECKING:
    import torch


@register
@record
class EmbeddingBag(Layer):
    kind: ClassVar[str] = "embedding_bag"
    summary: ClassVar[str] = "bags of token ids [batch, bag] -> one vector each [batch, dim]"
    examples: ClassVar[tuple[Example, ...]] = (
        Example("embedding_bag(100, 16)", "[3, 4]"),
        Example("embedding_bag(100, 16, mode = sum)", "[3, 4]"),
        Example("embedding_bag(100, 16, mode = max)", "[3, 4]"),
    )

    num_embeddings: Size
    embedding_dim: Size
    mode: Literal["sum", "mean", "max"] = "mean"

    def tensors(self) -> list[ParamTensor]:
        return [ParamTensor("weight", (self.num_embeddings, self.embedding_dim), lookup=True)]

    def output_shape(self, shape: Shape) -> Shape:
        if len(shape) != 2:
            raise ShapeError(
                f"expects token ids [batch, bag] (rank 2), but its input has shape "
                f"{fmt_shape(shape)}"
            )
        return (shape[0], self.embedding_dim)

    def token_vocab(self) -> sympy.Expr:
        """Its input is token ids in [0, num_embeddings)."""
        return self.num_embeddings

    def activations(self, shape: Shape, policy: ActPolicy) -> list[Saved]:
        """The ids and the bag bookkeeping, int64 (module docstring)."""
        n, bags = prod(shape), shape[0]
        out = [
            Saved("indices", n, "int64", "input", small=True),
            Saved("offsets", bags, "int64", small=True),
            Saved("bag_size", bags, "int64", small=True),
        ]
        if self.mode != "sum":
            out.append(Saved("offset2bag", n + 1, "int64", small=True))
        if self.mode == "max":
            out.append(Saved("max_indices", bags * self.embedding_dim, "int64"))
        else:
            out.append(Saved("max_indices", bags, "int64", small=True))
        return out

    def to_torch(self, ev: IntEval) -> torch.nn.Module:
        import torch

        return torch.nn.EmbeddingBag(
            ev(self.num_embeddings), ev(self.embedding_dim), mode=self.mode
        )
