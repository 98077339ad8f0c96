"""symmem check over the bundled examples at small sizes: parameters exact, saved
activations within 2 % of what autograd keeps, the step's peak within 5 %.

Every expected number is measured here, from PyTorch (symmem.check builds the
network, runs a training step and measures it); nothing is taken from symmem's output.
"""

from __future__ import annotations

import functools

import pytest

torch = pytest.importorskip("torch")

import symmem  # noqa: E402
from symmem.activations import ActPolicy  # noqa: E402
from symmem.check import check  # noqa: E402

SMALL = {
    "gpt2": {"d_model": 64, "n_layers": 2, "n_heads": 4, "vocab": 500, "n_ctx": 64},
    "bert-base": {
        "d_model": 64,
        "n_layers": 2,
        "n_heads": 4,
        "vocab": 500,
        "d_ff": 256,
        "max_positions": 64,
    },
    "llama3.1-8b": {
        "d_model": 64,
        "n_layers": 2,
        "n_heads": 4,
        "n_kv_heads": 2,
        "vocab": 500,
        "d_ff": 224,
    },
    "transformer_layer": {"d": 48, "heads": 4},
}
#: examples checked apart from the transformer grid (saved and peak, below)
PARAMS_ONLY = {
    "mixtral-8x7b": {
        "d_model": 64,
        "n_layers": 2,
        "n_heads": 4,
        "n_kv_heads": 2,
        "vocab": 500,
        "d_expert": 96,
        "n_experts": 4,
        "seq_len": 16,
        "batch": 2,
    },
    "deepseek-v3": {
        "vocab": 500,
        "d_model": 64,
        "n_layers": 3,
        "n_dense": 1,
        "n_heads": 4,
        "q_lora_rank": 32,
        "kv_lora_rank": 16,
        "qk_nope_head_dim": 8,
        "qk_rope_head_dim": 4,
        "v_head_dim": 8,
        "d_ff": 128,
        "d_expert": 32,
        "n_experts": 8,
        "top_k": 2,
        "n_shared": 1,
        "seq_len": 16,
        "batch": 2,
    },
    "lstm_lm": {"batch": 2, "seq_len": 8, "vocab": 300, "emsize": 32, "nhid": 32},
    # same kinds as gpt2 / llama3.1-8b (covered by the grid): one configuration each
    "gpt3-175b": {
        "d_model": 64,
        "n_layers": 2,
        "n_heads": 4,
        "vocab": 500,
        "n_ctx": 64,
        "batch": 2,
        "seq_len": 16,
    },
    "llama2-7b": {
        "d_model": 64,
        "n_layers": 2,
        "n_heads": 4,
        "vocab": 500,
        "d_ff": 172,
        "batch": 2,
        "seq_len": 16,
    },
}

GRID = [(1, 8), (2, 16)]


@functools.cache
def _load(name, sets):
    return symmem.load(name, set_values=dict(sets))


def _run(name, sets, **policy):
    # every registered kind has a PyTorch equivalent: a NotImplementedError is a failure, not a skip
    m = _load(name, tuple(sorted(sets.items())))
    return check(m, ActPolicy(device="cpu", **policy))


#: every combination of dtype, attention and dropout at (batch 2, seq 16), plus the
#: other grid point (batch 1, seq 8) in two of them: 9 runs per model
CASES = [
    (2, 16, dt, att, drop)
    for dt in ("fp32", "bf16")
    for att in ("eager", "sdpa")
    for drop in (True, False)
]
CASES += [(1, 8, "fp32", "sdpa", True), (1, 8, "bf16", "eager", False)]


@pytest.mark.parametrize("name", list(SMALL))
@pytest.mark.parametrize("batch,seq_len,dtype,attention,dropout", CASES)
def test_transformers_grid(name, batch, seq_len, dtype, attention, dropout):
    # bf16 on the CPU runs with oneDNN off (symmem.check.native_kernels): its GEMM scratch
    # buffers are not tensors of the model, and their size depends on the CPU
    r = _run(
        name,
        {**SMALL[name], "batch": batch, "seq_len": seq_len},
        dtype=dtype,
        attention=attention,
        dropout=dropout,
    )
    assert r.params_exact, [row for row in r.params if not row.exact]
    assert abs(r.saved.rel_error) <= 0.02, r.saved
    assert abs(r.peak.rel_error) <= 0.05, r.peak


@pytest.mark.parametrize("name", ["mixtral-8x7b", "deepseek-v3", "lstm_lm"])
@pytest.mark.parametrize("dtype", ["fp32", "bf16"])
def test_moe_examples(name, dtype):
    r = _run(name, PARAMS_ONLY[name], dtype=dtype)
    assert r.params_exact
    assert abs(r.saved.rel_error) <= 0.02, r.saved
    assert abs(r.peak.rel_error) <= 0.05, r.peak


@pytest.mark.parametrize("name", list(PARAMS_ONLY))
def test_params_only_examples(name):
    r = _run(name, PARAMS_ONLY[name])
    assert r.params_exact, [row for row in r.params if not row.exact]


@pytest.mark.parametrize("dtype", ["fp32", "bf16"])
def test_resnet50_saved_exact(dtype):
    # 224 x 224 input fixed by the example; batch 1 keeps it under a second.
    r = _run("resnet50", {"batch": 1}, dtype=dtype)
    assert r.params_exact
    assert abs(r.saved.rel_error) <= 0.02, r.saved
    # the peak is mid-backward for a CNN (early feature maps saved, late gradients live)
    assert abs(r.peak.rel_error) <= 0.05, r.peak


@pytest.mark.parametrize(
    "name,sets",
    [
        ("gpt2", {**SMALL["gpt2"], "batch": 2, "seq_len": 16}),
        ("llama3.1-8b", {**SMALL["llama3.1-8b"], "batch": 2, "seq_len": 16}),
    ],
)
def test_saved_per_layer(name, sets):
    # each layer's saved bytes (the first layer to save a tensor owns it), measured with
    # module hooks around the pack hook, equal the formula layer by layer
    r = _run(name, sets, dtype="bf16", attention="eager")
    assert r.saved_by_layer and all(row.formula == row.measured for row in r.saved_by_layer), (
        r.saved_by_layer
    )


@pytest.mark.parametrize("attention", ["eager", "sdpa"])
def test_fp16_saved_exact(attention):
    # fp16 follows the bf16 rules (fp32 copies in norms, the loss, the CPU math path);
    # the CPU peak is not compared: fp16 GEMM scratch on the CPU (docs/validation.md)
    r = _run(
        "gpt2", {**SMALL["gpt2"], "batch": 2, "seq_len": 16}, dtype="fp16", attention=attention
    )
    assert r.saved.formula == r.saved.measured


def test_cli_check_prints_comparison():
    from typer.testing import CliRunner

    from symmem.cli import app

    res = CliRunner().invoke(
        app,
        [
            "check",
            "gpt2",
            "--set",
            "d_model=32",
            "--set",
            "n_layers=1",
            "--set",
            "n_heads=2",
            "--set",
            "vocab=100",
            "--set",
            "n_ctx=16",
            "--batch",
            "1",
            "--seq-len",
            "8",
            "--attention",
            "eager",
            "--no-dropout",
        ],
    )
    assert res.exit_code == 0, res.output
    assert "saved for backward" in res.output and "peak of the step" in res.output


def test_cli_check_cuda_without_gpu():
    from typer.testing import CliRunner

    from symmem.cli import app

    if torch.cuda.is_available():
        pytest.skip("has a GPU")
    res = CliRunner().invoke(app, ["check", "gpt2", "--device", "cuda", "--set", "d_model=48"])
    assert res.exit_code == 1
    assert "no CUDA device" in res.output


def test_cli_check_without_torch(monkeypatch):
    import sys

    from typer.testing import CliRunner

    from symmem.cli import app

    monkeypatch.setitem(sys.modules, "torch", None)  # import torch now raises ImportError
    res = CliRunner().invoke(app, ["check", "gpt2", "--set", "d_model=48"])
    assert res.exit_code == 1
    assert "pip install 'symmem[validate]'" in res.output


@pytest.mark.parametrize(
    "name,sets",
    [
        ("gpt2", {**SMALL["gpt2"], "batch": 2, "seq_len": 16}),
        ("llama3.1-8b", {**SMALL["llama3.1-8b"], "batch": 2, "seq_len": 16}),
        ("lstm_lm", PARAMS_ONLY["lstm_lm"]),
    ],
)
@pytest.mark.parametrize("dtype", ["fp32", "bf16"])
def test_memory_total_bounds_the_measured_peak(name, sets, dtype):
    # symmem memory's total (the components summed: all gradients beside all activations and the
    # transient) is documented as an upper bound of a plain PyTorch step (docs/memory.md,
    # docs/validation.md): it must not fall below the peak PyTorch measures for the same step
    # (CPU, no overhead, Adam, the whole model cast to the dtype as check does).
    r = _run(name, sets, dtype=dtype)
    m = _load(name, tuple(sorted(sets.items())))
    total = m.memory("train", precision=dtype, optimizer="adam", device="cpu").total.evaluate()
    assert r.peak.measured <= total, (r.peak.measured, total)


def test_native_kernels_notes_say_what_was_switched_off():
    from symmem.check import native_kernels
    from symmem.layers.linear import Linear
    from symmem.layers.rnn import LSTM

    lin, lstm = Linear(4, 4), LSTM(4, 4)
    with native_kernels([lin], ActPolicy(device="cpu")) as notes:
        assert notes == () and torch.backends.mkldnn.enabled
    with native_kernels([lin], ActPolicy(device="cpu", dtype="bf16")) as notes:
        assert "oneDNN off" in notes[0] and not torch.backends.mkldnn.enabled
    with native_kernels([lin, lstm], ActPolicy(device="cpu")) as notes:
        assert "recurrent" in notes[0] and not torch.backends.cudnn.enabled
    assert torch.backends.mkldnn.enabled


def test_bf16_peak_with_onednn_is_the_gemm_scratch_only():
    # With oneDNN on, bf16 GEMMs may allocate scratch in backward (CPU-dependent: on CPUs
    # with AVX512-BF16 or AMX, tens of KB here); it is allocator memory outside the model,
    # so it only ever adds to the peak, and the saved tensors are the same either way.
    sets = {**SMALL["gpt2"], "batch": 2, "seq_len": 16}
    m = _load("gpt2", tuple(sorted(sets.items())))
    policy = ActPolicy(device="cpu", dtype="bf16", attention="eager")
    native, vendor = check(m, policy), check(m, policy, native=False)
    assert native.notes and not vendor.notes
    assert native.saved == vendor.saved
    assert abs(native.peak.rel_error) <= 0.05, native.peak
    assert vendor.peak.measured >= native.peak.measured - 1024, (vendor.peak, native.peak)


def test_cli_check_says_first_what_a_large_step_is(monkeypatch):
    """`symmem check gpt2` at full size ran for minutes without a word: a step of a GiB or more
    by the formula is named first (sizes and bytes), before the model is built."""
    from typer.testing import CliRunner

    import symmem.cli.check as cli_check
    from symmem.cli import app
    from symmem.units import format_bytes

    def stop(*_a, **_k):
        raise NotImplementedError("stopped before building")

    monkeypatch.setattr(cli_check, "run_check", stop)
    res = CliRunner().invoke(app, ["check", "gpt2", "--device", "cpu"])
    step = symmem.load("gpt2").memory(
        "train", precision="fp32", optimizer="adam", device="cpu", overhead=0
    )
    total = step.total.evaluate()
    assert total >= 2**30 and res.exit_code == 1
    first = res.output.splitlines()[0]
    assert "batch = 8, seq_len = 1,024" in first and f"about {format_bytes(total)}" in first
    args = ["--set", "d_model=64", "--set", "n_heads=2", "--batch", "2", "--seq-len", "16"]
    small = CliRunner().invoke(app, ["check", "gpt2", "--device", "cpu", *args])
    assert small.output.splitlines()[0] == "symmem check: stopped before building"
