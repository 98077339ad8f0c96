"""Chunked and fused cross-entropy (--loss chunked_cross_entropy | fused_linear_cross_entropy).

Oracles: PyTorch on the CPU.  torchtune's ``CEWithChunkedOutputLoss`` and its decoder's chunked
output projection are written out below as torchtune writes them (pure torch); Liger-Kernel's
``LigerFusedLinearCrossEntropyFunction`` is a Triton kernel, so its algorithm is written out in
torch ops (the same chunk loop, the same tensors saved in ``ctx``) and what it saves is measured
with ``saved_tensors_hooks``; its transient (one chunk's logits) and chunk rule are derived by
hand beside the test from liger_kernel/ops/fused_linear_cross_entropy.py.
"""

from __future__ import annotations

import gc
import json
from typing import Any

import pytest
import sympy
from typer.testing import CliRunner

import symmem
from symmem.activations import chunk_rows_liger, entries_bytes, saved_tensors, transient
from symmem.cli import app
from symmem.errors import OptionError
from symmem.policy import ActPolicy
from symmem.values import substitute

torch = pytest.importorskip("torch")
F = torch.nn.functional

B, S, H, V, C = 2, 16, 8, 64, 4
MODEL = f"""
vocab = {V}
d = {H}
batch = {B}
seq = {S}
model m(input = [batch, seq]) {{
  embedding emb(vocab, d)
  linear head(d, vocab, bias = false)
}}
"""


def _net() -> tuple[Any, Any, Any, Any]:
    torch.manual_seed(0)
    emb = torch.nn.Embedding(V, H)
    head = torch.nn.Linear(H, V, bias=False)
    x = torch.randint(0, V, (B, S))
    y = torch.randint(0, V, (B, S))
    return emb, head, x, y


def _torchtune_loss(emb: Any, head: Any, x: Any, y: Any) -> Any:
    """torchtune: TransformerDecoder.chunked_output (``[self.output(chunk) for chunk in
    h.chunk(num_output_chunks, dim=1)]``) and CEWithChunkedOutputLoss.forward (labels chunked
    the same way, ``F.cross_entropy(logits.float(), labels, reduction="sum")`` per chunk, the sum
    divided by the count of tokens).  The recipe deletes the logits before backward."""
    h = emb(x)
    logits = [head(chunk) for chunk in h.chunk(C, dim=1)]
    labels = [t.reshape(-1) for t in y.chunk(C, dim=1)]
    total = 0.0
    for lc, tc in zip(logits, labels, strict=True):
        total = total + F.cross_entropy(lc.reshape(-1, V).float(), tc, reduction="sum")
    return total / (y != -100).sum()


def _measure(loss_fn: Any) -> tuple[int, int]:
    from symmem.check import measure_peak_cpu, measure_saved

    emb, head, x, y = _net()
    params = [emb.weight, head.weight]
    _, saved = measure_saved(lambda: loss_fn(emb, head, x, y), params, lambda: "model")
    saved_bytes = sum(v[0] for v in saved.values())
    for p in params:
        p.grad = None

    def step() -> None:
        loss_fn(emb, head, x, y).backward()

    gc.disable()
    try:
        peak = measure_peak_cpu(step)
    finally:
        gc.enable()
    return saved_bytes, peak


def _formula(loss: str, **kw: Any) -> tuple[int, int]:
    m = symmem.parse(MODEL)
    policy = ActPolicy(device="cpu", loss=loss, **kw)  # type: ignore[arg-type]
    saved = entries_bytes(saved_tensors(m.graph, policy, m.values), policy)
    trans = entries_bytes(transient(m.graph, policy), policy)
    return int(substitute(saved, m.values)), int(substitute(trans, m.values))


def test_chunked_saved_tensors_measured() -> None:
    """Every chunk's log-probabilities stay saved (n x V fp32 in all, as unchunked), each
    chunk's nll_loss keeps its own scalar total weight, and the division by the token count
    keeps that int64 count: 9,732 + 3 x 4 (more total weights) + 8 = 9,752 bytes."""
    measured, _ = _measure(_torchtune_loss)
    formula, _ = _formula("chunked_cross_entropy", loss_chunks=C)
    assert formula == measured == 9_752


def test_chunked_peak_measured() -> None:
    """Hand derivation of the step's two candidate peaks (fp32, n = B x S = 32 tokens):
    end of the loss's forward: saved (9,752) + every chunk's logits n V 4 = 8,192 -> 17,944;
    first chunk's backward: saved + its two gradients 2 x (n / C) V 4 = 4,096 + the parameter
    gradients (2 x V H 4 = 4,096) + the gradient of the hidden states (n H 4 = 1,024) ->
    18,968.  The measured peak is the second, within the scalars autograd makes (< 64 bytes).
    symmem's transient is the larger of the logits and the two chunk gradients (the parameter
    gradients are the memory model's gradients component)."""
    _, peak = _measure(_torchtune_loss)
    saved, trans = _formula("chunked_cross_entropy", loss_chunks=C)
    n = B * S
    assert trans == max(n * V * 4, 2 * (n // C) * V * 4) == 8_192
    backward_moment = saved + 2 * (n // C) * V * 4 + 2 * V * H * 4 + n * H * 4
    assert 0 <= peak - backward_moment < 64
    assert peak <= saved + trans + 2 * V * H * 4  # the memory model's bound holds


def test_unchunked_loss_unchanged() -> None:
    """The plain loss keeps its measured rule: log-probabilities, targets, total weight
    (9,732 bytes here) and a transient of the logits and both n x V gradients."""
    saved, trans = _formula("cross_entropy")
    assert saved == 9_732 and trans == 3 * B * S * V * 4


class _LigerLike(torch.autograd.Function):  # type: ignore[name-defined]
    """Liger-Kernel's fused linear cross entropy, its chunk loop in torch ops: in forward each
    chunk's logits are computed, turned into their gradient, and folded into grad_input and
    grad_weight; ``ctx.save_for_backward(grad_input, grad_weight)`` is all it keeps."""

    @staticmethod
    def forward(ctx: Any, x: Any, weight: Any, target: Any, rows: int) -> Any:
        n = x.shape[0]
        grad_input = torch.zeros_like(x)
        grad_weight = torch.zeros_like(weight)
        loss_1d = torch.zeros(n, dtype=torch.float32)
        for start in range(0, n, rows):
            xc = x[start : start + rows]
            logits = xc @ weight.t()
            lse = torch.logsumexp(logits, dim=-1)
            tc = target[start : start + rows]
            loss_1d[start : start + rows] = lse - logits.gather(1, tc[:, None])[:, 0]
            grad = torch.softmax(logits, dim=-1)
            grad[torch.arange(len(tc)), tc] -= 1
            grad /= n
            grad_input[start : start + rows] = grad @ weight
            grad_weight += grad.t() @ xc
        ctx.save_for_backward(grad_input.detach(), grad_weight.detach())
        return loss_1d.sum() / n

    @staticmethod
    def backward(ctx: Any, grad_output: Any) -> Any:
        grad_input, grad_weight = ctx.saved_tensors
        return grad_input * grad_output, grad_weight * grad_output, None, None


def test_fused_saved_tensors_measured() -> None:
    """Liger keeps grad_input (n x H, the hidden's dtype) and grad_weight (V x H, the head's
    gradient, which the memory model counts as a gradient); the head keeps no input of its own
    and no log-probabilities exist.  symmem counts the head's saved input (n x H, the same size
    and dtype) for grad_input and nothing for the loss: formula = measured - V x H x 4."""
    from symmem.check import measure_saved

    emb, head, x, y = _net()

    def loss_fn() -> Any:
        h = emb(x).reshape(-1, H)
        return _LigerLike.apply(h, head.weight, y.reshape(-1), 8)

    _, saved = measure_saved(loss_fn, [emb.weight, head.weight], lambda: "model")
    measured = sum(v[0] for v in saved.values())
    formula, trans = _formula("fused_linear_cross_entropy", loss_chunks=C)
    assert formula == measured - V * H * 4
    # one chunk's logits (n / C rows x V, fp32 here) and the fp32 per-token losses (n)
    assert trans == (B * S // C) * V * 4 + B * S * 4


def _liger_rows(bt: int, vocab: int, width: int) -> int:
    """liger_kernel/ops/fused_linear_cross_entropy.py, with chunk_mem_const = 1:
    inc_factor = cdiv(V, H); chunk_size = min(next_power_of_2(cdiv(BT, inc_factor)), BT)."""
    inc = -(-vocab // width)
    rows = -(-bt // inc)
    return min(1 << (rows - 1).bit_length(), bt)


@pytest.mark.parametrize(
    ("bt", "vocab", "width"),
    [(16384, 32000, 4096), (8192, 128256, 4096), (4096, 151936, 896), (7, 64, 8)],
)
def test_liger_chunk_rule(bt: int, vocab: int, width: int) -> None:
    """Liger's own comment: BT = 4096 x 4, V = 32000, H = 4096 gives chunk_size 2048."""
    assert chunk_rows_liger(sympy.Integer(bt), vocab, width) == _liger_rows(bt, vocab, width)
    if (bt, vocab, width) == (16384, 32000, 4096):
        assert _liger_rows(bt, vocab, width) == 2048


def test_fused_default_chunks_on_llama() -> None:
    """Llama-3.1-8B at batch 1, 8192 tokens, bf16: Liger's chunk is next_power_of_2(
    cdiv(8192, cdiv(128256, 4096) = 32) = 256) = 256 rows, so the transient is 256 x 128,256
    x 2 bytes of logits + 8192 x 4 of per-token losses, against the plain loss's bf16 logits
    and two fp32 n x V gradients."""
    m = symmem.load("llama3.1-8b").with_values({"batch": 1, "seq_len": 8192})
    fused = m.memory("train", loss="fused_linear_cross_entropy")
    plain = m.memory("train")
    assert fused.transient.evaluate() == 256 * 128_256 * 2 + 8192 * 4
    assert plain.transient.evaluate() == 8192 * 128_256 * (2 + 4 + 4)
    # the log-probabilities (n x V fp32) and the targets / total weight are not kept
    drop = 8192 * 128_256 * 4 + 8192 * 8 + 4
    assert plain.activations.evaluate() - fused.activations.evaluate() == drop


def test_cli_and_errors() -> None:
    r = CliRunner().invoke(
        app,
        ["memory", "gpt2", "--json", "--loss", "chunked_cross_entropy", "--loss-chunks", "4"],
    )
    assert r.exit_code == 0, r.output
    doc = json.loads(r.output)
    assert doc["config"]["loss"] == "chunked_cross_entropy" and doc["config"]["loss_chunks"] == 4
    with pytest.raises(OptionError, match="loss_chunks"):
        symmem.load("gpt2").memory("train", loss_chunks=4)
