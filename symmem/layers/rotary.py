"""Rotary position embeddings (Su et al. 2021, RoFormer): no parameters; keeps cos and sin.

A model with rotary positions computes one table of cos and one of sin per forward pass
(transformers' ``LlamaRotaryEmbedding.forward``: ``position_ids`` [1, s] -> cos, sin
[1, s, head_dim], cast to the activation dtype) and every attention layer multiplies its
q and k by them (``apply_rotary_pos_emb``: ``q * cos + rotate_half(q) * sin``).  Those
multiplies keep cos and sin for backward (the other factor needs no gradient); all
layers share the same two tables, so a model keeps them once: 2 s k elements.

``rotary(head_dim)`` stands for that: written once, where the tables are made (after the
token embedding), it keeps cos and sin and passes the stream on.  Built alone in PyTorch
(``to_torch``) it rotates the stream it is given head by head, which keeps exactly the
two tables.  The inverse frequencies (``inv_freq``, head_dim / 2 values) are a
non-persistent buffer of transformers' module: not a parameter, not in a checkpoint.
"""

from __future__ import annotations

from typing import TYPE_CHECKING, ClassVar

import sympy

from symmem.layers.base import (
    Evaluator,
    Example,
    IntEval,
    Layer,
    Saved,
    Shape,
    Size,
    register,
)
from symmem.policy import ActPolicy
from symmem.records import record

if TYPE_CHECKING:
    import torch


@register
@record
class Rotary(Layer):
    kind: ClassVar[str] = "rotary"
    aliases: ClassVar[tuple[str, ...]] = ("rope",)
    summary: ClassVar[str] = (
        "rotary position embeddings: the cos / sin tables every attention layer uses"
    )
    examples: ClassVar[tuple[Example, ...]] = (
        Example("rotary(4)", "[2, 8, 16]"),
        Example("linear(16, 16); rotary(8); linear(16, 16)", "[2, 8, 16]", "between layers"),
    )

    head_dim: Size

    def validate(self, ev: Evaluator) -> None:
        self.require_integer(ev, self.head_dim / 2, "head_dim / 2 (rotary pairs)")

    def activations(self, shape: Shape, policy: ActPolicy) -> list[Saved]:
        """cos and sin, [s, head_dim] each, in the activation dtype (once per model: the
        batch shares them, ``position_ids`` being [1, s])."""
        s = shape[-2] if len(shape) >= 2 else sympy.Integer(1)
        return [
            Saved("cos", s * self.head_dim, "act", small=True),
            Saved("sin", s * self.head_dim, "act", small=True),
        ]

    def to_torch(self, ev: IntEval) -> torch.nn.Module:
        import torch

        k = ev(self.head_dim)

        class _Rotary(torch.nn.Module):
            """RoPE applied to the stream, head by head (transformers' rotate_half form)."""

            def __init__(self) -> None:
                super().__init__()
                inv = 1.0 / (10000 ** (torch.arange(0, k, 2, dtype=torch.float32) / k))
                self.register_buffer("inv_freq", inv, persistent=False)

            def forward(self, x: torch.Tensor) -> torch.Tensor:
                s = x.shape[-2]
                pos = torch.arange(s, device=x.device, dtype=torch.float32)
                inv_freq: torch.Tensor = self.inv_freq  # type: ignore[assignment]
                freqs = pos[:, None] * inv_freq[None, :]
                emb = torch.cat((freqs, freqs), dim=-1)
                cos, sin = emb.cos().to(x.dtype), emb.sin().to(x.dtype)
                xs = x.reshape(*x.shape[:-1], -1, k).transpose(-2, -3)  # [..., heads, s, k]
                half = torch.cat((-xs[..., k // 2 :], xs[..., : k // 2]), dim=-1)
                out = xs * cos + half * sin
                return out.transpose(-2, -3).reshape(x.shape)

        return _Rotary()
