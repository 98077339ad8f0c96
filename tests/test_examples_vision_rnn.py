"""The vision and recurrent examples: resnet50, vgg16, lstm_lm, seed_formulas.

Expected totals come from torchvision's documentation (torchvision cannot be installed
next to torch 2.13 here), from a hand derivation, and independently from PyTorch: each
example is rebuilt as a torch module from symmem's own per-layer ``to_torch`` by a small
walker (sequence / repeat / residual / parallel), its parameters counted with
``sum(p.numel())`` and its output shape checked by a forward pass (on the meta device for
the image models, so no memory or time is spent).
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

import pytest
import sympy
from typer.testing import CliRunner

import symmem
from symmem.cli import app
from symmem.graph import GroupNode, LayerNode
from symmem.symbols import sym

ROOT = Path(__file__).resolve().parent.parent
EXAMPLES = ROOT / "examples"


# torchvision docs, "num_params" of the weights tables:
# https://pytorch.org/vision/stable/models/generated/torchvision.models.resnet50.html
# (IMAGENET1K_V1)
RESNET50_TORCHVISION = 25_557_032
# https://pytorch.org/vision/stable/models/generated/torchvision.models.vgg16.html (IMAGENET1K_V1)
VGG16_TORCHVISION = 138_357_544
# PyTorch examples/word_language_model at main.py defaults (LSTM, emsize = nhid = 200,
# nlayers = 2, untied) on WikiText-2 (33,278 words), by hand:
#   encoder   33,278 * 200                         = 6,655,600
#   lstm      2 layers * 4 * (200*200 + 200*200 + 2*200) = 643,200   (PyTorch: b_ih and b_hh)
#   decoder   200 * 33,278 + 33,278                = 6,688,878
LSTM_LM_BY_HAND = 6_655_600 + 643_200 + 6_688_878  # 13,987,678


# ---------------------------------------------------------------- a torch walker


def to_torch_model(m: symmem.Model) -> Any:
    """An nn.Module that runs the layer graph with each layer's own to_torch module."""
    pytest.importorskip("torch")
    from torch import nn

    def ev(e: sympy.Expr) -> int:
        return int(sympy.sympify(e).xreplace(m.values))

    made: dict[str, Any] = {}

    class Seq(nn.Module):
        def __init__(self, parts: list[Any]) -> None:
            super().__init__()
            self.parts = nn.ModuleList(parts)

        def forward(self, x: Any) -> Any:
            for p in self.parts:
                x = p(x)
            return x

    class Residual(nn.Module):
        def __init__(self, body: Any) -> None:
            super().__init__()
            self.body = body

        def forward(self, x: Any) -> Any:
            return x + self.body(x)

    class Parallel(nn.Module):
        def __init__(self, branches: list[Any]) -> None:
            super().__init__()
            self.branches = nn.ModuleList(branches)

        def forward(self, x: Any) -> Any:
            return sum(b(x) for b in self.branches)

    def build(node: LayerNode | GroupNode) -> Any:
        if isinstance(node, LayerNode):
            module = node.layer.to_torch(ev)
            if node.tie is not None:
                module.weight = made[node.tie].weight
            made[node.path] = module
            return module
        if node.kind == "repeat":
            return Seq([Seq([build(c) for c in node.body]) for _ in range(ev(node.count))])
        if node.kind == "residual":
            return Residual(Seq([build(c) for c in node.body]))
        if node.kind == "parallel":
            return Parallel([build(b) for b in node.body])
        return Seq([build(c) for c in node.body])

    return build(m.graph.root)


def numel(module: Any) -> int:
    return sum(p.numel() for p in module.parameters())  # shared (tied) tensors once


def concrete(m: symmem.Model, shape: tuple[sympy.Expr, ...]) -> tuple[int, ...]:
    return tuple(int(sympy.sympify(s).xreplace(m.values)) for s in shape)


# ---------------------------------------------------------------- resnet50, vgg16


@pytest.mark.parametrize(
    ("name", "published"), [("resnet50", RESNET50_TORCHVISION), ("vgg16", VGG16_TORCHVISION)]
)
def test_image_model_matches_torchvision_count(name: str, published: int) -> None:
    by_path = symmem.load(EXAMPLES / f"{name}.mem")
    by_name = symmem.load(name)
    assert by_path.params().total.evaluate() == published
    assert by_name.params().total.evaluate() == published
    # [batch, 3, 224, 224] -> [batch, 1000]
    assert by_path.graph.input_shape == (sym("batch"), 3, 224, 224)
    assert by_path.graph.root.out_shape == (sym("batch"), sym("num_classes"))
    assert concrete(by_path, by_path.graph.root.out_shape) == (32, 1000)


@pytest.mark.parametrize("name", ["resnet50", "vgg16"])
def test_image_model_rebuilt_in_torch(name: str) -> None:
    torch = pytest.importorskip("torch")
    m = symmem.load(name)
    with torch.device("meta"):
        model = to_torch_model(m).eval()
        out = model(torch.empty(*concrete(m, m.graph.input_shape)))
    assert numel(model) == m.params().total.evaluate()
    assert tuple(out.shape) == concrete(m, m.graph.root.out_shape) == (32, 1000)
    # buffers (batchnorm statistics): include_buffers counts what state_dict() holds
    state = sum(t.numel() for t in model.state_dict().values())
    assert m.params(include_buffers=True).total.evaluate() == state
    assert m.params().buffers.evaluate() == sum(b.numel() for b in model.buffers())


def test_resnet50_uses_repeat_not_unrolled_blocks() -> None:
    m = symmem.load("resnet50")
    repeats = [n for n in _groups(m.graph.root) if n.kind == "repeat"]
    assert sorted(int(r.count) for r in repeats) == [2, 2, 3, 5]  # (3, 4, 6, 3) blocks - 1
    # 53 convolutions + fc: 1 stem + 4 projections + 16 blocks * 3, counted with multiplicity
    convs = sum(int(mult) for node, mult in m.graph.walk() if node.layer.kind == "conv2d")
    assert convs == 53


def _groups(node: GroupNode) -> list[GroupNode]:
    out = [node]
    for child in node.body:
        if isinstance(child, GroupNode):
            out += _groups(child)
    return out


# ---------------------------------------------------------------- lstm_lm


def test_lstm_lm_count_by_hand_and_in_torch() -> None:
    torch = pytest.importorskip("torch")
    m = symmem.load(EXAMPLES / "lstm_lm.mem")
    assert m.params().total.evaluate() == LSTM_LM_BY_HAND == 13_987_678
    assert symmem.load("lstm_lm").params().total.evaluate() == LSTM_LM_BY_HAND
    m = m.with_values({"batch": 2, "seq_len": 3})
    model = to_torch_model(m).eval()
    assert numel(model) == LSTM_LM_BY_HAND
    with torch.no_grad():
        out = model(torch.zeros(2, 3, dtype=torch.long))
    assert tuple(out.shape) == concrete(m, m.graph.root.out_shape) == (2, 3, 33278)


def test_lstm_lm_tied_variant() -> None:
    torch = pytest.importorskip("torch")
    # --tied needs nhid == emsize (model.py raises otherwise): one symbol for both
    text = (
        (EXAMPLES / "lstm_lm.mem").read_text().replace("nhid = 200\n", "").replace("nhid", "emsize")
    )
    text = text.replace(
        "linear decoder(emsize, vocab)", "linear decoder(emsize, vocab, tie = encoder)"
    )
    assert "tie = encoder" in text
    m = symmem.parse(text)
    # --tied: decoder.weight is encoder.weight, counted once: only the decoder bias remains
    assert m.params().total.evaluate() == LSTM_LM_BY_HAND - 200 * 33_278
    assert numel(to_torch_model(m)) == LSTM_LM_BY_HAND - 200 * 33_278
    assert torch is not None


# ---------------------------------------------------------------- seed formulas


@pytest.mark.parametrize(
    ("model", "formula"),
    [
        ("dense", lambda s: s["d_in"] * s["d_out"] + s["d_out"]),
        ("conv2d", lambda s: s["c_out"] * s["c_in"] * s["k"] ** 2 + s["c_out"]),
        (
            "lstm_keras",
            lambda s: 4 * (s["d_in"] * s["d_hidden"] + s["d_hidden"] ** 2 + s["d_hidden"]),
        ),
        (
            "lstm_pytorch",
            lambda s: 4 * (s["d_in"] * s["d_hidden"] + s["d_hidden"] ** 2 + 2 * s["d_hidden"]),
        ),
    ],
)
def test_seed_formulas(model: str, formula: Any) -> None:
    names = ("d_in", "d_out", "d_hidden", "c_in", "c_out", "k")
    s = {n: sym(n) for n in names}
    for m in (
        symmem.load(EXAMPLES / "seed_formulas.mem", model=model),
        symmem.load("seed_formulas", model=model),
    ):
        assert sympy.expand(m.params().total.expr - formula(s)) == 0


def test_seed_formulas_need_a_model_name() -> None:
    with pytest.raises(symmem.SymmemError, match="several models"):
        symmem.load("seed_formulas")


# ---------------------------------------------------------------- CLI


def test_cli_params_resnet50(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.chdir(ROOT)
    r = CliRunner().invoke(app, ["params", "examples/resnet50.mem"])
    assert r.exit_code == 0, r.output
    assert "25,557,032" in r.output


def test_cli_params_seed_formula_by_model_option() -> None:
    r = CliRunner().invoke(app, ["params", "seed_formulas", "--model", "lstm_keras"])
    assert r.exit_code == 0, r.output
    assert "4*d_hidden**2 + 4*d_hidden*d_in + 4*d_hidden" in r.output
