"""PyTorch module for :class:`symmem.layers.mla.MLA` (extra ``validate``).

Follows transformers' ``DeepseekV3Attention`` module for module; RoPE is
omitted (it has no parameters and does not change shapes).
"""

from __future__ import annotations

import torch
from torch import nn


class TorchMLA(nn.Module):
    def __init__(
        self,
        *,
        d_model: int,
        heads: int,
        kv_lora_rank: int,
        qk_nope_head_dim: int,
        qk_rope_head_dim: int,
        v_head_dim: int,
        q_lora_rank: int | None,
        bias: bool,
    ) -> None:
        super().__init__()
        self.h, self.dn, self.dr, self.dv, self.dc = (
            heads,
            qk_nope_head_dim,
            qk_rope_head_dim,
            v_head_dim,
            kv_lora_rank,
        )
        qk = qk_nope_head_dim + qk_rope_head_dim
        if q_lora_rank is None:
            self.q_proj: nn.Module = nn.Linear(d_model, heads * qk, bias=False)
        else:
            self.q_proj = nn.Sequential(
                nn.Linear(d_model, q_lora_rank, bias=bias),  # q_a_proj
                nn.RMSNorm(q_lora_rank),  # q_a_layernorm
                nn.Linear(q_lora_rank, heads * qk, bias=False),  # q_b_proj
            )
        self.kv_a_proj_with_mqa = nn.Linear(d_model, kv_lora_rank + qk_rope_head_dim, bias=bias)
        self.kv_a_layernorm = nn.RMSNorm(kv_lora_rank)
        self.kv_b_proj = nn.Linear(
            kv_lora_rank, heads * (qk_nope_head_dim + v_head_dim), bias=False
        )
        self.o_proj = nn.Linear(heads * v_head_dim, d_model, bias=bias)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        b, s, _ = x.shape
        q = self.q_proj(x).view(b, s, self.h, self.dn + self.dr).transpose(1, 2)
        c_kv, k_rope = self.kv_a_proj_with_mqa(x).split([self.dc, self.dr], dim=-1)
        kv = (
            self.kv_b_proj(self.kv_a_layernorm(c_kv))
            .view(b, s, self.h, self.dn + self.dv)
            .transpose(1, 2)
        )
        k_nope, v = kv.split([self.dn, self.dv], dim=-1)
        k_rope = k_rope.view(b, 1, s, self.dr).expand(
            b, self.h, s, self.dr
        )  # one RoPE key for all heads
        k = torch.cat([k_nope, k_rope], dim=-1)
        out = nn.functional.scaled_dot_product_attention(q, k, v, is_causal=True)
        return self.o_proj(out.transpose(1, 2).reshape(b, s, self.h * self.dv))
