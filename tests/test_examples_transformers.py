"""The bundled transformer examples, pinned to transformers' own models (built
on the meta device from the published config.json values, written here
literally) and to the papers' tables."""

from __future__ import annotations

import importlib.util
import math
from collections.abc import Callable
from pathlib import Path
from typing import TYPE_CHECKING, Any, TypeVar

import pytest
import sympy

import symmem

if TYPE_CHECKING:
    from torch import nn
    from transformers import DeepseekV3ForCausalLM, LlamaConfig, MixtralForCausalLM

T = TypeVar("T")

EXAMPLES = Path(__file__).resolve().parents[1] / "examples"


def load(name: str, **values: int) -> symmem.Model:
    return symmem.load(EXAMPLES / f"{name}.mem", set_values=values or None)


def total(m: symmem.Model, **kw: Any) -> int:
    return int(m.params(**kw).total.evaluate())


def active(m: symmem.Model, **kw: Any) -> int:
    return int(m.params(**kw).active.evaluate())


# ---------------------------------------------------------------- symbolic, no torch


# The counts issue 2 pins, checked without torch too (the torch tests below rebuild each model in
# transformers on the meta device and reach the same numbers): BertModel 109,482,240;
# LlamaForCausalLM for Llama-2-7B 6,738,415,616 and Llama-3.1-8B 8,030,261,248;
# MixtralForCausalLM 46,702,792,704, 12,879,925,248 active per token with the embedding.
@pytest.mark.parametrize(
    ("name", "expected_total", "expected_active"),
    [
        ("bert-base", 109_482_240, None),
        ("llama2-7b", 6_738_415_616, None),
        ("llama3.1-8b", 8_030_261_248, None),
        ("mixtral-8x7b", 46_702_792_704, 12_879_925_248),
    ],
)
def test_pinned_counts_without_torch(
    name: str, expected_total: int, expected_active: int | None
) -> None:
    m = load(name)
    assert total(m) == expected_total
    assert active(m) == (expected_active or expected_total)


def test_transformer_layer_is_12d2_plus_13d() -> None:
    m = load("transformer_layer")
    expr = m.params().total.expr
    d = m.symbol("d")
    assert expr.free_symbols == {d}
    # Hand derivation: attention 4d^2 + 4d, MLP 8d^2 + 5d, two layernorms 4d.
    assert sympy.expand(expr - (12 * d**2 + 13 * d)) == 0
    # The seed's rule 12 d^2 + 2 d is off by 11 d: 0.119 % at d = 768.
    rel = (sympy.Integer(13 - 2) * 768) / (12 * 768**2 + 13 * 768)
    assert abs(float(rel) - 0.001192) < 1e-6


def test_gpt3_against_brown_2020_table_2_1() -> None:
    # Brown et al. 2020, Table 2.1: GPT-3 175B: n_params 175.0B, n_layers 96, d_model 12288, 96
    # heads.
    n = total(load("gpt3-175b"))
    # Hand derivation: embeddings (50257 + 2048) * 12288, 96 layers of 12 d^2 + 13 d, final LN 2d;
    # LM head tied to the token embedding.
    d = 12288
    assert n == (50257 + 2048) * d + 96 * (12 * d * d + 13 * d) + 2 * d == 174_604_259_328
    assert abs(n - 175.0e9) / 175.0e9 < 0.003  # 0.23 % below the paper's rounded figure


def test_gpt3_leading_term() -> None:
    m = load("gpt3-175b")
    L, d = m.symbol("n_layers"), m.symbol("d_model")
    expr = sympy.expand(m.params().total.expr)
    assert expr.coeff(L).coeff(d, 2) == 12  # 12 n_layers d^2, the usual rule


def test_deepseek_v3_published() -> None:
    # DeepSeek-V3 technical report (arXiv:2412.19437), abstract: 671B total, 37B activated per
    # token.
    m = load("deepseek-v3")
    assert round(total(m) / 1e9) == 671
    assert round(active(m) / 1e9) == 37  # header: active_embeddings = exclude
    # Counting the input embedding (129280 x 7168 = 926,679,040) gives about 37.55B instead.
    with_emb = active(m, active_embeddings="count")
    assert with_emb - active(m) == 129280 * 7168
    assert round(with_emb / 1e7) == 3755


# ---------------------------------------------------------------- against transformers

torch_needed = pytest.mark.skipif(
    importlib.util.find_spec("torch") is None or importlib.util.find_spec("transformers") is None,
    reason="needs torch and transformers",
)


def _meta(build: Callable[[], T]) -> T:
    torch = pytest.importorskip("torch")
    with torch.device("meta"):
        return build()


def _count(module: nn.Module) -> int:
    return sum(p.numel() for p in module.parameters())


@torch_needed
def test_bert_base() -> None:
    from transformers import BertConfig, BertModel

    # bert-base-uncased config.json: vocab 30522, hidden 768, 12 layers, 12 heads, 3072, 512
    # positions, 2 types.
    cfg = BertConfig(
        vocab_size=30522,
        hidden_size=768,
        num_hidden_layers=12,
        num_attention_heads=12,
        intermediate_size=3072,
        max_position_embeddings=512,
        type_vocab_size=2,
    )
    expected = _count(_meta(lambda: BertModel(cfg)))  # pooler included (add_pooling_layer=True)
    assert expected == 109_482_240
    assert total(load("bert-base")) == expected


@torch_needed
def test_gpt3_as_gpt2_model() -> None:
    from transformers import GPT2Config, GPT2LMHeadModel

    cfg = GPT2Config(n_embd=12288, n_layer=96, n_head=96, vocab_size=50257, n_positions=2048)
    assert total(load("gpt3-175b")) == _count(_meta(lambda: GPT2LMHeadModel(cfg)))


def _llama_cfg(**kw: Any) -> LlamaConfig:
    from transformers import LlamaConfig

    return LlamaConfig(tie_word_embeddings=False, **kw)


@torch_needed
def test_llama2_7b() -> None:
    from transformers import LlamaForCausalLM

    # meta-llama/Llama-2-7b-hf config.json
    cfg = _llama_cfg(
        vocab_size=32000,
        hidden_size=4096,
        intermediate_size=11008,
        num_hidden_layers=32,
        num_attention_heads=32,
        num_key_value_heads=32,
    )
    expected = _count(_meta(lambda: LlamaForCausalLM(cfg)))
    assert expected == 6_738_415_616
    assert total(load("llama2-7b")) == expected


@torch_needed
def test_llama3_1_8b() -> None:
    from transformers import LlamaForCausalLM

    # meta-llama/Llama-3.1-8B config.json
    cfg = _llama_cfg(
        vocab_size=128256,
        hidden_size=4096,
        intermediate_size=14336,
        num_hidden_layers=32,
        num_attention_heads=32,
        num_key_value_heads=8,
    )
    expected = _count(_meta(lambda: LlamaForCausalLM(cfg)))
    assert expected == 8_030_261_248
    assert total(load("llama3.1-8b")) == expected


@torch_needed
@pytest.mark.parametrize(
    "sizes",
    [
        {"d_model": 64, "n_heads": 4, "n_kv_heads": 2, "d_ff": 96, "n_layers": 3, "vocab": 100},
        {"d_model": 48, "n_heads": 6, "n_kv_heads": 1, "d_ff": 80, "n_layers": 1, "vocab": 7},
    ],
)
def test_llama3_structure_at_other_sizes(sizes: dict[str, int]) -> None:
    from transformers import LlamaForCausalLM

    cfg = _llama_cfg(
        vocab_size=sizes["vocab"],
        hidden_size=sizes["d_model"],
        intermediate_size=sizes["d_ff"],
        num_hidden_layers=sizes["n_layers"],
        num_attention_heads=sizes["n_heads"],
        num_key_value_heads=sizes["n_kv_heads"],
    )
    assert total(load("llama3.1-8b", **sizes)) == _count(_meta(lambda: LlamaForCausalLM(cfg)))


def _mixtral(**kw: Any) -> MixtralForCausalLM:
    from transformers import MixtralConfig, MixtralForCausalLM

    return _meta(lambda: MixtralForCausalLM(MixtralConfig(**kw)))


@torch_needed
def test_mixtral_8x7b() -> None:
    # mistralai/Mixtral-8x7B-v0.1 config.json
    kw = {
        "vocab_size": 32000,
        "hidden_size": 4096,
        "intermediate_size": 14336,
        "num_hidden_layers": 32,
        "num_attention_heads": 32,
        "num_key_value_heads": 8,
        "num_local_experts": 8,
        "num_experts_per_tok": 2,
    }
    model = _mixtral(**kw)
    expected = _count(model)
    assert expected == 46_702_792_704
    # active per token: every module except 6 of the 8 experts of each layer (embedding counted)
    experts = sum(_count(layer.mlp.experts) for layer in model.model.layers)
    expected_active = expected - experts * 6 // 8
    assert expected_active == 12_879_925_248
    m = load("mixtral-8x7b")
    assert total(m) == expected
    assert active(m) == expected_active
    assert m.params().active_embeddings == "count"


@torch_needed
def test_mixtral_structure_at_other_sizes() -> None:
    model = _mixtral(
        vocab_size=50,
        hidden_size=32,
        intermediate_size=40,
        num_hidden_layers=2,
        num_attention_heads=4,
        num_key_value_heads=2,
        num_local_experts=5,
        num_experts_per_tok=3,
    )
    m = load(
        "mixtral-8x7b",
        vocab=50,
        d_model=32,
        d_expert=40,
        n_layers=2,
        n_heads=4,
        n_kv_heads=2,
        n_experts=5,
        top_k=3,
    )
    assert total(m) == _count(model)


# DeepSeek-V3 config.json (deepseek-ai/DeepSeek-V3), literal values.
DSV3: dict[str, Any] = {
    "vocab_size": 129280,
    "hidden_size": 7168,
    "intermediate_size": 18432,
    "moe_intermediate_size": 2048,
    "num_hidden_layers": 61,
    "first_k_dense_replace": 3,
    "num_attention_heads": 128,
    "n_routed_experts": 256,
    "n_shared_experts": 1,
    "num_experts_per_tok": 8,
    "q_lora_rank": 1536,
    "kv_lora_rank": 512,
    "qk_nope_head_dim": 128,
    "qk_rope_head_dim": 64,
    "v_head_dim": 128,
    "tie_word_embeddings": False,
}


def _deepseek(**over: Any) -> DeepseekV3ForCausalLM:
    from transformers import DeepseekV3Config, DeepseekV3ForCausalLM

    return _meta(lambda: DeepseekV3ForCausalLM(DeepseekV3Config(**{**DSV3, **over})))


def _router_buffers(model: nn.Module) -> int:
    return sum(b.numel() for n, b in model.named_buffers() if n.endswith("e_score_correction_bias"))


@torch_needed
def test_deepseek_v3() -> None:
    model = _deepseek()  # about 0.1 s on the meta device
    expected = _count(model)
    assert expected == 671_026_404_352
    assert _router_buffers(model) == 58 * 256 == 14_848
    # active per token, independently: every parameter except the input embedding and
    # 248 of the 256 routed experts of each MoE layer
    routed = sum(_count(layer.mlp.experts) for layer in model.model.layers[3:])
    expected_active = expected - _count(model.model.embed_tokens) - routed * (256 - 8) // 256
    assert expected_active == 36_625_603_584
    m = load("deepseek-v3")
    r = m.params()
    assert int(r.total.evaluate()) == expected
    assert int(r.active.evaluate()) == expected_active
    assert int(r.buffers.evaluate()) == 14_848
    # DeepSeek's own checkpoint convention counts the router biases: 671,026,419,200.
    assert total(m, include_buffers=True) == expected + 14_848 == 671_026_419_200


@torch_needed
def test_deepseek_v3_structure_at_other_sizes() -> None:
    over = {
        "num_hidden_layers": 5,
        "first_k_dense_replace": 2,
        "n_routed_experts": 16,
        "num_experts_per_tok": 4,
        "n_shared_experts": 2,
        "hidden_size": 256,
        "num_attention_heads": 4,
        "vocab_size": 1000,
        "q_lora_rank": 96,
        "intermediate_size": 512,
        "moe_intermediate_size": 64,
    }
    model = _deepseek(**over)
    m = load(
        "deepseek-v3",
        n_layers=5,
        n_dense=2,
        n_experts=16,
        top_k=4,
        n_shared=2,
        d_model=256,
        n_heads=4,
        vocab=1000,
        q_lora_rank=96,
        d_ff=512,
        d_expert=64,
    )
    assert total(m) == _count(model)
    assert int(m.params().buffers.evaluate()) == _router_buffers(model)


@torch_needed
def test_deepseek_v3_mtp() -> None:
    # The MTP module (DeepSeek-V3 report, section 2.2; modeling_deepseek.py of the release):
    # enorm, hnorm, eh_proj (2d -> d, no bias), one MoE decoder layer, shared_head.norm;
    # embedding and output head shared with the main model.
    from transformers import DeepseekV3Config
    from transformers.models.deepseek_v3.modeling_deepseek_v3 import DeepseekV3DecoderLayer

    torch = pytest.importorskip("torch")
    with torch.device("meta"):
        layer = DeepseekV3DecoderLayer(DeepseekV3Config(**DSV3), layer_idx=3)  # an MoE layer
    d = 7168
    mtp = _count(layer) + 2 * d * d + 3 * d
    assert mtp == 11_610_067_968
    m = load("deepseek-v3", mtp_layers=1)
    assert total(m) == 671_026_404_352 + mtp
    # The published 685B (README: "671B of the Main Model weights and 14B of the MTP Module")
    # counts the checkpoint's layer 61, which stores its own copies of the embedding and
    # head (2 x 129280 x 7168) and the router bias: 684,489,845,504 weights, 684.49B.
    checkpoint = total(m, include_buffers=True) + 2 * 129280 * d
    assert checkpoint == 684_489_845_504

    # The FP8 release also stores one fp32 scale per 128 x 128 block of every quantized
    # linear (config.json quantization_config: weight_block_size [128, 128]; embedding,
    # head, norms and routers stay unquantized); counting them, the total rounds to 685B.
    def blocks(out_f: int, in_f: int) -> int:
        return math.ceil(out_f / 128) * math.ceil(in_f / 128)

    mla = (
        blocks(1536, d)
        + blocks(128 * 192, 1536)
        + blocks(576, d)
        + blocks(128 * 256, 512)
        + blocks(d, 128 * 128)
    )
    dense = 2 * blocks(18432, d) + blocks(d, 18432)
    moe = 257 * (2 * blocks(2048, d) + blocks(d, 2048))
    scales = 3 * (mla + dense) + 59 * (mla + moe) + blocks(d, 2 * d)
    assert scales == 41_546_768
    assert round((checkpoint + scales) / 1e9) == 685
