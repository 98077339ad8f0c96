"""Generic checks over every registered layer kind (new kinds are covered automatically)."""

from __future__ import annotations

import dataclasses
import inspect
from pathlib import Path

import pytest
from typer.testing import CliRunner

import symmem
from symmem.cli import app
from symmem.layers import catalogue, kinds
from symmem.layers.base import Layer

DOCS = Path(__file__).resolve().parents[2] / "docs"
ALL = kinds()


def test_catalogue_is_not_empty_and_names_are_unique() -> None:
    names = [k.kind for k in ALL]
    assert len(names) == len(set(names)) >= 10
    for name, cls in catalogue().items():
        assert name == cls.kind or name in cls.aliases


@pytest.mark.parametrize("cls", ALL, ids=lambda c: c.kind)
def test_kind_is_a_frozen_dataclass_with_typed_fields(cls: type[Layer]) -> None:
    assert dataclasses.is_dataclass(cls)
    assert cls.__dataclass_params__.frozen
    hints = __import__("typing").get_type_hints(cls, include_extras=True)
    for f in dataclasses.fields(cls):
        assert f.name in hints, f"{cls.kind}.{f.name} has no annotation"


@pytest.mark.parametrize("cls", ALL, ids=lambda c: c.kind)
def test_kind_documents_its_source(cls: type[Layer]) -> None:
    module = inspect.getmodule(cls)
    assert module is not None
    module_doc = module.__doc__ or ""
    assert (cls.__doc__ or "").strip() or module_doc.strip()
    assert cls.summary, f"{cls.kind} has no summary"


@pytest.mark.parametrize("cls", ALL, ids=lambda c: c.kind)
def test_kind_has_a_pytorch_equivalent_or_says_why_not(cls: type[Layer]) -> None:
    own = any("to_torch" in vars(k) for k in cls.__mro__ if k is not Layer)
    assert own, f"{cls.kind} does not define to_torch"


@pytest.mark.parametrize("cls", ALL, ids=lambda c: c.kind)
def test_kind_appears_in_the_docs(cls: type[Layer]) -> None:
    text = "\n".join(p.read_text() for p in DOCS.glob("*.md"))
    assert f"`{cls.kind}" in text, f"docs/ never mentions `{cls.kind}`"


@pytest.mark.parametrize("cls", ALL, ids=lambda c: c.kind)
def test_dropout_fields_name_the_dropout_probabilities(cls: type[Layer]) -> None:
    # torch_build's dropout=False (ActPolicy.dropout) zeroes exactly these fields
    assert dataclasses.is_dataclass(cls)
    names = {f.name for f in dataclasses.fields(cls)}
    assert set(cls.dropout_fields) <= names
    assert "dropout" not in names or "dropout" in cls.dropout_fields
    for ex in cls.examples:
        for node, _ in symmem.parse(ex.dsl()).graph.walk():
            off = node.layer.without_dropout()
            assert all(getattr(off, f) == 0 for f in off.dropout_fields)


@pytest.mark.parametrize("cls", ALL, ids=lambda c: c.kind)
def test_structural_questions_have_answers(cls: type[Layer]) -> None:
    # the questions code outside symmem/layers asks instead of testing a kind's name
    layer = symmem.parse(cls.examples[0].dsl()).graph.layer(_first_path(cls)).layer
    assert isinstance(cls.recurrent, bool) and isinstance(cls.can_be_output_head, bool)
    assert layer.reads_token_ids == (layer.token_vocab() is not None)


def _first_path(cls: type[Layer]) -> str:
    m = symmem.parse(cls.examples[0].dsl())
    return next(node.path for node, _ in m.graph.walk() if type(node.layer) is cls)


def test_kinds_command_lists_every_kind() -> None:
    r = CliRunner().invoke(app, ["kinds"])
    assert r.exit_code == 0
    for cls in ALL:
        assert f"{cls.kind}(" in r.output


def test_generated_index_names_each_kinds_module() -> None:
    # symmem/layers/_index.py lets a command import only the kinds it names (cold start);
    # a stale index is still correct (unknown names load every module) but slow
    from symmem.layers import _index, index_source

    wanted = {name: cls.__module__.rsplit(".", 1)[-1] for name, cls in catalogue().items()}
    stale = "stale symmem/layers/_index.py: run python grammar/regenerate.py"
    assert wanted == _index.MODULES, stale
    path = Path(_index.__file__)
    assert path.read_text(encoding="utf-8") == index_source(), "run python grammar/regenerate.py"


def test_lazy_index_answers_as_the_whole_catalogue() -> None:
    from symmem.layers import index

    whole = catalogue()
    assert list(index) == list(whole) and len(index) == len(whole)
    for name, cls in whole.items():
        assert name in index and index[name] is cls
    assert "no_such_kind" not in index and 3 not in index
    with pytest.raises(KeyError):
        index["no_such_kind"]


def test_a_model_imports_only_the_kinds_it_names() -> None:
    # the point of the index: a cold `symmem memory llama2-7b` creates a handful of kinds, not
    # every one (a fresh process: this one has loaded them all); a block's name loads nothing
    import subprocess
    import sys

    code = (
        "import sys, symmem; symmem.load('llama2-7b'); "
        "print(sorted(m for m in sys.modules if m.startswith('symmem.layers.')))"
    )
    root = Path(__file__).resolve().parents[2]
    out = subprocess.run(
        [sys.executable, "-c", code], cwd=root, capture_output=True, text=True, check=True
    ).stdout
    loaded = {m.rsplit(".", 1)[-1] for m in eval(out)}  # noqa: S307 - our own printed list
    assert {"attention", "embedding", "rmsnorm"} <= loaded
    assert not loaded & {"conv", "pool", "rnn", "mamba", "batchnorm", "moe", "mla"}
