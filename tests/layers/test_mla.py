"""mla: parameter counts against transformers' DeepseekV3Attention and
DeepseekV2Attention (configs built from literal values, meta device) and
symmem's PyTorch module, which runs."""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

import pytest
import sympy

from symmem.layers.mla import MLA

if TYPE_CHECKING:
    from torch import nn

torch = pytest.importorskip("torch")
pytest.importorskip("transformers")

Int = sympy.Integer


def n_params(module: nn.Module) -> int:
    return sum(p.numel() for p in module.parameters())


# DeepSeek-V3 config.json (deepseek-ai/DeepSeek-V3): hidden 7168, 128 heads,
# q_lora_rank 1536, kv_lora_rank 512, qk_nope 128, qk_rope 64, v_head 128.
V3: dict[str, Any] = {
    "hidden_size": 7168,
    "num_attention_heads": 128,
    "q_lora_rank": 1536,
    "kv_lora_rank": 512,
    "qk_nope_head_dim": 128,
    "qk_rope_head_dim": 64,
    "v_head_dim": 128,
}
# DeepSeek-V2-Lite config.json: hidden 2048, 16 heads, no q_lora_rank, kv_lora_rank 512.
V2_LITE: dict[str, Any] = {
    "hidden_size": 2048,
    "num_attention_heads": 16,
    "q_lora_rank": None,
    "kv_lora_rank": 512,
    "qk_nope_head_dim": 128,
    "qk_rope_head_dim": 64,
    "v_head_dim": 128,
}


def ours(cfg: dict[str, Any], bias: bool) -> MLA:
    q = cfg["q_lora_rank"]
    return MLA(
        Int(cfg["hidden_size"]),
        Int(cfg["num_attention_heads"]),
        Int(cfg["kv_lora_rank"]),
        Int(cfg["qk_nope_head_dim"]),
        Int(cfg["qk_rope_head_dim"]),
        Int(cfg["v_head_dim"]),
        None if q is None else Int(q),
        bias,
    )


def _transformers_attention(version: str, cfg: dict[str, Any], bias: bool) -> nn.Module:
    if version == "v3":
        from transformers import DeepseekV3Config
        from transformers.models.deepseek_v3.modeling_deepseek_v3 import DeepseekV3Attention

        return DeepseekV3Attention(DeepseekV3Config(**cfg, attention_bias=bias), layer_idx=0)
    from transformers import DeepseekV2Config
    from transformers.models.deepseek_v2.modeling_deepseek_v2 import DeepseekV2Attention

    return DeepseekV2Attention(DeepseekV2Config(**cfg, attention_bias=bias), layer_idx=0)


@pytest.mark.parametrize("version", ["v2", "v3"])
@pytest.mark.parametrize("cfg", [V3, V2_LITE], ids=["v3-sizes", "v2-lite-sizes"])
@pytest.mark.parametrize("bias", [False, True])
def test_matches_transformers(version: str, cfg: dict[str, Any], bias: bool) -> None:
    with torch.device("meta"):
        module = _transformers_attention(version, cfg, bias)
    assert int(ours(cfg, bias).params()) == n_params(module)


def test_deepseek_v3_attention_count() -> None:
    # Hand derivation (DeepSeek-V3 sizes): q_a 7168*1536 + q_a_norm 1536 + q_b 1536*128*192
    # + kv_a 7168*576 + kv_a_norm 512 + kv_b 512*128*256 + o 128*128*7168
    expected = (
        7168 * 1536
        + 1536
        + 1536 * 128 * 192
        + 7168 * 576
        + 512
        + 512 * 128 * 256
        + 128 * 128 * 7168
    )
    assert expected == 187_107_328
    assert int(ours(V3, False).params()) == expected


@pytest.mark.parametrize("q_lora_rank", [None, 24])
@pytest.mark.parametrize("bias", [False, True])
def test_torch_module(q_lora_rank: int | None, bias: bool) -> None:
    layer = MLA(
        Int(64),
        Int(4),
        Int(16),
        Int(8),
        Int(4),
        Int(12),
        None if q_lora_rank is None else Int(q_lora_rank),
        bias,
    )
    module = layer.to_torch(int)
    assert n_params(module) == int(layer.params())
    x = torch.randn(2, 5, 64)
    assert module(x).shape == x.shape


def test_shape_check() -> None:
    import symmem
    from symmem.errors import ShapeError

    with pytest.raises(ShapeError):
        symmem.parse("model m(input = [batch, seq_len, 32]) {\n  mla(64, 4, 16, 8, 4, 8)\n}")
