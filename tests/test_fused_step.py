"""The optimizer step fused into backward (--fused-optimizer-step).

Oracle: PyTorch's tutorial "How to save memory by fusing the optimizer step into the backward
pass" (one optimizer per parameter, stepped and its gradient freed in a
``register_post_accumulate_grad_hook``), run on the CPU: at every hook the bytes of the
gradients alive are summed; their maximum over the backward pass is what symmem's gradients
component must be.
"""

from __future__ import annotations

from typing import Any

import pytest
from typer.testing import CliRunner

import symmem
from symmem.cli import app
from symmem.errors import OptionError

torch = pytest.importorskip("torch")

MODEL = """
vocab = 50
d = 16
f = 40
batch = 2
seq = 8
model m(input = [batch, seq]) {
  embedding emb(vocab, d)
  repeat 3 blocks {
    linear up(d, f)
    linear down(f, d)
  }
  linear head(d, vocab, bias = false)
}
"""


def _torch_net() -> Any:
    layers: list[Any] = [torch.nn.Embedding(50, 16)]
    for _ in range(3):
        layers += [torch.nn.Linear(16, 40), torch.nn.Linear(40, 16)]
    layers.append(torch.nn.Linear(16, 50, bias=False))
    return torch.nn.Sequential(*layers)


def _live_gradient_peak(fused: bool) -> int:
    torch.manual_seed(0)
    net = _torch_net()
    params = list(net.parameters())
    peak = [0]

    def alive() -> int:
        return sum(q.grad.numel() * q.grad.element_size() for q in params if q.grad is not None)

    if fused:
        opts = {p: torch.optim.AdamW([p]) for p in params}

        def hook(p: Any) -> None:
            peak[0] = max(peak[0], alive())
            opts[p].step()
            opts[p].zero_grad(set_to_none=True)

        for p in params:
            p.register_post_accumulate_grad_hook(hook)
    x = torch.randint(0, 50, (2, 8))
    out = net(x)
    torch.nn.functional.cross_entropy(out.reshape(-1, 50), x.reshape(-1)).backward()
    return peak[0] if fused else alive()


def test_one_gradient_at_a_time_measured() -> None:
    """Fused: the largest single gradient is alive at once, the embedding's 50 x 16 x 4 = 3,200
    bytes (a repeated layer's gradient is one iteration's, 40 x 16 x 4 + 40 x 4 = 2,720); not
    fused: all of them, 4 x (800 + 3 x (680 + 656) + 800) = 22,432 bytes."""
    m = symmem.parse(MODEL)
    fused = m.memory("train", precision="fp32", fused_optimizer_step=True)
    plain = m.memory("train", precision="fp32")
    assert int(fused.gradients.evaluate()) == _live_gradient_peak(True) == 3_200
    assert int(plain.gradients.evaluate()) == _live_gradient_peak(False) == 22_432
    # the optimizer's state is untouched
    assert fused.optimizer.evaluate() == plain.optimizer.evaluate()


def test_llama_gradients_are_the_embedding() -> None:
    """Llama-3.1-8B in mixed bf16: the largest tensor is the 128,256 x 4,096 embedding (the
    untied head is the same size): its bf16 gradient, 1,050,673,152 bytes, instead of all
    8,030,261,248 parameters' x 2."""
    m = symmem.load("llama3.1-8b")
    r = m.memory("train", fused_optimizer_step=True)
    assert r.gradients.evaluate() == 128_256 * 4_096 * 2
    assert m.memory("train").gradients.evaluate() == 8_030_261_248 * 2


def test_cli_and_refusals() -> None:
    r = CliRunner().invoke(app, ["memory", "gpt2", "--fused-optimizer-step", "--json"])
    assert r.exit_code == 0, r.output
    assert '"fused_optimizer_step": true' in r.output
    m = symmem.load("llama3.1-8b")
    with pytest.raises(OptionError, match="pp = 1"):
        m.memory("train", fused_optimizer_step=True, pp=2)
    with pytest.raises(OptionError, match="choose one"):
        m.memory("train", fused_optimizer_step=True, offload="optimizer", zero=1, dp=2)
