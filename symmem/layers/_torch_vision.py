"""PyTorch modules for the vision / front-end kinds (transpose, patchify, cls_token)."""

from __future__ import annotations

import torch
from torch import nn


class TorchTranspose(nn.Module):
    def __init__(self, dim0: int, dim1: int) -> None:
        super().__init__()
        self.dim0, self.dim1 = dim0, dim1

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return x.transpose(self.dim0, self.dim1)


class TorchPatchify(nn.Module):
    """transformers' ``ViTPatchEmbeddings``: ``projection(x).flatten(2).transpose(1, 2)``."""

    def __init__(self, in_channels: int, dim: int, patch: int, bias: bool) -> None:
        super().__init__()
        self.projection = nn.Conv2d(in_channels, dim, patch, stride=patch, bias=bias)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.projection(x).flatten(2).transpose(1, 2)


class TorchClsToken(nn.Module):
    """transformers' ``ViTEmbeddings``: ``cat((cls_token.expand(b, -1, -1), x), dim=1)``."""

    def __init__(self, dim: int, count: int) -> None:
        super().__init__()
        self.cls_token = nn.Parameter(torch.randn(1, count, dim))

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        tok = self.cls_token.to(x.dtype).expand(x.shape[0], -1, -1)
        return torch.cat((tok, x), dim=1)


class TorchMergeTokens(nn.Module):
    """Qwen2-VL's ``PatchMerger`` view: ``x.view(-1, k * d)`` per batch row."""

    def __init__(self, k: int) -> None:
        super().__init__()
        self.k = k

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        *lead, s, d = x.shape
        return x.reshape(*lead, s // self.k, d * self.k)
