"""Training at scale (issue 14): context parallelism, interleaved and DualPipe schedules, expert
tensor / data parallelism, ZeRO-3 working buffers, offload and host memory, and the estimators
of Megatron-LM and DeepSpeed reproduced as named conventions.  Each figure's oracle is written
beside it: a published number, the other tool's own code run on the same arguments, or a hand
derivation."""

from __future__ import annotations

from fractions import Fraction
from typing import Any

import pytest

import symmem
from symmem.conventions import (
    MegatronArgs,
    deepspeed_zero2,
    deepspeed_zero3,
    megatron_activations,
    megatron_in_flight,
    megatron_weight_and_optimizer,
)
from symmem.errors import OptionError
from symmem.gpus import gpu
from symmem.parallel import Parallel

BF16: dict[str, Any] = {"precision": "mixed-bf16"}

# ---------------------------------------------------------------- Megatron-LM's estimator
# Megatron-LM megatron/training/theoretical_memory_usage.py at d98e8a64dd (NVIDIA/Megatron-LM),
# run unmodified on these arguments (its `from .utils import ...` replaced by stubs): the
# figures below are what compute_weight_and_optimizer_memory / compute_activation_memory
# returned (report_theoretical_memory printed 18006.07 MB + 14110.52 MB and 13599.99 MB +
# 9766.07 MB).
GPT = MegatronArgs(
    hidden_size=12288,
    num_attention_heads=96,
    kv_channels=128,
    num_layers=96,
    ffn_hidden_size=49152,
    padded_vocab_size=51200,
    seq_length=2048,
    tensor_model_parallel_size=8,
    pipeline_model_parallel_size=8,
    virtual_pipeline_model_parallel_size=2,
    data_parallel_size=16,
    expert_tensor_parallel_size=8,
    use_distributed_optimizer=True,
    sequence_parallel=True,
    recompute_granularity="selective",
)
MOE = MegatronArgs(
    hidden_size=4096,
    num_attention_heads=32,
    kv_channels=128,
    num_query_groups=8,
    swiglu=True,
    num_experts=8,
    moe_ffn_hidden_size=14336,
    moe_router_topk=2,
    normalization="RMSNorm",
    untie_embeddings_and_output_weights=True,
    add_bias_linear=False,
    num_layers=32,
    ffn_hidden_size=14336,
    padded_vocab_size=32000,
    seq_length=4096,
    tensor_model_parallel_size=2,
    pipeline_model_parallel_size=4,
    virtual_pipeline_model_parallel_size=4,
    data_parallel_size=16,
    expert_tensor_parallel_size=1,
    expert_model_parallel_size=8,
    use_distributed_optimizer=True,
    sequence_parallel=True,
    recompute_granularity="selective",
)


@pytest.mark.parametrize(
    ("args", "micro", "weights", "acts"),
    [(GPT, 64, 18880729344, 14795955200), (MOE, 32, 14260624128, 10240471040)],
    ids=["gpt-interleaved", "moe-interleaved"],
)
def test_megatron_theoretical_memory_to_the_byte(
    args: MegatronArgs, micro: int, weights: int, acts: int
) -> None:
    assert megatron_weight_and_optimizer(args) == weights
    assert megatron_activations(args, micro) == acts


def test_megatron_in_flight_micro_batches() -> None:
    # ceil(8 (1 + 7/16)) = ceil(11.5) = 12; ceil(4 (1 + 3/16)) = ceil(4.75) = 5
    assert megatron_in_flight(GPT, 64) == 12
    assert megatron_in_flight(MOE, 32) == 5


def test_interleaving_penalty_is_megatrons() -> None:
    # symmem's first stage holds pp (1 + (pp - 1) / (pp v)) micro-batches under interleaving:
    # the ratio of activations with v = 2 to plain 1F1B is Megatron's penalty 1 + 7/16
    m = symmem.load("gpt3-175b")
    kw: dict[str, Any] = {**BF16, "tp": 8, "sp": True, "checkpointing": "selective", "pp": 8}
    plain = m.memory(**kw, micro_batches=64).activations.evaluate()
    inter = m.memory(**kw, micro_batches=64, virtual_stages=2).activations.evaluate()
    assert Fraction(inter) / Fraction(plain) == 1 + Fraction(7, 16)
    assert Parallel(pp=8, virtual_stages=2, micro_batches=64).in_flight == Fraction(23, 2)


def test_dualpipe_copies_and_in_flight() -> None:
    # DeepSeek-V3 report, Table 2: DualPipe 2x parameters and PP + 1 activations; DualPipeV
    # (deepseek-ai/DualPipe README) 1x parameters, PP + 1
    assert Parallel(pp=16, schedule="dualpipe").in_flight == 17
    assert Parallel(pp=16, schedule="dualpipev").in_flight == 17
    assert Parallel(pp=16, schedule="dualpipe").stage_copies == 2
    m = symmem.load("llama3.1-8b")
    one = m.memory(**BF16, pp=4).bytes()
    dual = m.memory(**BF16, pp=4, schedule="dualpipe").bytes()
    dualv = m.memory(**BF16, pp=4, schedule="dualpipev").bytes()
    for c in ("weights", "gradients", "optimizer"):
        assert dual[c] == 2 * one[c] and dualv[c] == one[c]
    # the first stage dominates: 5 micro-batches instead of 4
    assert Fraction(dualv["activations"]) / Fraction(one["activations"]) == Fraction(5, 4)


def test_schedule_options_are_checked() -> None:
    m = symmem.load("llama3.1-8b")
    with pytest.raises(OptionError, match="needs pp > 1"):
        m.memory(virtual_stages=2)
    with pytest.raises(OptionError, match="needs pp > 1"):
        m.memory(schedule="dualpipe")
    with pytest.raises(OptionError, match="applies to 1f1b"):
        m.memory(pp=2, virtual_stages=2, schedule="dualpipe")


# ---------------------------------------------------------------- context parallelism


def test_context_parallel_halves_activations_and_exchanges_kv() -> None:
    # Llama-3.1-8B, bf16, flash attention (no s x s term), tp 2 with sp, seq 8192, batch 1:
    # every saved tensor's tokens split over cp = 2, so activations halve exactly; the transient
    # (logits and loss) halves too, plus ring attention's two K/V blocks of one layer:
    # 2 x (2 x 8192 x 8 kv heads x 128 / tp 2 / cp 2) x 2 bytes = 16,777,216
    m = symmem.load("llama3.1-8b")
    kw: dict[str, Any] = {**BF16, "attention": "flash", "tp": 2, "sp": True}
    one, two = m.memory(**kw).bytes(), m.memory(**kw, cp=2).bytes()
    assert 2 * two["activations"] == one["activations"]
    assert two["transient"] == Fraction(one["transient"], 2) + 16777216
    ulysses = m.memory(**kw, cp=2, cp_comm="ulysses").bytes()
    assert ulysses["transient"] == Fraction(one["transient"], 2) + 8388608
    for c in ("weights", "gradients", "optimizer"):
        assert two[c] == one[c]


def test_context_parallel_shards_zero_over_dp_times_cp() -> None:
    # Megatron's distributed optimizer shards over the dp x cp group
    m = symmem.load("llama3.1-8b")
    a = m.memory(**BF16, zero=1, dp=4, cp=2).optimizer.evaluate()
    b = m.memory(**BF16, zero=1, dp=8).optimizer.evaluate()
    assert a == b


def test_ulysses_needs_tp_times_cp_to_divide_the_heads() -> None:
    with pytest.raises(OptionError, match="does not divide"):
        symmem.load("llama3.1-8b").memory(tp=8, cp=8, cp_comm="ulysses")


# ---------------------------------------------------------------- expert parallelism


def test_expert_tensor_parallel_apart_from_tp() -> None:
    # Mixtral-8x7B routed experts: 32 layers x 8 experts x 3 x 4096 x 14336 = 45,097,156,608
    # parameters, bf16.  tp 2, ep 8: with etp = tp they split 16 ways, with etp = 1 8 ways
    m = symmem.load("mixtral-8x7b")
    experts = 32 * 8 * 3 * 4096 * 14336
    kw: dict[str, Any] = {**BF16, "tp": 2, "ep": 8}
    etp2 = m.memory(**kw).weights.evaluate()
    etp1 = m.memory(**kw, etp=1).weights.evaluate()
    assert etp1 - etp2 == experts * 2 * (Fraction(1, 8) - Fraction(1, 16))


def test_expert_data_parallel_shards_expert_optimizer_states() -> None:
    # ZeRO-1 over dp = 16; routed experts over their own edp = 2 (Megatron: world / (etp ep pp));
    # their optimizer bytes (fp32 master + 2 Adam states = 12 per parameter, / ep 8) grow 8x
    m = symmem.load("mixtral-8x7b")
    experts = 32 * 8 * 3 * 4096 * 14336
    kw: dict[str, Any] = {**BF16, "ep": 8, "zero": 1, "dp": 16}
    base = m.memory(**kw).optimizer.evaluate()
    edp = m.memory(**kw, edp=2).optimizer.evaluate()
    assert edp - base == Fraction(experts * 12, 8) * (Fraction(1, 2) - Fraction(1, 16))


# ---------------------------------------------------------------- ZeRO-3 buffers and offload


def test_zero3_gathers_the_largest_unit_twice_and_its_gradients() -> None:
    # Llama-3.1-8B: the largest unit FSDP gathers is the embedding, 128256 x 4096 = 525,336,576
    # parameters (a decoder block has 218,112,000): the one being computed and the one
    # prefetched in bf16 (2 x 2 bytes), and one unit's unsharded bf16 gradients (2 bytes)
    m = symmem.load("llama3.1-8b")
    z2 = m.memory(**BF16, zero=2, dp=8).transient.evaluate()
    z3 = m.memory(**BF16, zero=3, dp=8).transient.evaluate()
    assert z3 - z2 == 525336576 * (2 * 2 + 2)


def _gpt13b() -> symmem.Model:
    # GPT-3 13B (Brown et al. 2020, Table 2.1: 40 layers, 40 heads of 128, so d_model 5120)
    return symmem.load(
        "gpt3-175b", set_values={"d_model": 5120, "n_layers": 40, "n_heads": 40, "seq_len": 1024}
    )


def test_zero_offload_accounting() -> None:
    # Ren et al. 2021 (ZeRO-Offload), Section 4: fp16 parameters stay on the GPU (2 Psi); the fp16
    # gradients and the fp32 parameters, momentum and variance (2 + 12 Psi) go to the CPU,
    # partitioned over the data-parallel ranks.  One GPU per node: the host holds 14 Psi.
    m = _gpt13b()
    psi = m.params().total.evaluate()
    assert psi == 12853386240
    r = m.memory(
        precision="mixed-fp16", zero=2, offload="optimizer", checkpointing="full", gpus_per_node=1
    )
    b = r.bytes()
    assert b["weights"] == 2 * psi and b["gradients"] == 0 and b["optimizer"] == 0
    assert r.host is not None and r.host.evaluate() == 14 * psi
    # over 4 data-parallel ranks on one node of 4 GPUs, the node's host still holds 14 Psi
    r4 = m.memory(
        precision="mixed-fp16",
        zero=2,
        dp=4,
        offload="optimizer",
        checkpointing="full",
        gpus_per_node=4,
    )
    assert r4.host is not None and r4.host.evaluate() == 14 * psi


def test_zero_offload_headline_13b_on_one_32gb_v100() -> None:
    # "ZeRO-Offload can train models with over 13 billion parameters on a single GPU" (Ren et al.
    # 2021, abstract and Section 6: a 32 GB V100): with full recompute at batch 1, seq 1024 the
    # GPU holds 2 Psi + activations + buffers < 32 GiB; without offload 16 Psi does not fit
    m = _gpt13b()
    cap = gpu("v100-32gb").capacity_bytes
    kw: dict[str, Any] = {"precision": "mixed-fp16", "zero": 2, "checkpointing": "full"}
    assert m.memory(**kw, offload="optimizer").total.evaluate() <= cap
    assert m.memory(**kw).total.evaluate() > cap


def test_offload_params_needs_zero3_and_nvme_keeps_no_host_copy() -> None:
    m = symmem.load("llama3.1-8b")
    with pytest.raises(OptionError, match="zero = 3"):
        m.memory(offload="params")
    with pytest.raises(OptionError, match="unknown offload 'optimiser'"):
        m.memory(offload="optimiser")
    r = m.memory(**BF16, zero=3, dp=8, offload="optimizer,params", offload_device="nvme")
    assert r.host is not None and r.host.evaluate() == 0
    assert r.weights.evaluate() == 0


def test_activation_offload_moves_the_repeats_to_the_host() -> None:
    m = symmem.load("llama3.1-8b")
    kw: dict[str, Any] = {**BF16, "checkpointing": "full", "gpus_per_node": 1}
    on = m.memory(**kw).bytes()
    off = m.memory(**kw, offload="activations")
    # what stays: everything but the 32 layers' checkpoints (8192 x 4096 x 2 bytes each)
    checkpoints = 32 * 8192 * 4096 * 2
    assert on["activations"] - off.activations.evaluate() == checkpoints
    assert off.host is not None and off.host.evaluate() == checkpoints


# ---------------------------------------------------------------- DeepSpeed's estimators
# deepspeed/runtime/zero/stage_1_and_2.py estimate_zero2_model_states_mem_needs and
# deepspeed/runtime/zero/stage3.py estimate_zero3_model_states_mem_needs at edaa722126
# (deepspeedai/DeepSpeed), extracted and run on these arguments: (cpu, gpu[, largest]).
# Parameters and largest layers are symmem's: Llama-2-7B 6,738,415,616 (embed_tokens
# 131,072,000); GPT-3 175B 174,604,259,328 (wte 617,558,016).
DS = [
    ("llama2-7b", 131072000, 1, (323443949568, 13476831232), (323443949568, 28638266368),
     (181937221632, 524288000), (161721974784, 2208891904), (6291456000, 15685723136)),
    ("llama2-7b", 131072000, 4, (1293775798272, 13476831232), (323443949568, 17267190016),
     (45484305408, 524288000), (40430493696, 945438976), (6291456000, 4314646784)),
    ("gpt3-175b", 617558016, 1, (8381004447744, 349208518656), (8381004447744, 742068102144),
     (4714315001856, 2470232064), (4190502223872, 46121296896), (29642784768, 395329815552)),
]  # fmt: skip


@pytest.mark.parametrize("case", DS, ids=lambda c: f"{c[0]}-{c[2]}nodes")
def test_deepspeed_estimators_to_the_byte(case: tuple[Any, ...]) -> None:
    name, largest, nodes, z2_off, z2_none, z3_both, z3_opt, z3_none = case
    total = symmem.load(name).params().total.evaluate()
    assert deepspeed_zero2(total, 8, nodes, cpu_offload=True) == z2_off
    assert deepspeed_zero2(total, 8, nodes, cpu_offload=False) == z2_none
    assert deepspeed_zero3(total, largest, 8, nodes, True, True)[:2] == z3_both
    assert deepspeed_zero3(total, largest, 8, nodes, True, False)[:2] == z3_opt
    assert deepspeed_zero3(total, largest, 8, nodes, False, False)[:2] == z3_none
