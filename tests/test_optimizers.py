"""Optimizer presets (symmem.optimizers) and the bytes per parameter of published setups.

Each published figure comes out of named choices (weight dtype, gradient dtype, master
weights, an fp32 gradient copy, ZeRO sharding), never a constant.
"""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

import pytest
import sympy

import symmem
from symmem.errors import OptionError
from symmem.optimizers import OPTIMIZERS, optimizer

if TYPE_CHECKING:
    import torch

# one parameter tensor of n values: weights + gradients + optimizer = bytes per parameter x n
ONE = """
n
model m(input = [batch, 1]) { param w(n) }
"""
D = sympy.Symbol("d", positive=True, integer=True)


def per_param(**options: Any) -> sympy.Expr:
    m = symmem.parse(ONE)
    r = m.memory("train", **options)
    n = m.symbol("n")
    return sympy.simplify((r.weights.expr + r.gradients.expr + r.optimizer.expr) / n)


def test_seed_fp32_adam_16_bytes() -> None:
    """fp32 weights 4 + fp32 gradients 4 + Adam's two fp32 states 8 = 16 = 4 x the 4 bytes of the
    weights."""
    assert per_param(precision="fp32", optimizer="adam") == 16


def test_zero_paper_16_bytes() -> None:
    """ZeRO (Rajbhandari et al. 2020, Section 3.1): fp16 parameters 2 + fp16 gradients 2 +
    K = 12 bytes of optimizer state (fp32 master parameters, momentum, variance)."""
    assert per_param(precision="mixed-fp16", optimizer="adam") == 2 + 2 + 12


def test_megatron_18_bytes() -> None:
    """Megatron-LM / llm-analysis with bf16: bf16 parameters 2 + an fp32 gradient accumulation
    buffer (main_grad) 4 + fp32 master 4 + Adam 8 = 18 (Megatron-Core distributed optimizer docs,
    "bf16 parameters, fp32 gradients: 18")."""
    assert per_param(precision="mixed-bf16", grad_dtype="fp32", optimizer="adam") == 18


def test_zero_infinity_20_bytes() -> None:
    """ZeRO-Infinity (Rajbhandari et al. 2021, Section 3): fp16 parameters and gradients (2 + 2) and
    fp32 optimizer states of momentum, variance, parameters and gradients (4 x 4): 20 bytes
    (Megatron-Core's "fp16 parameters, fp16 gradients: 20" is the same set)."""
    assert per_param(precision="mixed-fp16", grad_fp32_copy=True, optimizer="adam") == 20


@pytest.mark.parametrize(
    ("options", "plain", "distributed"),
    [
        ({"precision": "mixed-fp16", "grad_fp32_copy": True}, 20, 4 + 16 / D),
        ({"precision": "mixed-bf16", "grad_dtype": "fp32"}, 18, 6 + 12 / D),
        ({"precision": "fp32"}, 16, 8 + 8 / D),
    ],
    ids=["fp16 params fp16 grads", "bf16 params fp32 grads", "fp32 params fp32 grads"],
)
def test_megatron_distributed_optimizer_table(
    options: dict, plain: int, distributed: sympy.Expr
) -> None:
    """Megatron-Core developer guide, Distributed Optimizer: bytes per parameter without and with
    the distributed optimizer over d data-parallel ranks (= ZeRO stage 1: the optimizer state,
    master weights and fp32 gradient copy included, sharded; parameters and gradients not)."""
    assert per_param(optimizer="adam", **options) == plain
    assert sympy.simplify(per_param(optimizer="adam", zero=1, dp=D, **options) - distributed) == 0


@pytest.mark.parametrize(
    ("name", "states"),
    [("sgd", 0), ("sgd-momentum", 1), ("adam", 2), ("adamw", 2), ("lion", 1)],
)
def test_states_per_parameter(name: str, states: int) -> None:
    """fp32: 4 (weights) + 4 (gradients) + 4 per state."""
    assert per_param(precision="fp32", optimizer=name) == 8 + 4 * states


def test_adam8bit_state_bytes() -> None:
    """Dettmers et al. 2022 (block-wise 8-bit Adam): 2 states x (1 byte + one fp32 absmax per
    2048)."""
    assert per_param(precision="fp32", optimizer="adam8bit") == 8 + 2 * (
        1 + sympy.Rational(4, 2048)
    )


def test_state_dtype_bf16() -> None:
    """DeepSeek-V3 (Section 3.3.3) keeps AdamW moments in bf16: 2 bytes each."""
    assert (
        per_param(precision="mixed-bf16", grad_dtype="fp32", optimizer="adamw", state_dtype="bf16")
        == 2 + 4 + 4 + 4
    )


def test_adafactor_factored_second_moment() -> None:
    """Shazeer & Stern 2018, Algorithm 4: an r x c matrix keeps r + c second-moment values, a
    vector its full second moment; beta1 = 0 (the default): no first moment."""
    ada = optimizer("adafactor")
    r, c = sympy.symbols("r c", positive=True)
    assert ada.state_numel((r, c)) == (r + c, 0)
    assert ada.state_numel((r,)) == (r, 0)
    assert ada.state_numel((4, r, c)) == (4 * (r + c), 0)
    assert optimizer("adafactor-momentum").state_numel((r, c)) == (r * c + r + c, 0)


def test_adafactor_on_a_model() -> None:
    """GPT-2's attention and MLP matrices: per layer 4 x (768 + 768) + (3072 + 768) x 2 for the
    matrices, plus the vectors in full (biases 4d + 5d, layernorms 4d) = 13 x 768."""
    m = symmem.load("gpt2")
    r = m.memory("train", precision="fp32", optimizer="adafactor")
    d, V, n_ctx = 768, 50257, 1024
    per_layer = 4 * (d + d) + 2 * (4 * d + d) + 13 * d
    expected = 12 * per_layer + (V + d) + (n_ctx + d) + 2 * d  # wte, wpe, ln_f
    assert r.optimizer.evaluate() == 4 * expected


def test_unknown_optimizer() -> None:
    with pytest.raises(OptionError, match="adamw"):
        optimizer("rmsprop")


# ---------------------------------------------------------------- against PyTorch


def _torch_state_numel(opt: torch.optim.Optimizer) -> int:
    import torch

    total = 0
    for state in opt.state.values():
        for key, v in state.items():
            if isinstance(v, torch.Tensor) and key not in ("step", "RMS"):
                total += v.numel()
    return total


@pytest.mark.parametrize(
    "name", ["sgd", "sgd-momentum", "adam", "adamw", "adafactor", "adafactor-momentum"]
)
def test_state_matches_pytorch(name: str) -> None:
    """Build a tiny model, take one step, count the optimizer's state tensors."""
    torch = pytest.importorskip("torch")
    model = torch.nn.Sequential(
        torch.nn.Linear(6, 10), torch.nn.LayerNorm(10), torch.nn.Linear(10, 3, bias=False)
    )
    params = list(model.parameters())
    if name == "sgd":
        opt = torch.optim.SGD(params, lr=0.1)
    elif name == "sgd-momentum":
        opt = torch.optim.SGD(params, lr=0.1, momentum=0.9)
    elif name == "adam":
        opt = torch.optim.Adam(params)
    elif name == "adamw":
        opt = torch.optim.AdamW(params)
    else:
        transformers = pytest.importorskip("transformers")
        beta1 = 0.9 if name == "adafactor-momentum" else None
        opt = transformers.Adafactor(
            params,
            lr=1e-3,
            relative_step=False,
            scale_parameter=False,
            warmup_init=False,
            beta1=beta1,
        )
    model(torch.randn(4, 6)).sum().backward()
    opt.step()
    preset = OPTIMIZERS[name]
    ours = sum(int(preset.state_numel(tuple(p.shape))[0]) for p in params)
    assert ours == _torch_state_numel(opt)


def test_paged_adamw8bit_bitsandbytes_blocks() -> None:
    """bitsandbytes Optimizer2State.init_state (block-wise 8-bit): per tensor of n values two
    uint8 states (2n bytes) and two fp32 absmax vectors of ceil(n / 256) values.  By hand for
    a 1000 x 300 matrix (300,000 values: 1,172 blocks, the last partial) and a 10-vector (one
    block): 2 x 300,000 + 2 x 1,172 x 4 = 609,376 and 2 x 10 + 2 x 1 x 4 = 28 bytes."""
    paged = optimizer("paged_adamw_8bit")
    assert paged.name == "paged-adamw8bit" and paged.paged
    full, scales = paged.state_numel((1000, 300))
    assert full * 1 + scales == 609_376
    full, scales = paged.state_numel((10,))
    assert full + scales == 28


def test_paged_optimizer_on_the_gpu_with_a_note() -> None:
    """The paged state is counted on the GPU (where it lives until paged out), and said so;
    the 32-bit paged AdamW keeps what AdamW keeps."""
    m = symmem.load("gpt2")
    r = m.memory("train", optimizer="paged-adamw8bit")
    assert any("paged" in note for note in r.notes)
    assert (
        m.memory("train", optimizer="paged_adamw_32bit").optimizer.evaluate()
        == m.memory("train", optimizer="adamw").optimizer.evaluate()
    )
    assert r.host is not None and r.host.evaluate() == 0
