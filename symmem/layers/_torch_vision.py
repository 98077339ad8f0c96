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
    """transformers' ``ViTEmbeddings``: ``cat((cls_token.expand(b, -1, -1), x), dim=1)``;
    ``last``: ``Llama4VisionModel``'s ``cat([x, class_embedding], dim=1)``."""

    def __init__(self, dim: int, count: int, last: bool = False) -> None:
        super().__init__()
        self.cls_token = nn.Parameter(torch.randn(1, count, dim))
        self.last = last

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        tok = self.cls_token.to(x.dtype).expand(x.shape[0], -1, -1)
        return torch.cat((x, tok) if self.last else (tok, x), dim=1)


class TorchDropTokens(nn.Module):
    """A slice of the token axis (a view): ``x[:, count:]`` or ``x[:, :-count]``."""

    def __init__(self, count: int, last: bool) -> None:
        super().__init__()
        self.count, self.last = count, last

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        n = x.shape[-2]
        return x[..., : n - self.count, :] if self.last else x[..., self.count :, :]


class TorchMergeTokens(nn.Module):
    """Qwen2-VL's ``PatchMerger`` view: ``x.view(-1, k * d)`` per batch row."""

    def __init__(self, k: int) -> None:
        super().__init__()
        self.k = k

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        *lead, s, d = x.shape
        return x.reshape(*lead, s // self.k, d * self.k)


class TorchMergeImage(nn.Module):
    """``x.masked_scatter(mask, memory)`` with the first ``n`` of the ``b s`` positions the
    image tokens (transformers' vision-language models: ``inputs_embeds.masked_scatter(
    special_image_mask, image_features)``).  On its own (the catalogue tests) the memory is
    made in ``forward`` as a tensor that requires grad, as a vision tower's output does."""

    def __init__(self, memory: tuple[int, ...], drop: int = 0) -> None:
        super().__init__()
        self.memory_shape = memory
        self.drop = drop

    def forward(self, x: torch.Tensor, memory: torch.Tensor | None = None) -> torch.Tensor:
        if memory is None:
            memory = torch.randn(self.memory_shape, dtype=x.dtype, device=x.device)
            memory.requires_grad_(True)
        memory = memory[..., self.drop :, :]
        n = memory.numel() // memory.shape[-1]
        flat = torch.zeros(x.shape[:-1].numel(), dtype=torch.bool, device=x.device)
        flat[:n] = True
        mask = flat.view(x.shape[:-1]).unsqueeze(-1).expand_as(x)
        return x.masked_scatter(mask, memory.to(x.dtype))
