"""PyTorch module for :class:`symmem.layers.attention.Attention` (extra ``validate``)."""

from __future__ import annotations

import math

import torch
from torch import nn


class TorchAttention(nn.Module):
    """Self-attention with separate q/k/v/o projections, eager or sdpa."""

    def __init__(
        self,
        *,
        d_model: int,
        heads: int,
        kv_heads: int,
        head_dim: int,
        qkv_bias: bool,
        out_bias: bool,
        qk_norm: bool,
        causal: bool,
        dropout: float,
        impl: str,
        qk_norm_scope: str = "head",
        softmax_fp32: bool = False,
        sinks: bool = False,
        k_bias: bool | None = None,
    ) -> None:
        super().__init__()
        self.heads, self.kv_heads, self.head_dim = heads, kv_heads, head_dim
        self.causal, self.dropout, self.impl = causal, dropout, impl
        self.softmax_fp32 = softmax_fp32
        self.q_proj = nn.Linear(d_model, heads * head_dim, bias=qkv_bias)
        self.k_proj = nn.Linear(
            d_model, kv_heads * head_dim, bias=qkv_bias if k_bias is None else k_bias
        )
        self.v_proj = nn.Linear(d_model, kv_heads * head_dim, bias=qkv_bias)
        self.o_proj = nn.Linear(heads * head_dim, d_model, bias=out_bias)
        self.full_norm = qk_norm_scope == "full"
        self.q_norm = (
            nn.RMSNorm(heads * head_dim if self.full_norm else head_dim) if qk_norm else None
        )
        self.k_norm = (
            nn.RMSNorm(kv_heads * head_dim if self.full_norm else head_dim) if qk_norm else None
        )
        self.sinks = nn.Parameter(torch.zeros(heads)) if sinks else None

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        b, s, _ = x.shape
        q, k = self.q_proj(x), self.k_proj(x)
        if self.full_norm and self.q_norm is not None and self.k_norm is not None:
            q, k = self.q_norm(q), self.k_norm(k)  # OLMo-2: over the whole projection
        q = q.view(b, s, self.heads, self.head_dim)
        k = k.view(b, s, self.kv_heads, self.head_dim)
        v = self.v_proj(x).view(b, s, self.kv_heads, self.head_dim)
        if not self.full_norm and self.q_norm is not None and self.k_norm is not None:
            q, k = self.q_norm(q), self.k_norm(k)  # Qwen3: per head
        q, k, v = q.transpose(1, 2), k.transpose(1, 2), v.transpose(1, 2)
        p = self.dropout if self.training else 0.0
        if self.impl == "eager":
            rep = self.heads // self.kv_heads
            if rep > 1:
                k = k.repeat_interleave(rep, dim=1)
                v = v.repeat_interleave(rep, dim=1)
            scores = q @ k.transpose(-1, -2) / math.sqrt(self.head_dim)
            if self.causal:
                mask = torch.ones(s, s, dtype=torch.bool, device=x.device).triu(1)
                scores = scores.masked_fill(mask, float("-inf"))
            if self.sinks is not None:  # transformers' gpt-oss eager_attention_forward
                sink = self.sinks.reshape(1, -1, 1, 1).expand(b, -1, s, -1)
                combined = torch.cat([scores, sink], dim=-1)
                combined = combined - combined.max(dim=-1, keepdim=True).values
                probs = torch.softmax(combined, dim=-1)[..., :-1]
            elif self.softmax_fp32:  # transformers' Llama: softmax in fp32, cast back
                probs = torch.softmax(scores, dim=-1, dtype=torch.float32).to(scores.dtype)
            else:
                probs = torch.softmax(scores, dim=-1)
            probs = nn.functional.dropout(probs, p, self.training)
            out = probs @ v
        else:
            out = nn.functional.scaled_dot_product_attention(
                q, k, v, dropout_p=p, is_causal=self.causal, enable_gqa=self.kv_heads != self.heads
            )
        return self.o_proj(out.transpose(1, 2).reshape(b, s, self.heads * self.head_dim))


class TorchCrossAttention(nn.Module):
    """Cross-attention whose keys and values read a memory of a fixed shape.  On its own (the
    catalogue tests) the memory is made in ``forward`` as a tensor that requires grad, as an
    encoder's output does; ``forward(x, memory)`` reads a given one."""

    def __init__(
        self,
        *,
        d_model: int,
        memory: tuple[int, ...],
        heads: int,
        kv_heads: int,
        head_dim: int,
        qkv_bias: bool,
        k_bias: bool,
        out_bias: bool,
        dropout: float,
        impl: str,
        softmax_fp32: bool = False,
    ) -> None:
        super().__init__()
        self.memory_shape = memory
        self.heads, self.kv_heads, self.head_dim = heads, kv_heads, head_dim
        self.dropout, self.impl, self.softmax_fp32 = dropout, impl, softmax_fp32
        self.q_proj = nn.Linear(d_model, heads * head_dim, bias=qkv_bias)
        self.k_proj = nn.Linear(memory[-1], kv_heads * head_dim, bias=k_bias)
        self.v_proj = nn.Linear(memory[-1], kv_heads * head_dim, bias=qkv_bias)
        self.o_proj = nn.Linear(heads * head_dim, d_model, bias=out_bias)

    def forward(self, x: torch.Tensor, memory: torch.Tensor | None = None) -> torch.Tensor:
        if memory is None:
            memory = torch.randn(self.memory_shape, dtype=x.dtype, device=x.device)
            memory.requires_grad_(True)
        b, s, _ = x.shape
        m = memory.shape[-2]
        q = self.q_proj(x).view(b, s, self.heads, self.head_dim).transpose(1, 2)
        k = self.k_proj(memory).view(b, m, self.kv_heads, self.head_dim).transpose(1, 2)
        v = self.v_proj(memory).view(b, m, self.kv_heads, self.head_dim).transpose(1, 2)
        p = self.dropout if self.training else 0.0
        if self.impl == "eager":
            rep = self.heads // self.kv_heads
            if rep > 1:
                k = k.repeat_interleave(rep, dim=1)
                v = v.repeat_interleave(rep, dim=1)
            scores = q @ k.transpose(-1, -2) / math.sqrt(self.head_dim)
            if self.softmax_fp32:
                probs = torch.softmax(scores, dim=-1, dtype=torch.float32).to(scores.dtype)
            else:
                probs = torch.softmax(scores, dim=-1)
            probs = nn.functional.dropout(probs, p, self.training)
            out = probs @ v
        else:
            out = nn.functional.scaled_dot_product_attention(
                q, k, v, dropout_p=p, enable_gqa=self.kv_heads != self.heads
            )
        return self.o_proj(out.transpose(1, 2).reshape(b, s, self.heads * self.head_dim))
