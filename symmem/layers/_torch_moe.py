"""PyTorch module for :class:`symmem.layers.moe.MoE` (extra ``validate``).

A plain (not fast) routed implementation: softmax router, top-k selection
(biased by the score-correction buffer when present, as DeepSeek-V3 does),
renormalised weights, a loop over experts.
"""

from __future__ import annotations

import torch
from torch import nn

from symmem.layers._torch_mlp import TorchMLP


class TorchMoE(nn.Module):
    def __init__(
        self,
        *,
        d_model: int,
        d_expert: int,
        n_experts: int,
        top_k: int,
        n_shared: int,
        d_shared: int,
        act: str,
        gated: bool,
        router_bias: bool,
        score_bias: bool,
        shared_gate: bool,
        expert_bias: bool = False,
    ) -> None:
        super().__init__()
        self.top_k = top_k
        self.gate = nn.Linear(d_model, n_experts, bias=router_bias)
        if score_bias:
            self.register_buffer("e_score_correction_bias", torch.zeros(n_experts))
        else:
            self.e_score_correction_bias = None
        self.experts = nn.ModuleList(
            TorchMLP(d_model, d_expert, act, expert_bias, 0.0, gated) for _ in range(n_experts)
        )
        self.shared_experts = nn.ModuleList(
            TorchMLP(d_model, d_shared, act, False, 0.0, gated) for _ in range(n_shared)
        )
        self.shared_expert_gate = nn.Linear(d_model, 1, bias=False) if shared_gate else None

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        shape = x.shape
        flat = x.reshape(-1, shape[-1])
        scores = torch.softmax(self.gate(flat), dim=-1)
        choice = (
            scores
            if self.e_score_correction_bias is None
            else scores + self.e_score_correction_bias
        )
        idx = choice.topk(self.top_k, dim=-1).indices  # (tokens, k)
        weights = scores.gather(-1, idx)
        weights = weights / weights.sum(-1, keepdim=True)
        out = torch.zeros_like(flat)
        for e, expert in enumerate(self.experts):
            token, slot = (idx == e).nonzero(as_tuple=True)
            if token.numel():
                out.index_add_(0, token, expert(flat[token]) * weights[token, slot, None])
        shared = sum((m(flat) for m in self.shared_experts), torch.zeros_like(flat))
        if self.shared_expert_gate is not None:
            shared = torch.sigmoid(self.shared_expert_gate(flat)) * shared
        return (out + shared).reshape(shape)
