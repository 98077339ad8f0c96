"""Parallelism per GPU (symmem.parallel): ZeRO stages, tensor, expert and data parallel."""

from __future__ import annotations

import pytest
import sympy

import symmem
from symmem.errors import OptionError
from symmem.layers.base import ParamTensor
from symmem.parallel import Parallel, tp_splits

SEVEN_B = """
psi = 7500000000
model m(input = [batch, 1]) { param w(psi) }
"""


@pytest.mark.parametrize(("stage", "printed"), [(0, "120"), (1, "31.4"), (2, "16.6"), (3, "1.88")])
def test_zero_figure_1(stage: int, printed: str) -> None:
    """Rajbhandari et al. 2020 (ZeRO), Figure 1: Psi = 7.5B parameters, N_d = 64 GPUs,
    mixed-precision Adam (K = 12): per-GPU model states (2 + 2 + K) Psi = 120 GB;
    P_os 2Psi + 2Psi + K Psi/N_d = 31.4 GB; P_os+g 2Psi + (2 + K) Psi/N_d = 16.6 GB;
    P_os+g+p (2 + 2 + K) Psi/N_d = 1.88 GB (GB = 10^9 bytes)."""
    m = symmem.parse(SEVEN_B)
    r = m.memory("train", precision="mixed-fp16", optimizer="adam", dp=64, zero=stage)
    states = r.weights.evaluate() + r.gradients.evaluate() + r.optimizer.evaluate()
    digits = len(printed.split(".")[1]) if "." in printed else 0
    assert f"{states / 1e9:.{digits}f}" == printed
    exact = {
        0: 16 * 7.5e9,
        1: 4 * 7.5e9 + 12 * 7.5e9 / 64,
        2: 2 * 7.5e9 + 14 * 7.5e9 / 64,
        3: 16 * 7.5e9 / 64,
    }
    assert states == exact[stage]


def test_zero3_is_fsdp_full_shard() -> None:
    m = symmem.load("gpt2")
    full = m.memory("train", precision="mixed", optimizer="adam")
    shard = m.memory("train", precision="mixed", optimizer="adam", dp=8, zero=3)
    for c in ("weights", "gradients", "optimizer"):
        assert getattr(shard, c).evaluate() * 8 == getattr(full, c).evaluate()
    assert shard.activations.evaluate() == full.activations.evaluate()


def test_tensor_parallel_weights_gpt2() -> None:
    """Megatron-LM's split (Shoeybi et al. 2019): attention and MLP matrices (12 d^2 per layer) and
    the vocab-parallel token embedding are split over tp; biases, layernorms and the position
    embedding are replicated (13 d per layer, n_ctx d, ln_f 2 d).  GPT-2, tp = 2, fp32."""
    d, V, n_ctx, L = 768, 50257, 1024, 12
    expected = 4 * (L * (12 * d * d // 2 + 13 * d) + V * d // 2 + n_ctx * d + 2 * d)
    r = symmem.load("gpt2").memory("train", precision="fp32", tp=2)
    assert r.weights.evaluate() == expected


def _split_names(dsl: str, shape: str = "[batch, seq_len, 8]") -> set[str]:
    m = symmem.parse(f"model m(input = {shape}) {{ {dsl} }}\n")
    node = next(iter(m.graph.walk()))[0]
    return {t.name for t in node.layer.tensors() if tp_splits(t)}


def test_tp_rule() -> None:
    # What Megatron-LM splits: attention q/k/v (column) and o (row) weights, MLP and expert
    # matrices, MLA's up-projections and o (Megatron-Core MLASelfAttention), vocab-parallel
    # embeddings; biases, norms, routers and MLA's down-projections stay replicated.
    assert _split_names("attention(8, heads = 2, qk_norm = true)") == {
        "q_proj.weight",
        "k_proj.weight",
        "v_proj.weight",
        "o_proj.weight",
    }
    assert _split_names("mlp(8, 32)") == {"fc1.weight", "fc2.weight"}
    assert _split_names("gated_mlp(8, 32)") == {
        "gate_proj.weight",
        "up_proj.weight",
        "down_proj.weight",
    }
    assert _split_names(
        "moe(8, 16, 4, 2, n_shared = 1, shared_gate = true, router_bias = true)"
    ) == {
        "experts.gate_proj.weight",
        "experts.up_proj.weight",
        "experts.down_proj.weight",
        "shared_experts.gate_proj.weight",
        "shared_experts.up_proj.weight",
        "shared_experts.down_proj.weight",
    }
    assert _split_names("mla(8, 2, 4, 4, 2, 4, q_lora_rank = 4)") == {
        "q_b_proj.weight",
        "kv_b_proj.weight",
        "o_proj.weight",
    }
    assert _split_names("embedding(10, 8)", "[batch, seq_len]") == {"weight"}
    assert _split_names("layernorm(8)") == set()
    assert _split_names("linear(8, 8)") == set()
    head = ParamTensor("weight", (sympy.Integer(8), sympy.Integer(8)))
    assert tp_splits(head, output_head=True)
    assert not tp_splits(ParamTensor("bias", (sympy.Integer(8),)), output_head=True)


def test_expert_parallel_mixtral() -> None:
    """Mixtral-8x7B: the routed experts, 32 layers x 8 x 3 x 4096 x 14336 = 45,097,156,608
    parameters, split over ep = 8 ranks; everything else replicated (bf16 weights)."""
    m = symmem.load("mixtral-8x7b")
    experts = 32 * 8 * 3 * 4096 * 14336
    assert experts == 45_097_156_608
    one = m.memory("infer", precision="bf16").weights.evaluate()
    eight = m.memory("infer", precision="bf16", ep=8).weights.evaluate()
    assert one == 2 * 46_702_792_704
    assert one - eight == 2 * experts * 7 // 8


def test_in_flight_micro_batches() -> None:
    assert Parallel(pp=4).in_flight == 4
    assert Parallel(pp=4, micro_batches=2).in_flight == 2
    assert Parallel(pp=4, micro_batches=16).in_flight == 4
    assert Parallel().in_flight == 1


@pytest.mark.parametrize(
    "kwargs",
    [{"tp": 0}, {"pp": -1}, {"dp": 1.5}, {"zero": 4}, {"ep": 0}, {"micro_batches": 0}],
)
def test_invalid_degrees(kwargs: dict) -> None:
    with pytest.raises(OptionError):
        Parallel(**kwargs)


def test_sequence_parallel_needs_tensor_parallel() -> None:
    with pytest.raises(OptionError, match="tp"):
        symmem.load("gpt2").memory("train", sp=True)


def test_degrees_must_divide_heads_and_experts() -> None:
    """Megatron-LM splits whole heads over tp ranks and whole experts over ep ranks."""
    with pytest.raises(OptionError, match="heads = 12"):
        symmem.load("gpt2").memory("train", tp=5)
    with pytest.raises(OptionError, match="n_experts = 8"):
        symmem.load("mixtral-8x7b").memory("infer", ep=3)
