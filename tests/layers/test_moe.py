"""moe: parameter, active and buffer counts against transformers' MoE blocks
(Mixtral, DeepSeek-V2/V3, Qwen2-MoE; configs from literal values, meta device)
and symmem's PyTorch module, whose routing is checked on a tiny input."""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

import pytest
import sympy

from symmem.layers._torch_moe import TorchMoE
from symmem.layers.moe import MoE

if TYPE_CHECKING:
    from torch import nn

torch = pytest.importorskip("torch")
pytest.importorskip("transformers")

Int = sympy.Integer


def n_params(module: nn.Module) -> int:
    return sum(p.numel() for p in module.parameters())


def moe(*args: int, **kw: object) -> MoE:
    conv: dict[str, Any] = {
        k: (Int(v) if isinstance(v, int) and not isinstance(v, bool) else v) for k, v in kw.items()
    }
    return MoE(*(Int(a) for a in args), **conv)


def active(layer: MoE) -> int:
    return int(sum(t.active_numel for t in layer.tensors() if not t.buffer))


def buffers(layer: MoE) -> int:
    return int(sum(t.numel for t in layer.tensors() if t.buffer))


def test_mixtral() -> None:
    # Mixtral-8x7B config.json: hidden 4096, intermediate 14336, 8 local experts, 2 per token.
    from transformers import MixtralConfig
    from transformers.models.mixtral.modeling_mixtral import MixtralSparseMoeBlock

    with torch.device("meta"):
        block = MixtralSparseMoeBlock(MixtralConfig(hidden_size=4096, intermediate_size=14336))
    layer = moe(4096, 14336, 8, 2)
    assert int(layer.params()) == n_params(block)
    # active: the router plus 2 of the 8 experts (experts' tensors hold all 8 stacked)
    per_expert = n_params(block.experts) // 8
    assert active(layer) == n_params(block.gate) + 2 * per_expert


def test_deepseek_v3() -> None:
    # DeepSeek-V3 config.json: hidden 7168, moe_intermediate 2048, 256 routed + 1 shared, 8 per
    # token.
    from transformers import DeepseekV3Config
    from transformers.models.deepseek_v3.modeling_deepseek_v3 import DeepseekV3MoE

    with torch.device("meta"):
        block = DeepseekV3MoE(DeepseekV3Config())
    layer = moe(7168, 2048, 256, 8, n_shared=1, score_bias=True)
    assert int(layer.params()) == n_params(block)
    assert (
        buffers(layer) == sum(b.numel() for b in block.buffers()) == 256
    )  # e_score_correction_bias
    per_expert = n_params(block.experts) // 256
    assert active(layer) == n_params(block.gate) + n_params(block.shared_experts) + 8 * per_expert


def test_deepseek_v2_lite_two_shared() -> None:
    # DeepSeek-V2-Lite config.json: hidden 2048, moe_intermediate 1408, 64 routed, 2 shared, 6 per
    # token.
    # transformers builds the shared experts as one MLP of hidden 2 * 1408: same count.
    from transformers import DeepseekV2Config
    from transformers.models.deepseek_v2.modeling_deepseek_v2 import DeepseekV2Moe

    cfg = DeepseekV2Config(
        hidden_size=2048,
        moe_intermediate_size=1408,
        n_routed_experts=64,
        n_shared_experts=2,
        num_experts_per_tok=6,
    )
    with torch.device("meta"):
        block = DeepseekV2Moe(cfg)
    assert int(moe(2048, 1408, 64, 6, n_shared=2).params()) == n_params(block)


def test_qwen2_moe_shared_gate() -> None:
    # Qwen1.5-MoE-A2.7B config.json: hidden 2048, moe_intermediate 1408, 60 experts, 4 per token,
    # shared_expert_intermediate_size 5632, and a sigmoid shared_expert_gate (d -> 1, no bias).
    from transformers import Qwen2MoeConfig
    from transformers.models.qwen2_moe.modeling_qwen2_moe import Qwen2MoeSparseMoeBlock

    cfg = Qwen2MoeConfig(
        hidden_size=2048,
        moe_intermediate_size=1408,
        num_experts=60,
        num_experts_per_tok=4,
        shared_expert_intermediate_size=5632,
    )
    with torch.device("meta"):
        block = Qwen2MoeSparseMoeBlock(cfg)
    layer = moe(2048, 1408, 60, 4, n_shared=1, d_shared=5632, shared_gate=True)
    assert int(layer.params()) == n_params(block)


def test_formula() -> None:
    # Hand derivation: router E d; E gated experts 3 d f; S shared 3 d f_s; active uses k of E.
    d, f, e, k, s, fs = sympy.symbols("d f E k S f_s", positive=True, integer=True)
    layer = MoE(d, f, e, k, n_shared=s, d_shared=fs, router_bias=True, shared_gate=True)
    assert sympy.expand(layer.params() - (e * d + e + 3 * e * d * f + 3 * s * d * fs + d)) == 0
    act = sum(t.active_numel for t in layer.tensors())
    assert sympy.expand(act - (e * d + e + 3 * k * d * f + 3 * s * d * fs + d)) == 0
    ungated = MoE(d, f, e, k, gated=False)
    assert sympy.expand(ungated.params() - (e * d + 2 * e * d * f)) == 0


@pytest.mark.parametrize(
    "kw",
    [
        {},
        {
            "n_shared": 2,
            "d_shared": 12,
            "score_bias": True,
            "shared_gate": True,
            "router_bias": True,
        },
        {"gated": False, "act": "gelu"},
    ],
)
def test_torch_module_counts(kw: dict[str, object]) -> None:
    layer = moe(16, 24, 6, 2, **kw)
    module = layer.to_torch(int)
    assert n_params(module) == int(layer.params())
    assert sum(b.numel() for b in module.buffers()) == buffers(layer)
    x = torch.randn(2, 3, 16)
    assert module(x).shape == x.shape


def test_torch_module_routes_top1() -> None:
    # top_k = 1: each token's output is exactly its argmax expert's output
    # (weight renormalised to 1).
    torch.manual_seed(0)
    module = moe(8, 16, 4, 1).to_torch(int)
    assert isinstance(module, TorchMoE)
    x = torch.randn(10, 8)
    choice = module.gate(x).argmax(-1)
    assert len(set(choice.tolist())) > 1  # the tiny input really uses several experts
    expected = torch.stack([module.experts[int(e)](t) for t, e in zip(x, choice, strict=True)])
    torch.testing.assert_close(module(x), expected)


def test_top_k_larger_than_experts_is_an_error() -> None:
    import symmem
    from symmem.errors import SymmemError

    with pytest.raises(SymmemError, match="top_k"):
        symmem.parse("model m(input = [batch, seq_len, 8]) {\n  moe(8, 16, 4, 5)\n}")
