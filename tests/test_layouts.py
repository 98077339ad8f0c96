"""The layout search (symmem.layouts, `symmem layouts`): each listed layout's figures are the
memory model's own (held against the exact build), everything listed fits and nothing that fits
is missing from its structure, and the order is Narayanan et al. 2021's."""

from __future__ import annotations

import csv
import json
import math
import random
from pathlib import Path
from typing import Any

import pytest
from typer.testing import CliRunner

import symmem
from symmem.cli import app
from symmem.errors import OptionError
from symmem.layouts import RECOMPUTE, search
from symmem.options import MemoryOptions

H100 = 81559 * 2**20
BASE = MemoryOptions(precision="mixed-bf16", attention="flash")
# Llama-3.1-70B (meta-llama/Llama-3.1-70B config.json: hidden 8192, 80 layers, 64 heads, 8 kv
# heads, intermediate 28672, vocab 128256) as the 8B file with other sizes
LLAMA70 = {"d_model": 8192, "n_layers": 80, "n_heads": 64, "d_ff": 28672}


def _exact(m: symmem.Model, layout: Any, seq: int) -> tuple[Any, Any]:
    r = m.with_values({"seq_len": seq, "batch": layout.micro_batch}).memory(
        options=BASE.replace(**layout.options())
    )
    assert r.host is not None
    return r.total.evaluate(), r.host.evaluate()


@pytest.mark.parametrize(
    ("name", "sets", "gpus", "batch", "seq"),
    [("llama3.1-8b", LLAMA70, 64, 256, 8192), ("mixtral-8x7b", {}, 32, 64, 4096)],
    ids=["llama70b-64", "mixtral-32"],
)
def test_listed_layouts_equal_the_exact_model(
    name: str, sets: dict[str, int], gpus: int, batch: int, seq: int
) -> None:
    m = symmem.load(name, set_values=sets)
    r = search(m, gpus=gpus, gpu_budget=H100, seq_len=seq, global_batch=batch, options=BASE)
    assert r.layouts
    rng = random.Random(0)
    sample = list(r.layouts[:3]) + rng.sample(r.layouts, min(25, len(r.layouts)))
    for x in sample:
        assert x.tp * x.pp * x.cp * x.dp == gpus
        assert x.dp * x.micro_batch * x.micro_batches == batch
        total, host = _exact(m, x, seq)
        assert math.ceil(total) == x.gpu <= H100
        assert math.ceil(host) == x.host
        assert x.gpu_headroom == H100 - x.gpu
    if name == "mixtral-8x7b":
        assert any(x.ep > 1 for x in r.layouts)
    assert any(x.virtual_stages > 1 for x in r.layouts)
    assert any(x.cp > 1 for x in r.layouts)
    assert any(x.offload for x in r.layouts)


def test_order_is_narayanans() -> None:
    m = symmem.load("llama3.1-8b", set_values=LLAMA70)
    r = search(m, gpus=64, gpu_budget=H100, seq_len=8192, global_batch=256, options=BASE)
    keys = [
        (len(x.offload), RECOMPUTE.index(x.checkpointing), x.tp * x.pp * x.cp) for x in r.layouts
    ]
    assert keys == sorted(keys)
    first = r.layouts[0]
    # no offload and no recompute where memory allows; tp within the node before anything else
    assert first.offload == () and first.checkpointing == "none" and first.tp == 8


def test_a_layout_one_byte_over_is_dropped() -> None:
    m = symmem.load("llama3.1-8b")
    r = search(m, gpus=8, gpu_budget=H100, seq_len=4096, options=BASE)
    x = r.layouts[0]
    tighter = search(m, gpus=8, gpu_budget=x.gpu - 1, seq_len=4096, options=BASE)
    same = [
        y for y in tighter.layouts if y.options() == x.options() and y.micro_batch == x.micro_batch
    ]
    assert not same
    assert len(tighter.layouts) < len(r.layouts)


def test_host_budget_filters_offloaded_layouts() -> None:
    m = symmem.load("llama3.1-8b")
    r = search(m, gpus=8, gpu_budget=24 * 2**30, seq_len=4096, options=BASE)
    off = [x for x in r.layouts if x.offload]
    assert off and all(x.host > 0 for x in off)
    small = min(x.host for x in off)
    r2 = search(m, gpus=8, gpu_budget=24 * 2**30, seq_len=4096, options=BASE, host_budget=small)
    assert all(x.host <= small for x in r2.layouts)
    assert len(r2.layouts) < len(r.layouts)


def test_search_needs_a_sequence_model() -> None:
    with pytest.raises(OptionError, match="sequence model"):
        search(symmem.load("resnet50"), gpus=8, gpu_budget=H100, seq_len=1)


def test_cli_layouts(tmp_path: Path) -> None:
    runner = CliRunner()
    out = tmp_path / "l.csv"
    args = ["layouts", "llama3.1-8b", "--gpus", "16", "--gpu", "h100", "--seq-len", "8192"]
    args += ["--global-batch", "64", "--precision", "mixed-bf16", "--csv", str(out), "--limit", "3"]
    res = runner.invoke(app, args)
    assert res.exit_code == 0, res.output
    assert "layouts of 16 GPUs fit" in res.output
    rows = list(csv.DictReader(out.open()))
    res = runner.invoke(app, [*args, "--json"])
    doc = json.loads(res.output)
    assert doc["fits"] == len(rows) == len(doc["layouts"])
    assert int(rows[0]["gpu_bytes"]) == doc["layouts"][0]["gpu_bytes"]
    bad = runner.invoke(app, ["layouts", "llama3.1-8b", "--gpus", "8", "--seq-len", "10"])
    assert bad.exit_code == 1 and "give a memory budget" in bad.output
