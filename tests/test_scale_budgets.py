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
