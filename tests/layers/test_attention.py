"""attention: parameter counts against transformers' own attention modules
(MHA, GQA, MQA, biases, qk-norm per head and full, head_dim != d / heads) and
against symmem's PyTorch module; the PyTorch module runs."""

from __future__ import annotations

from collections.abc import Callable
from typing import TYPE_CHECKING, Any

import pytest
import sympy

from symmem.layers.attention import Attention

if TYPE_CHECKING:
    from torch import nn

torch = pytest.importorskip("torch")
transformers = pytest.importorskip("transformers")

Int = sympy.Integer


def attn(d: int, h: int, **kw: object) -> Attention:
    conv: dict[str, Any] = {
        k: (Int(v) if isinstance(v, int) and not isinstance(v, bool) else v) for k, v in kw.items()
    }
    return Attention(Int(d), Int(h), **conv)


def n_params(module: nn.Module) -> int:
    return sum(p.numel() for p in module.parameters())


def ours(layer: Attention) -> int:
    return int(layer.params())


# (symmem layer, transformers module factory)
def _llama():  # GQA, no biases: LlamaAttention, Llama-3 style 32 heads / 8 kv heads (scaled down)
    from transformers import LlamaConfig
    from transformers.models.llama.modeling_llama import LlamaAttention

    cfg = LlamaConfig(hidden_size=256, num_attention_heads=8, num_key_value_heads=2)
    return LlamaAttention(cfg, layer_idx=0), attn(
        256, 8, kv_heads=2, qkv_bias=False, out_bias=False
    )


def _qwen2():  # q/k/v biases, no output bias
    from transformers import Qwen2Config
    from transformers.models.qwen2.modeling_qwen2 import Qwen2Attention

    cfg = Qwen2Config(hidden_size=256, num_attention_heads=8, num_key_value_heads=4)
    return Qwen2Attention(cfg, layer_idx=0), attn(256, 8, kv_heads=4, qkv_bias=True, out_bias=False)


def _qwen3():  # per-head qk RMSNorm and head_dim (64) != hidden / heads (256 / 8 = 32)
    from transformers import Qwen3Config
    from transformers.models.qwen3.modeling_qwen3 import Qwen3Attention

    cfg = Qwen3Config(hidden_size=256, num_attention_heads=8, num_key_value_heads=2, head_dim=64)
    return Qwen3Attention(cfg, layer_idx=0), attn(
        256, 8, kv_heads=2, head_dim=64, qkv_bias=False, out_bias=False, qk_norm=True
    )


def _olmo2():  # qk RMSNorm over the whole projection: (h + g) * k parameters
    from transformers import Olmo2Config
    from transformers.models.olmo2.modeling_olmo2 import Olmo2Attention

    cfg = Olmo2Config(hidden_size=256, num_attention_heads=8, num_key_value_heads=4)
    return Olmo2Attention(cfg, layer_idx=0), attn(
        256, 8, kv_heads=4, qkv_bias=False, out_bias=False, qk_norm=True, qk_norm_scope="full"
    )


def _gpt2():  # MHA with all biases (fused c_attn: same count)
    from transformers import GPT2Config
    from transformers.models.gpt2.modeling_gpt2 import GPT2Attention

    cfg = GPT2Config(n_embd=256, n_head=8)
    return GPT2Attention(cfg, layer_idx=0), attn(256, 8)


def _bigcode():  # MQA (Shazeer 2019) with biases: one k/v head
    from transformers import GPTBigCodeConfig
    from transformers.models.gpt_bigcode.modeling_gpt_bigcode import GPTBigCodeAttention

    cfg = GPTBigCodeConfig(n_embd=256, n_head=8, multi_query=True)
    return GPTBigCodeAttention(cfg, layer_idx=0), attn(256, 8, kv_heads=1)


# BertSelfAttention + BertSelfOutput.dense: MHA with biases (its LayerNorm is a separate layer)
def _bert():
    from transformers import BertConfig
    from transformers.models.bert.modeling_bert import BertAttention

    cfg = BertConfig(hidden_size=256, num_attention_heads=8)
    m = BertAttention(cfg)
    return torch.nn.ModuleList([m.self, m.output.dense]), attn(256, 8, causal=False)


@pytest.mark.parametrize("factory", [_llama, _qwen2, _qwen3, _olmo2, _gpt2, _bigcode, _bert])
def test_matches_transformers(factory: Callable[[], tuple[nn.Module, Attention]]) -> None:
    with torch.device("meta"):
        module, layer = factory()
    assert ours(layer) == n_params(module)


@pytest.mark.parametrize(
    "kw",
    [
        {},
        {"kv_heads": 2, "qkv_bias": False, "out_bias": False},
        {"kv_heads": 1},
        {"head_dim": 24, "qk_norm": True},
        {"kv_heads": 2, "qk_norm": True, "qk_norm_scope": "full", "impl": "eager"},
    ],
)
def test_torch_module_count_and_forward(kw: dict[str, object]) -> None:
    layer = attn(64, 4, **kw)
    module = layer.to_torch(int)
    assert n_params(module) == ours(layer)
    x = torch.randn(2, 5, 64)
    assert module(x).shape == x.shape


def test_mha_formula() -> None:
    # Vaswani et al. 2017: four d x d projections, plus 4d biases.
    d = sympy.Symbol("d", positive=True, integer=True)
    layer = Attention(d, Int(8))
    assert sympy.expand(layer.params() - (4 * d**2 + 4 * d)) == 0


def test_gqa_formula() -> None:
    # GQA (Ainslie et al. 2023): k and v have g heads of size k = d / h: 2 d^2 + 2 d^2 g / h, no
    # biases.
    d, h, g = sympy.symbols("d h g", positive=True, integer=True)
    layer = Attention(d, h, kv_heads=g, qkv_bias=False, out_bias=False)
    assert sympy.simplify(layer.params() - (2 * d**2 + 2 * d**2 * g / h)) == 0
