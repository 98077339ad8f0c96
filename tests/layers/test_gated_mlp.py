"""gated_mlp (SwiGLU / GeGLU, Shazeer 2020): counts against transformers'
LlamaMLP / GemmaMLP and symmem's PyTorch module."""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

import pytest
import sympy

from symmem.layers.gated_mlp import GatedMLP

if TYPE_CHECKING:
    from torch import nn

torch = pytest.importorskip("torch")
pytest.importorskip("transformers")

Int = sympy.Integer


def n_params(module: nn.Module) -> int:
    return sum(p.numel() for p in module.parameters())


def test_llama2_7b_mlp() -> None:
    # Llama-2-7B (meta-llama/Llama-2-7b-hf config.json): hidden 4096, intermediate 11008.
    from transformers import LlamaConfig
    from transformers.models.llama.modeling_llama import LlamaMLP

    with torch.device("meta"):
        module = LlamaMLP(LlamaConfig(hidden_size=4096, intermediate_size=11008))
    assert n_params(module) == 135_266_304  # 3 * 4096 * 11008
    assert int(GatedMLP(Int(4096), Int(11008)).params()) == n_params(module)


def test_llama_mlp_bias() -> None:
    # LlamaConfig(mlp_bias=True) puts biases on gate, up and down: 2f + d more.
    from transformers import LlamaConfig
    from transformers.models.llama.modeling_llama import LlamaMLP

    with torch.device("meta"):
        module = LlamaMLP(LlamaConfig(hidden_size=64, intermediate_size=176, mlp_bias=True))
    assert int(GatedMLP(Int(64), Int(176), bias=True).params()) == n_params(module)


def test_gemma_geglu() -> None:
    from transformers import GemmaConfig
    from transformers.models.gemma.modeling_gemma import GemmaMLP

    with torch.device("meta"):
        module = GemmaMLP(GemmaConfig(hidden_size=96, intermediate_size=384))
    assert int(GatedMLP(Int(96), Int(384), act="gelu_tanh").params()) == n_params(module)


@pytest.mark.parametrize("kw", [{}, {"bias": True, "act": "gelu"}])
def test_torch_module(kw: dict[str, Any]) -> None:
    layer = GatedMLP(Int(32), Int(72), **kw)
    module = layer.to_torch(int)
    assert n_params(module) == int(layer.params())
    assert module(torch.randn(2, 4, 32)).shape == (2, 4, 32)
