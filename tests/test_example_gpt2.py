"""examples/gpt2.mem against transformers' GPT2LMHeadModel (tied head) and by hand."""

from __future__ import annotations

import pytest
import sympy

import symmem
from symmem.symbols import sym


def test_gpt2_small_exact() -> None:
    # Hand derivation (GPT-2 small, d = 768, L = 12, V = 50257, n_ctx = 1024):
    # wte V*d + wpe 1024*d + L*(12 d^2 + 13 d) + ln_f 2d, head tied
    d, L, V = 768, 12, 50257
    expected = V * d + 1024 * d + L * (12 * d * d + 13 * d) + 2 * d
    assert expected == 124_439_808
    assert int(symmem.load("gpt2").params().total) == expected


def test_gpt2_formula_in_d_model() -> None:
    m = symmem.load("examples/gpt2.mem", free=["d_model"])
    d = sym("d_model")
    # 12 layers x 12 d^2 + (13*12 + 2) d + (V + n_ctx) d
    assert (
        sympy.expand(m.params().total.evaluate() - (144 * d**2 + (156 + 2 + 50257 + 1024) * d)) == 0
    )


def test_gpt2_matches_transformers() -> None:
    torch = pytest.importorskip("torch")
    transformers = pytest.importorskip("transformers")
    cfg = transformers.GPT2Config(
        n_embd=768, n_layer=12, n_head=12, vocab_size=50257, n_positions=1024
    )
    with torch.device("meta"):
        model = transformers.GPT2LMHeadModel(cfg)
    assert sum(p.numel() for p in model.parameters()) == int(symmem.load("gpt2").params().total)


@pytest.mark.parametrize(("d", "layers", "heads"), [(64, 2, 4), (1024, 24, 16), (1600, 48, 25)])
def test_gpt2_family_sizes_match_transformers(d: int, layers: int, heads: int) -> None:
    torch = pytest.importorskip("torch")
    transformers = pytest.importorskip("transformers")
    cfg = transformers.GPT2Config(n_embd=d, n_layer=layers, n_head=heads)
    with torch.device("meta"):
        model = transformers.GPT2LMHeadModel(cfg)
    m = symmem.load("gpt2", set_values={"d_model": d, "n_layers": layers, "n_heads": heads})
    assert int(m.params().total) == sum(p.numel() for p in model.parameters())
