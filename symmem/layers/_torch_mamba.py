"""PyTorch module for :class:`symmem.layers.mamba.Mamba`: the reference (no CUDA kernel)
path of the Mamba mixer, step for step as transformers 5.x runs it on the CPU (causal
depthwise conv1d, softplus time steps, a sequential selective scan), written from the
paper's Algorithm 2 (Gu and Dao 2023)."""

from __future__ import annotations

import torch
from torch import nn
from torch.nn import functional as F


class TorchMamba(nn.Module):
    def __init__(
        self,
        d: int,
        inner: int,
        state: int,
        conv: int,
        rank: int,
        bias: bool,
        conv_bias: bool,
        bc_norm: str = "none",
    ) -> None:
        super().__init__()
        self.bc_norm = bc_norm
        self.inner, self.state, self.rank = inner, state, rank
        self.in_proj = nn.Linear(d, 2 * inner, bias=bias)
        self.conv1d = nn.Conv1d(inner, inner, conv, groups=inner, padding=conv - 1, bias=conv_bias)
        self.x_proj = nn.Linear(inner, rank + 2 * state, bias=False)
        self.dt_proj = nn.Linear(rank, inner, bias=True)
        self.A_log = nn.Parameter(torch.zeros(inner, state))
        self.D = nn.Parameter(torch.ones(inner))
        self.out_proj = nn.Linear(inner, d, bias=bias)
        if bc_norm == "weighted":  # Jamba's dt_layernorm, b_layernorm, c_layernorm
            self.dt_norm = nn.Parameter(torch.ones(rank))
            self.b_norm = nn.Parameter(torch.ones(state))
            self.c_norm = nn.Parameter(torch.ones(state))

    def _norm(self, x: torch.Tensor, weight: torch.Tensor | None) -> torch.Tensor:
        """RMSNorm in fp32, cast back; Falcon-Mamba's has no weight, Jamba's has one."""
        h = x.float()
        h = h * torch.rsqrt(h.pow(2).mean(-1, keepdim=True) + 1e-6)
        return h.to(x.dtype) if weight is None else weight * h.to(x.dtype)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        b, s, _ = x.shape
        dtype = x.dtype
        projected = self.in_proj(x).transpose(1, 2)  # [b, 2I, s]
        A = -torch.exp(self.A_log.float())  # [I, N]
        h, gate = projected.chunk(2, dim=1)
        w = self.conv1d.weight  # depthwise, causal: keep the first s outputs
        h = F.conv1d(h, w, self.conv1d.bias, padding=w.shape[-1] - 1, groups=self.inner)
        h = F.silu(h[:, :, :s])
        params = self.x_proj(h.transpose(1, 2))
        dt, B, C = torch.split(params, [self.rank, self.state, self.state], dim=-1)
        if self.bc_norm != "none":
            weighted = self.bc_norm == "weighted"
            dt = self._norm(dt, self.dt_norm if weighted else None)
            B = self._norm(B, self.b_norm if weighted else None)
            C = self._norm(C, self.c_norm if weighted else None)
        dt = self.dt_proj.weight @ dt.transpose(1, 2)  # [b, I, s]
        dt = F.softplus(dt + self.dt_proj.bias.float().to(dt.dtype)[..., None])
        u = h  # [b, I, s]
        dA = torch.exp(A[None, :, None, :] * dt[:, :, :, None])  # [b, I, s, N]
        dB = dt[:, :, :, None] * B[:, None, :, :].float()
        dBu = dB * u[:, :, :, None].float()
        state = torch.zeros(b, self.inner, self.state, dtype=dtype, device=x.device)
        outs = []
        for i in range(s):
            state = dA[:, :, i] * state + dBu[:, :, i]
            outs.append(torch.matmul(state.to(dtype), C[:, i, :].unsqueeze(-1))[:, :, 0])
        y = torch.stack(outs, dim=-1)
        y = y + u * self.D.float()[None, :, None]
        y = y * F.silu(gate)
        return self.out_proj(y.to(dtype).transpose(1, 2))
