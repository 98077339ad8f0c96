"""mlp: parameter counts against transformers' feed-forward modules and
symmem's PyTorch module; the module runs."""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

import pytest
import sympy

from symmem.layers.mlp import MLP

if TYPE_CHECKING:
    from torch import nn

torch = pytest.importorskip("torch")
pytest.importorskip("transformers")

Int = sympy.Integer


def n_params(module: nn.Module) -> int:
    return sum(p.numel() for p in module.parameters())


def test_gpt2_mlp() -> None:
    from transformers import GPT2Config
    from transformers.models.gpt2.modeling_gpt2 import GPT2MLP

    with torch.device("meta"):
        module = GPT2MLP(4 * 192, GPT2Config(n_embd=192))
    assert int(MLP(Int(192), Int(4 * 192), act="gelu_new").params()) == n_params(module)


def test_bert_intermediate_and_output_dense() -> None:
    from transformers import BertConfig
    from transformers.models.bert.modeling_bert import BertIntermediate, BertOutput

    cfg = BertConfig(hidden_size=128, intermediate_size=512)
    with torch.device("meta"):
        inter, out = BertIntermediate(cfg), BertOutput(cfg)
    # BertOutput also holds the post-LN LayerNorm (2 * 128), a separate symmem layer.
    assert int(MLP(Int(128), Int(512)).params()) == n_params(inter) + n_params(out.dense)


def test_formula() -> None:
    # Vaswani et al. 2017, section 3.3: W1 (d x f), b1 (f), W2 (f x d), b2 (d).
    d, f = sympy.symbols("d f", positive=True, integer=True)
    assert sympy.expand(MLP(d, f).params() - (2 * d * f + f + d)) == 0
    assert sympy.expand(MLP(d, f, bias=False).params() - 2 * d * f) == 0


@pytest.mark.parametrize(
    "kw",
    [{}, {"bias": False, "act": "relu"}, {"act": "quick_gelu", "dropout": sympy.Rational(1, 10)}],
)
def test_torch_module(kw: dict[str, Any]) -> None:
    layer = MLP(Int(32), Int(80), **kw)
    module = layer.to_torch(int)
    assert n_params(module) == int(layer.params())
    assert module(torch.randn(3, 32)).shape == (3, 32)
