"""``repeat n shared { }``: one set of weights run n times (ALBERT's cross-layer sharing, Lan et
al. 2020 section 3.1): parameters, gradients and optimizer states once; saved activations once
per iteration.  ALBERT imported from its config is checked against transformers' AlbertModel:
its parameters (meta device) and its saved tensors per iteration (measured on CPU)."""

from __future__ import annotations

import json

import pytest

import symmem
from symmem.errors import OptionError
from symmem.hf.importer import config_text_to_mem

SHARED = """
d = 8
model m {
  embedding tok(50, d)
  repeat 3 shared { residual { linear(d, d) } }
  repeat 2 { linear shared(d, d) }
}
"""
PLAIN = SHARED.replace("repeat 3 shared {", "repeat 3 {")


def test_a_shared_repeat_counts_its_weights_once() -> None:
    m = symmem.parse(SHARED)
    # hand count: table 50*8 = 400; one shared linear 8*8+8 = 72; two plain ones 2*72
    assert m.params().total.evaluate() == 400 + 72 + 2 * 72
    assert symmem.parse(PLAIN).params().total.evaluate() == 400 + 3 * 72 + 2 * 72
    # "shared" stays a name where the keyword cannot stand (a layer named shared)
    assert m.graph.layer("repeat_1.shared").layer.kind == "linear"


def test_a_shared_repeat_keeps_activations_per_iteration() -> None:
    sets = {"batch": 2, "seq_len": 4}
    shared = symmem.parse(SHARED, set_values=sets).memory("train", precision="fp32")
    plain = symmem.parse(PLAIN, set_values=sets).memory("train", precision="fp32")
    assert shared.activations.evaluate() == plain.activations.evaluate()
    # weights, gradients: 4 bytes each for the 2 * 72 parameters the sharing saves; Adam: 8
    saved = 2 * 72
    assert plain.weights.evaluate() - shared.weights.evaluate() == 4 * saved
    assert plain.gradients.evaluate() - shared.gradients.evaluate() == 4 * saved
    assert plain.optimizer.evaluate() - shared.optimizer.evaluate() == 8 * saved


def test_pipeline_stages_over_a_shared_repeat_are_refused() -> None:
    m = symmem.parse(SHARED, set_values={"batch": 2, "seq_len": 4})
    with pytest.raises(OptionError, match="shares one set of weights"):
        m.memory("train", pp=3)


def test_the_torch_build_runs_one_body_count_times() -> None:
    torch = pytest.importorskip("torch")
    from symmem.torch_build import build

    m = symmem.parse(SHARED, set_values={"batch": 2, "seq_len": 4})
    built = build(m.graph, m.values)
    assert sum(p.numel() for p in built.module.parameters()) == m.params().total.evaluate()
    x = torch.randint(0, 50, (2, 4))
    assert built.module(x).shape == (2, 4, 8)


def _albert(layers: int, groups: int, inner: int) -> dict[str, object]:
    return dict(
        model_type="albert",
        vocab_size=100,
        embedding_size=16,
        hidden_size=32,
        num_hidden_layers=layers,
        num_hidden_groups=groups,
        inner_group_num=inner,
        num_attention_heads=4,
        intermediate_size=48,
        max_position_embeddings=32,
        hidden_act="gelu_new",
        hidden_dropout_prob=0.0,
        attention_probs_dropout_prob=0.0,
    )


@pytest.mark.parametrize(("layers", "groups", "inner"), [(12, 1, 1), (12, 3, 2), (6, 2, 1)])
def test_albert_groups_equal_transformers(layers: int, groups: int, inner: int) -> None:
    torch = pytest.importorskip("torch")
    transformers = pytest.importorskip("transformers")
    cfg = _albert(layers, groups, inner)
    with torch.device("meta"):
        ref = transformers.AlbertModel(transformers.AutoConfig.for_model(**cfg))
    expected = sum(p.numel() for p in ref.parameters())
    got = symmem.parse(config_text_to_mem(json.dumps(cfg), "config.json")).params()
    assert got.total.evaluate() == expected


def test_albert_groups_must_divide_the_layers() -> None:
    with pytest.raises(symmem.SymmemError, match="do not split evenly"):
        config_text_to_mem(json.dumps(_albert(12, 5, 1)), "config.json")


@pytest.mark.parametrize("attn", ["eager", "sdpa"])
def test_albert_saved_tensors_per_iteration_equal_transformers(attn: str) -> None:
    """Bytes saved for backward by AlbertModel's forward (saved_tensors_hooks, storages
    deduplicated, parameters excluded) against the formula: every iteration of a shared
    layer saves its own tensors, so measured and formula grow by the same bytes per iteration
    (2 -> 4 layers, 1 or 2 groups, 1 or 2 layers per group); the constant difference is
    outside the layers (the pooler, which reads the first token only, and the embeddings'
    position and token-type ids)."""
    torch = pytest.importorskip("torch")
    transformers = pytest.importorskip("transformers")
    from symmem.activations import ActPolicy, entries_bytes, saved_tensors
    from symmem.check import measure_saved

    b, s = 2, 16
    diffs, sizes = set(), []
    for layers, groups, inner in [(2, 1, 1), (4, 1, 1), (4, 2, 1), (4, 1, 2)]:
        cfg = _albert(layers, groups, inner)
        torch.manual_seed(0)
        config = transformers.AutoConfig.for_model(**cfg, attn_implementation=attn)
        model = transformers.AlbertModel(config).train()
        ids = torch.randint(0, 100, (b, s), generator=torch.Generator().manual_seed(0))
        _, seen = measure_saved(
            lambda model=model, ids=ids: model(input_ids=ids).last_hidden_state.sum(),
            list(model.parameters()),
        )
        measured = sum(n for n, _ in seen.values())
        m = symmem.parse(
            config_text_to_mem(json.dumps(cfg), "config.json"),
            set_values={"batch": b, "seq_len": s},
        )
        policy = ActPolicy.huggingface(device="cpu", attention=attn, dtype="fp32")
        formula = int(m.quantity(entries_bytes(saved_tensors(m.graph, policy), policy)).evaluate())
        diffs.add(formula - measured)
        sizes.append(measured)
        assert abs(formula - measured) / measured < 0.03
    assert len(diffs) == 1, diffs  # exact per iteration
    assert sizes[1] == sizes[2] and sizes[3] > sizes[1]  # groups share nothing of activations


def test_symmem_check_measures_a_shared_repeat() -> None:
    """A training step of a shared repeat in PyTorch (one module run three times): the
    parameters once, the saved tensors of every iteration, exactly."""
    pytest.importorskip("torch")
    from symmem.activations import ActPolicy
    from symmem.check import check

    text = SHARED.replace("linear shared(d, d) }", "linear shared(d, d) }\n  linear head(d, 50)")
    m = symmem.parse(text, set_values={"batch": 2, "seq_len": 4})
    r = check(m, ActPolicy(device="cpu"))
    # table 400, one shared linear 72, two plain 2 * 72, head 8 * 50 + 50
    assert r.params_exact and r.params_total.measured == 400 + 3 * 72 + 8 * 50 + 50
    assert r.saved.formula == r.saved.measured
