"""--recompute-method uniform|block with --recompute-num-layers N (Megatron-LM's arguments;
megatron/core/transformer/transformer_block.py, TransformerBlock._checkpointed_forward).

Oracle: the same grouping run in PyTorch on the CPU with ``torch.utils.checkpoint`` in its
reentrant form (Megatron's ``CheckpointFunction``: the group's input saved, the group run under
no_grad), what the forward keeps measured with ``saved_tensors_hooks``; the tensors alive
while a group is recomputed in backward are derived by hand beside each test.
"""

from __future__ import annotations

from typing import Any

import pytest
from typer.testing import CliRunner

import symmem
from symmem.cli import app
from symmem.errors import OptionError

torch = pytest.importorskip("torch")

N_TOK, D, FF, L = 2 * 8, 16, 40, 4
MODEL = f"""
vocab = 50
d = {D}
f = {FF}
batch = 2
seq = 8
model m(input = [batch, seq]) {{
  embedding emb(vocab, d)
  repeat {L} blocks {{
    linear up(d, f)
    linear down(f, d)
  }}
}}
"""
# per token: the stream (an iteration's input, which `up` saves) and `down`'s input
STREAM, INNER, IDS = N_TOK * D * 4, N_TOK * FF * 4, N_TOK * 8


def _measured(method: str, n: int) -> int:
    from torch.utils.checkpoint import checkpoint

    from symmem.check import measure_saved

    torch.manual_seed(0)
    emb = torch.nn.Embedding(50, D)
    blocks = [torch.nn.Sequential(torch.nn.Linear(D, FF), torch.nn.Linear(FF, D)) for _ in range(L)]
    params = [p for m in (emb, *blocks) for p in m.parameters()]
    x = torch.randint(0, 50, (2, 8))

    def run(lo: int, hi: int) -> Any:
        def f(h: Any) -> Any:
            for blk in blocks[lo:hi]:
                h = blk(h)
            return h

        return f

    def forward() -> Any:
        h = emb(x)
        if method == "uniform":
            for lo in range(0, L, n):
                h = checkpoint(run(lo, min(lo + n, L)), h, use_reentrant=True)
        else:
            for i in range(L):
                h = checkpoint(run(i, i + 1), h, use_reentrant=True) if i < n else blocks[i](h)
        return h.sum()

    _, saved = measure_saved(forward, params)
    return sum(v[0] for v in saved.values())


@pytest.mark.parametrize("n", [1, 2, 3])
def test_uniform_groups(n: int) -> None:
    """Forward: the embedding's int64 ids and one stream tensor per group of n (ceil(4 / n)
    groups); backward recomputes one group: n iterations' `down` inputs and the n - 1 inputs
    inside the group (the group's own input is the checkpoint)."""
    m = symmem.parse(MODEL)
    r = m.memory(
        "train",
        precision="fp32",
        device="cpu",
        loss="none",
        checkpointing="full",
        recompute_num_layers=n,
    )
    groups = -(-L // n)
    assert _measured("uniform", n) == IDS + groups * STREAM
    assert r.activations.evaluate() == IDS + groups * STREAM + n * INNER + (n - 1) * STREAM


@pytest.mark.parametrize("n", [1, 3, 4])
def test_block(n: int) -> None:
    """Forward: the ids, the inputs of the first n iterations (checkpointed), and both saved
    tensors of each of the other 4 - n; backward recomputes one iteration (its `down` input)."""
    m = symmem.parse(MODEL)
    r = m.memory(
        "train",
        precision="fp32",
        device="cpu",
        loss="none",
        checkpointing="full",
        recompute_method="block",
        recompute_num_layers=n,
    )
    stored = IDS + n * STREAM + (L - n) * (STREAM + INNER)
    assert _measured("block", n) == stored
    assert r.activations.evaluate() == stored + INNER


def test_per_pipeline_stage() -> None:
    """Megatron counts N per pipeline rank (``num_layers_per_pipeline_rank``): with pp 2 each
    stage holds 2 of the 4 iterations, one micro-batch in flight.  By hand, the first stage
    (the embedding's ids, its 2 iterations) and the recomputed set:
    block N = 1: one checkpoint + one whole iteration, then one iteration's `down` input;
    uniform N = 2: one group per stage (one checkpoint), then 2 `down` inputs + 1 inner input."""
    m = symmem.parse(MODEL)
    opts: dict[str, Any] = {
        "precision": "fp32",
        "device": "cpu",
        "loss": "none",
        "checkpointing": "full",
        "pp": 2,
        "micro_batches": 1,
    }
    block = m.memory("train", recompute_method="block", recompute_num_layers=1, **opts)
    assert block.activations.evaluate() == IDS + STREAM + (STREAM + INNER) + INNER
    uniform = m.memory("train", recompute_num_layers=2, **opts)
    assert uniform.activations.evaluate() == IDS + STREAM + 2 * INNER + STREAM


def test_cli_and_refusals() -> None:
    r = CliRunner().invoke(
        app,
        [
            "memory",
            "gpt2",
            "--json",
            "--checkpointing",
            "full",
            "--recompute-method",
            "block",
            "--recompute-num-layers",
            "4",
        ],
    )
    assert r.exit_code == 0, r.output
    assert '"recompute_method": "block"' in r.output
    m = symmem.load("gpt2")
    with pytest.raises(OptionError, match="checkpointing = full"):
        m.memory("train", recompute_num_layers=2)
    with pytest.raises(OptionError, match=">= 1"):
        m.memory("train", checkpointing="full", recompute_num_layers=0)
