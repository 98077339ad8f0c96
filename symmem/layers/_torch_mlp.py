"""PyTorch modules for the mlp and gated_mlp kinds (extra ``validate``)."""

from __future__ import annotations

import math

import torch
from torch import nn


def act_fn(name: str) -> nn.Module:
    match name:
        case "gelu":
            return nn.GELU()
        case "gelu_tanh":
            return nn.GELU(approximate="tanh")
        case "gelu_new":
            return _NewGELU()
        case "relu":
            return nn.ReLU()
        case "silu":
            return nn.SiLU()
        case "tanh":
            return nn.Tanh()
        case "sigmoid":
            return nn.Sigmoid()
        case "quick_gelu":
            return _QuickGELU()
        case "relu2":
            return _ReLU2()
    raise ValueError(name)


class _NewGELU(nn.Module):
    """Hugging Face's ``NewGELUActivation`` (elementwise ops: keeps four tensors for backward)."""

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return (
            0.5
            * x
            * (1.0 + torch.tanh(math.sqrt(2.0 / math.pi) * (x + 0.044715 * torch.pow(x, 3.0))))
        )


class _QuickGELU(nn.Module):
    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return x * torch.sigmoid(1.702 * x)


class _ReLU2(nn.Module):
    """Hugging Face's ``ReLUSquaredActivation``."""

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return torch.square(nn.functional.relu(x))


class TorchMLP(nn.Module):
    def __init__(self, d: int, f: int, act: str, bias: bool, dropout: float, gated: bool) -> None:
        super().__init__()
        self.gated = gated
        if gated:
            self.gate_proj = nn.Linear(d, f, bias=bias)
            self.up_proj = nn.Linear(d, f, bias=bias)
            self.down_proj = nn.Linear(f, d, bias=bias)
        else:
            self.fc1 = nn.Linear(d, f, bias=bias)
            self.fc2 = nn.Linear(f, d, bias=bias)
        self.act = act_fn(act)
        self.drop = nn.Dropout(dropout) if dropout else None

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        if self.gated:
            return self.down_proj(self.act(self.gate_proj(x)) * self.up_proj(x))
        y = self.fc2(self.act(self.fc1(x)))
        return self.drop(y) if self.drop is not None else y
