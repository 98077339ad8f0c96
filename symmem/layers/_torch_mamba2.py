"""PyTorch module for :class:`symmem.layers.mamba2.Mamba2`: the Mamba-2 mixer (Dao and Gu
2024, "Transformers are SSMs", arXiv:2405.21060, Section 7 and Listing 1) with the same
parameters as transformers' ``Mamba2Mixer``, the state-space recurrence run as a sequential
scan over the tokens (the SSD chunked form computes the same outputs)."""

from __future__ import annotations

import torch
from torch import nn
from torch.nn import functional as F


class TorchMamba2(nn.Module):
    def __init__(
        self,
        d: int,
        inner: int,
        state: int,
        heads: int,
        groups: int,
        conv: int,
        bias: bool,
        conv_bias: bool,
    ) -> None:
        super().__init__()
        self.inner, self.state, self.heads, self.groups = inner, state, heads, groups
        self.conv_dim = inner + 2 * groups * state
        self.in_proj = nn.Linear(d, inner + self.conv_dim + heads, bias=bias)
        self.conv1d = nn.Conv1d(
            self.conv_dim,
            self.conv_dim,
            conv,
            groups=self.conv_dim,
            padding=conv - 1,
            bias=conv_bias,
        )
        self.dt_bias = nn.Parameter(torch.ones(heads))
        self.A_log = nn.Parameter(torch.zeros(heads))
        self.D = nn.Parameter(torch.ones(heads))
        self.norm_weight = nn.Parameter(torch.ones(inner))
        self.out_proj = nn.Linear(inner, d, bias=bias)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        b, s, _ = x.shape
        dtype = x.dtype
        i, n, h, g = self.inner, self.state, self.heads, self.groups
        p = i // h
        gate, xbc, dt = torch.split(self.in_proj(x), [i, self.conv_dim, h], dim=-1)
        xbc = F.silu(self.conv1d(xbc.transpose(1, 2))[..., :s].transpose(1, 2))
        u, B, C = torch.split(xbc, [i, g * n, g * n], dim=-1)
        dt = F.softplus(dt + self.dt_bias)  # [b, s, h]
        A = -torch.exp(self.A_log.float())  # [h]
        u = u.reshape(b, s, h, p)
        B = B.reshape(b, s, g, n).repeat_interleave(h // g, dim=2)  # [b, s, h, n]
        C = C.reshape(b, s, g, n).repeat_interleave(h // g, dim=2)
        dA = torch.exp(dt * A)  # [b, s, h], fp32
        dBu = (dt[..., None] * u)[..., None] * B[..., None, :]  # [b, s, h, p, n]
        state = torch.zeros(b, h, p, n, dtype=dA.dtype, device=x.device)
        ys = []
        for t in range(s):
            state = dA[:, t, :, None, None] * state + dBu[:, t]
            ys.append((state.to(dtype) * C[:, t, :, None, :]).sum(-1))  # [b, h, p]
        y = torch.stack(ys, dim=1) + u * self.D[:, None].to(dtype)
        y = y.reshape(b, s, i)
        # the gated RMSNorm (MambaRMSNormGated), normalised per group of i / g channels
        z = y.float() * F.silu(gate.float())
        z = z.reshape(b, s, g, i // g)
        z = z * torch.rsqrt(z.pow(2).mean(-1, keepdim=True) + 1e-5)
        z = self.norm_weight * z.reshape(b, s, i).to(dtype)
        return self.out_proj(z)
