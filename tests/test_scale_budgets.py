"""Training at scale (issue 14), the second round: host memory as a second budget of solve,
HSDP (shard inside a node, replicate across nodes), DeepSpeed's ZeRO-3 live-parameter and
bucket knobs, and Transformer Engine's FP8 extras.  Each figure's derivation is written beside
it."""

from __future__ import annotations

import json
from typing import Any

import pytest
from typer.testing import CliRunner

import symmem
from symmem.cli import app
from symmem.errors import OptionError
from symmem.gpus import GiB, gpu
from symmem.solve import solve

runner = CliRunner()

# ---------------------------------------------------------------- host memory as a second budget

#: GPT-3 13B (Brown et al. 2020, Table 2.1: 40 layers, 40 heads of 128, d_model 5120), seq 1024
GPT13B: dict[str, Any] = {"d_model": 5120, "n_layers": 40, "n_heads": 40, "seq_len": 1024}
PSI = 12853386240  # its parameters (tests/test_scale.py: test_zero_offload_accounting)
#: ZeRO-Offload (Ren et al. 2021, Section 4) with the checkpoints offloaded too, one GPU a node
OFFLOAD: dict[str, Any] = {
    "precision": "mixed-fp16",
    "zero": 2,
    "offload": "optimizer,activations",
    "checkpointing": "full",
    "gpus_per_node": 1,
}
#: one sample's checkpoints: 40 layers x 1024 tokens x 5120 x 2 bytes (fp16)
CHECKPOINTS = 40 * 1024 * 5120 * 2


def _offloaded() -> symmem.memory.MemoryResult:
    m = symmem.load("gpt3-175b", set_values=GPT13B, free=["batch"])
    return m.memory(**OFFLOAD)


def test_host_memory_grows_with_the_offloaded_checkpoints() -> None:
    # host per node = 14 Psi (fp16 gradients, fp32 parameters, momentum, variance) + the batch's
    # checkpoints
    r = _offloaded()
    assert r.host is not None
    for batch in (1, 4, 9):
        assert r.host.evaluate(batch=batch) == 14 * PSI + batch * CHECKPOINTS


def test_solve_host_budget_binds() -> None:
    # a 182 GB host: batch <= (182e9 - 14 Psi) / CHECKPOINTS = 2,052,592,640 / 419,430,400 = 4.89
    r = _offloaded()
    assert r.host is not None
    cap = gpu("v100-32gb").capacity_bytes
    gpu_only = solve(r.total, cap, "batch")
    both = solve(r.total, cap, "batch", host=r.host, host_budget="182GB")
    hand = (182 * 10**9 - 14 * PSI) // CHECKPOINTS
    assert hand == 4 and both.value == hand < gpu_only.value  # type: ignore[operator]
    assert both.bound_by == "host"
    assert both.host_bytes_at_value == 14 * PSI + 4 * CHECKPOINTS <= 182 * 10**9
    assert both.host_bytes_at_next == 14 * PSI + 5 * CHECKPOINTS > 182 * 10**9
    # the GPU's figures are at the chosen value
    assert both.bytes_at_value == r.total.evaluate(batch=4)
    # a DGX-1's 512 GiB of host memory (its V100 entry's node) leaves the GPU to decide
    dgx1 = gpu("v100-32gb").node_host_bytes
    assert dgx1 == 512 * GiB
    wide = solve(r.total, cap, "batch", host=r.host, host_budget=dgx1)
    assert wide.bound_by == "gpu" and wide.value == gpu_only.value
    # 128 GiB < 14 Psi = 179,947,407,360: nothing fits the host
    none = solve(r.total, cap, "batch", host=r.host, host_budget="128GiB")
    assert none.value is None and none.bound_by == "host"
    with pytest.raises(OptionError, match="go together"):
        solve(r.total, cap, "batch", host=r.host)


def test_cli_solve_host_budget() -> None:
    args = ["solve", "gpt3-175b", *(f"--set={k}={v}" for k, v in GPT13B.items())]
    args += ["--precision", "mixed-fp16", "--zero", "2", "--offload", "optimizer,activations"]
    args += ["--checkpointing", "full", "--gpus-per-node", "1", "--gpu", "v100-32gb"]
    out = runner.invoke(app, [*args, "--host-budget", "182GB"])
    assert out.exit_code == 0, out.output
    assert "batch = 4" in out.output and "it binds" in out.output
    doc = json.loads(runner.invoke(app, [*args, "--host-budget", "182GB", "--json"]).output)
    assert doc["value"] == 4 and doc["bound_by"] == "host"
    assert doc["host_bytes_at_value"] == 14 * PSI + 4 * CHECKPOINTS
    # without --host-budget, --gpu v100-32gb brings its DGX-1 node's 512 GiB
    doc = json.loads(runner.invoke(app, [*args, "--json"]).output)
    assert doc["host_budget_bytes"] == 512 * GiB and doc["bound_by"] == "gpu"
    bad = runner.invoke(app, [*args, "--host-budget", "1TB", "--for", "dp"])
    assert bad.exit_code == 1 and "--host-budget applies" in bad.output


# ---------------------------------------------------------------- HSDP

LLAMA8B_PARAMS = 8030261248  # meta-llama/Llama-3.1-8B (tests/test_hf_exact.py)


def test_hsdp_shards_inside_the_group_and_replicates_across() -> None:
    # PyTorch FSDP ShardingStrategy.HYBRID_SHARD: full sharding inside a group of 8 ranks (a
    # node), replication across the 4 groups of dp = 32.  Mixed bf16 AdamW: bf16 weights and
    # gradients 2 P each, fp32 master + two Adam moments 12 P, each / 8 (not / 32)
    m = symmem.load("llama3.1-8b")
    p = LLAMA8B_PARAMS
    assert m.params().total.evaluate() == p
    kw: dict[str, Any] = {"precision": "mixed-bf16", "dp": 32}
    hsdp = m.memory(**kw, zero=3, shard_group=8).bytes()
    assert (hsdp["weights"], hsdp["gradients"], hsdp["optimizer"]) == (
        2 * p // 8,
        2 * p // 8,
        12 * p // 8,
    )
    full = m.memory(**kw, zero=3).bytes()
    assert (full["weights"], full["optimizer"]) == (2 * p // 32, 12 * p // 32)
    # the gathered units are the same: only the shard size differs
    assert hsdp["transient"] == full["transient"]
    # _HYBRID_SHARD_ZERO2: weights whole, gradients and optimizer over the group
    z2 = m.memory(**kw, zero=2, shard_group=8).bytes()
    assert (z2["weights"], z2["gradients"], z2["optimizer"]) == (2 * p, 2 * p // 8, 12 * p // 8)
    # the fast evaluator agrees (the shard group is a knob of the compiled expression)
    ev = symmem.memory.MemoryEvaluator(m.graph, m.values)
    assert ev.bytes(**kw, zero=3, shard_group=8) == hsdp
    assert ev.bytes(**kw, zero=3) == full


def test_hsdp_checks_and_cli() -> None:
    m = symmem.load("llama3.1-8b")
    with pytest.raises(OptionError, match="must divide the dp x cp = 32"):
        m.memory(dp=32, zero=3, shard_group=5)
    with pytest.raises(OptionError, match="needs zero >= 1"):
        m.memory(dp=32, shard_group=8)
    out = runner.invoke(
        app,
        ["memory", "llama3.1-8b", "--precision", "mixed-bf16", "--dp", "32", "--zero", "3"]
        + ["--shard-group", "8", "--json"],
    )
    assert out.exit_code == 0, out.output
    doc = json.loads(out.output)
    assert doc["config"]["shard_group"] == 8
    assert doc["bytes"]["optimizer"] == 12 * LLAMA8B_PARAMS // 8


# ---------------------------------------------------------------- Transformer Engine FP8 extras

#: Llama-3.1-8B's GEMM weights: 8,030,261,248 parameters less embed_tokens and lm_head (128,256 x
#: 4,096 each) and 65 RMSNorms of 4,096 (tests/test_precision.py), in 32 layers x 7 matrices
LLAMA8B_GEMM = 8030261248 - 2 * 128256 * 4096 - 65 * 4096
LLAMA8B_GEMMS = 32 * 7
#: one GEMM's delayed-scaling state: 5 FP8 tensors (3 forward, 2 backward), each an fp32 amax
#: history of 1024 steps and an fp32 scale (TE module/base.py set_meta_tensor; quantization.py
#: DelayedScalingRecipeState)
PER_GEMM = 5 * (1024 + 1) * 4


def test_mixed_fp8_keeps_fp8_copies_transposes_and_amax_history() -> None:
    m = symmem.load("llama3.1-8b")
    assert LLAMA8B_GEMM == 6979321856 and PER_GEMM == 20500
    bf16 = m.memory(precision="mixed-bf16").bytes()
    fp8 = m.memory(precision="mixed-fp8").bytes()
    # bf16 weights (2 P) + each GEMM weight's FP8 cast and its transpose (2 bytes) + the state
    extra = 2 * LLAMA8B_GEMM + LLAMA8B_GEMMS * PER_GEMM
    assert fp8["weights"] == bf16["weights"] + extra == 2 * LLAMA8B_PARAMS + extra
    assert (fp8["gradients"], fp8["optimizer"]) == (bf16["gradients"], bf16["optimizer"])
    # fp8-te: weights already FP8 (fp8_model_init), only the transpose (1 byte) and the state
    te = m.memory(precision="fp8-te").bytes()["weights"]
    assert te == m.memory(precision="fp8").bytes()["weights"] + LLAMA8B_GEMM + 224 * PER_GEMM
    # a shorter amax history: 5 x (16 + 1) x 4 bytes a GEMM
    short = m.memory(precision="mixed-fp8", amax_history_len=16).bytes()["weights"]
    assert short == 2 * LLAMA8B_PARAMS + 2 * LLAMA8B_GEMM + LLAMA8B_GEMMS * 5 * 17 * 4
    # under ZeRO-3 the FP8 copies are sharded like the weights; the scaling state is per rank
    z3 = m.memory(precision="mixed-fp8", zero=3, dp=8).bytes()["weights"]
    assert z3 == (2 * LLAMA8B_PARAMS + 2 * LLAMA8B_GEMM) // 8 + LLAMA8B_GEMMS * PER_GEMM
    # the fast evaluator keys on the FP8 extras (a structure of their own)
    ev = symmem.memory.MemoryEvaluator(m.graph, m.values)
    assert ev.bytes(precision="mixed-bf16") == bf16
    assert ev.bytes(precision="mixed-fp8") == fp8
    with pytest.raises(OptionError, match="needs --precision"):
        m.memory(precision="mixed-bf16", amax_history_len=16)


# ---------------------------------------------------------------- DeepSpeed's ZeRO-3 knobs

#: Llama-3.1-8B's largest unit ZeRO-3 gathers: the embedding, 128,256 x 4,096 parameters
LLAMA8B_UNIT = 128256 * 4096


@pytest.mark.parametrize(
    ("knobs", "gathered", "bucket"),
    [
        # DeepSpeed's defaults (max live 1e9, prefetch 5e7, reduce bucket 5e8): the unit and
        # min(1e9 - unit, 5e7) = 5e7 elements prefetched
        ({"reduce_bucket_size": 5 * 10**8}, LLAMA8B_UNIT + 5 * 10**7, 5 * 10**8),
        # max live 5.5e8: min(5.5e8 - 525,336,576, 5e7) = 24,663,424 prefetched: 5.5e8 gathered
        ({"stage3_max_live_parameters": 55 * 10**7}, 55 * 10**7, 5 * 10**8),
        # max live below the unit: nothing prefetched, the unit alone
        ({"stage3_max_live_parameters": 10**8}, LLAMA8B_UNIT, 5 * 10**8),
        # a 1e10 prefetch bucket: bounded by max live, min(1e9 - unit, 1e10) -> 1e9 gathered
        ({"stage3_prefetch_bucket_size": 10**10, "reduce_bucket_size": 0}, 10**9, 0),
    ],
)
def test_deepspeed_zero3_working_buffers(knobs: dict[str, Any], gathered: int, bucket: int) -> None:
    # transient under ZeRO-3 less that under ZeRO-2 (no gathered units): the gathered bf16
    # parameters (2 bytes) and the reduce bucket in bf16 gradients (2 bytes); FSDP2's rule
    # (no DeepSpeed option) is the unit twice and its gradients, 6 x unit
    m = symmem.load("llama3.1-8b")
    kw: dict[str, Any] = {"precision": "mixed-bf16", "dp": 8}
    z2 = m.memory(**kw, zero=2).transient.evaluate()
    fsdp = m.memory(**kw, zero=3).transient.evaluate()
    assert fsdp - z2 == 6 * LLAMA8B_UNIT
    ds = m.memory(**kw, zero=3, **knobs)
    assert ds.transient.evaluate() - z2 == 2 * gathered + 2 * bucket
    ev = symmem.memory.MemoryEvaluator(m.graph, m.values)
    assert ev.bytes(**kw, zero=3, **knobs) == ds.bytes()


def test_deepspeed_knobs_need_zero3() -> None:
    m = symmem.load("llama3.1-8b")
    with pytest.raises(OptionError, match="need zero = 3"):
        m.memory(dp=8, zero=2, stage3_prefetch_bucket_size=10**8)
    with pytest.raises(OptionError, match=">= 0"):
        m.memory(dp=8, zero=3, reduce_bucket_size=-1)
    out = runner.invoke(
        app,
        ["memory", "llama3.1-8b", "--dp", "8", "--zero", "3"]
        + ["--stage3-max-live-parameters", "100000000", "--json"],
    )
    assert out.exit_code == 0, out.output
    cfg = json.loads(out.output)["config"]
    assert (cfg["stage3_max_live_parameters"], cfg["stage3_prefetch_bucket_size"]) == (
        10**8,
        5 * 10**7,
    )
    assert cfg["reduce_bucket_size"] == 5 * 10**8
