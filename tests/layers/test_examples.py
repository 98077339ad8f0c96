"""Every example of every registered layer kind, built in PyTorch and measured.

Generic over the catalogue (``symmem.layers.kinds()``): a new kind declares its
``examples`` and is covered here, with no list to update.  For each example:

* the parameters of its PyTorch module (``to_torch``; ``sum(p.numel())``, each
  ``Parameter`` once) equal the formula, layer by layer and in total;
* the bytes autograd keeps for backward in one forward pass
  (``torch.autograd.graph.saved_tensors_hooks``, by storage, parameters and
  buffers excluded, as ``symmem check`` measures them) equal the formula
  (``symmem.activations.saved_tensors``), on the CPU in fp32 and in bf16, and
  for a layer that attends, with eager and sdpa attention.

The input requires grad (a float input; an id input is int64), as a layer's
input does inside a network.
"""

from __future__ import annotations

import pytest
import sympy

import symmem
from symmem.activations import ActPolicy, entries_bytes, saved_tensors
from symmem.layers import kinds
from symmem.layers.base import Example, Layer
from symmem.policy import Attention

ALL = kinds()
EXAMPLES = [(cls, i, ex) for cls in ALL for i, ex in enumerate(cls.examples)]


def _id(item: tuple[type[Layer], int, Example]) -> str:
    cls, i, _ = item
    return f"{cls.kind}-{i}"


def _model(ex: Example) -> symmem.Model:
    return symmem.parse(ex.dsl())


@pytest.mark.parametrize("cls", ALL, ids=lambda c: c.kind)
def test_every_kind_has_an_example_of_itself(cls: type[Layer]) -> None:
    assert cls.examples, f"{cls.kind} declares no examples"
    m = _model(cls.examples[0])
    assert any(type(node.layer) is cls for node, _ in m.graph.walk()), (
        f"{cls.kind}'s first example does not use it"
    )


@pytest.mark.parametrize("item", EXAMPLES, ids=_id)
def test_example_parses_with_numbers_only(item: tuple[type[Layer], int, Example]) -> None:
    # every size is a number: the example builds without --set
    m = _model(item[2])
    assert isinstance(m.params().total.evaluate(), int)


def _built(ex: Example, attention: Attention = "sdpa"):
    from symmem.torch_build import build

    m = _model(ex)
    try:
        return m, build(m.graph, m.values, attention)
    except NotImplementedError as exc:
        pytest.skip(f"no PyTorch equivalent: {exc}")


@pytest.mark.parametrize("item", EXAMPLES, ids=_id)
def test_example_parameters_and_shape_equal_pytorch(item: tuple[type[Layer], int, Example]) -> None:
    torch = pytest.importorskip("torch")
    from symmem.torch_build import make_inputs

    m, built = _built(item[2])
    unique = {id(p): p.numel() for p in built.module.parameters()}
    assert sum(unique.values()) == m.params().total.evaluate()
    for row in m.params().rows:
        measured = sum(p.numel() for mod in built.instances[row.path] for p in mod.parameters())
        assert measured == row.count.xreplace(m.values), row.path
    x, _ = make_inputs(m.graph, m.values, torch.float32)
    out = built.module(x)
    assert tuple(out.shape) == tuple(
        int(sympy.sympify(d).xreplace(m.values)) for d in m.graph.root.out_shape
    )


def _attends(ex: Example) -> bool:
    return any(node.layer.attends() is not None for node, _ in _model(ex).graph.walk())


SAVED_CASES = [
    (item, dtype, attention)
    for item in EXAMPLES
    for dtype in ("fp32", "bf16")
    for attention in (("eager", "sdpa") if _attends(item[2]) else ("sdpa",))
]


@pytest.mark.parametrize(
    "item,dtype,attention", SAVED_CASES, ids=[f"{_id(c[0])}-{c[1]}-{c[2]}" for c in SAVED_CASES]
)
def test_example_saved_bytes_equal_pytorch(
    item: tuple[type[Layer], int, Example], dtype: str, attention: Attention
) -> None:
    torch = pytest.importorskip("torch")
    from symmem import dtypes
    from symmem.check import measure_saved, native_kernels
    from symmem.torch_build import make_inputs

    m, built = _built(item[2], attention)
    policy = ActPolicy(device="cpu", dtype=dtype, attention=attention, loss="none")
    torch.manual_seed(0)
    net = built.module.to(dtype=getattr(torch, dtypes.torch_name(dtype))).train()
    x, _ = make_inputs(m.graph, m.values, getattr(torch, dtypes.torch_name(dtype)))
    if x.is_floating_point():
        x.requires_grad_(True)
    params = [*net.parameters(), *net.buffers()]
    layers = [node.layer for node, _ in m.graph.walk()]
    with native_kernels(layers, policy):
        _, seen = measure_saved(lambda: net(x), params)
    measured = sum(b for b, _ in seen.values())
    formula = entries_bytes(saved_tensors(m.graph, policy), policy)
    assert sympy.sympify(formula).xreplace(m.values) == measured, seen
