"""The accelerator catalogue: capacities in bytes, lookups, and the `symmem gpus` listing."""

from __future__ import annotations

import json

import pytest
from typer.testing import CliRunner

from symmem.cli import app
from symmem.errors import OptionError
from symmem.gpus import CATALOGUE, gpu

MiB, GiB = 2**20, 2**30


def test_required_entries_exist() -> None:
    keys = {g.key for g in CATALOGUE}
    assert {
        "rtx3090",
        "rtx4090",
        "rtx5090",
        "a10g",
        "a100-40gb",
        "a100-80gb",
        "h100-80gb",
        "h200",
        "l4",
        "t4",
        "v100-16gb",
        "v100-32gb",
        "mi250x",
        "mi300x",
        "gb200",
    } <= keys


def test_every_entry_cites_a_source() -> None:
    for g in CATALOGUE:
        assert g.source.startswith("https://"), g.key
        if g.reported_bytes is not None:
            assert g.reported_source, g.key
            # the driver keeps a little of the DRAM: the reported total is below the nominal;
            # GDDR6 cards with ECC on (A10G, L4, T4) lose 1/16 of it to ECC: 23028/24576 = 0.937,
            # so within 7%
            assert 0.93 * g.nominal_bytes <= g.reported_bytes <= g.nominal_bytes, g.key


def test_h100_capacity_is_what_nvidia_smi_reports() -> None:
    # nvidia-smi on an H100 80GB HBM3: 81559MiB total (public printouts cited in symmem/gpus.py)
    h = gpu("h100-80gb")
    assert h.capacity_bytes == 81559 * MiB == 85_520_809_984
    assert h.nominal_bytes == 80 * GiB  # five 16 GiB HBM3 stacks


def test_a_24gb_card_has_24gib_of_dram() -> None:
    assert gpu("rtx3090").capacity_bytes == 24 * GiB
    assert gpu("rtx4090").nominal_bytes == 24 * GiB


def test_mi300x_and_h200() -> None:
    assert gpu("mi300x").capacity_bytes == 192 * GiB
    assert gpu("h200").capacity_bytes == 143771 * MiB


def test_lookup_is_forgiving() -> None:
    assert gpu("H100").key == "h100-80gb"
    assert gpu("A100_80GB").key == "a100-80gb"
    assert gpu(" rtx4090 ").key == "rtx4090"


def test_unknown_gpu() -> None:
    with pytest.raises(OptionError, match="unknown GPU 'h1000'.*did you mean"):
        gpu("h1000")


def test_cli_lists_every_gpu() -> None:
    r = CliRunner().invoke(app, ["gpus"])
    assert r.exit_code == 0, r.output
    for g in CATALOGUE:
        assert g.key in r.output
    assert "85,520,809,984" in r.output


def test_cli_json() -> None:
    r = CliRunner().invoke(app, ["gpus", "--json"])
    assert r.exit_code == 0
    doc = json.loads(r.output)
    assert {d["key"] for d in doc} == {g.key for g in CATALOGUE}
    assert all(d["capacity_bytes"] > 0 for d in doc)


def test_issue_10_catalogue_and_cuda_totals() -> None:
    keys = {g.key for g in CATALOGUE}
    # issue 10: the accelerators a serving plan is asked about
    assert {
        "rtx-a6000",
        "rtx6000-ada",
        "l40s",
        "a40",
        "h100-pcie",
        "h100-nvl",
        "h20",
        "b200",
        "mi325x",
        "gaudi3",
    } <= keys
    # CUDA's total (what vLLM prints as total_gpu_memory) sits below nvidia-smi's
    h = gpu("h100")
    assert h.cuda_total_bytes == round(79.19 * GiB) < h.capacity_bytes
    assert gpu("rtx3090").cuda_total_bytes == round(23.58 * GiB)
    for g in CATALOGUE:
        if g.cuda_bytes is not None:
            assert g.cuda_source and g.cuda_bytes <= g.capacity_bytes, g.key
        else:
            assert g.cuda_total_bytes == g.capacity_bytes
    assert gpu("a6000").key == "rtx-a6000"
