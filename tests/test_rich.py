"""Rich display in notebooks: ``_repr_latex_`` on quantities, ``_repr_html_`` on results."""

from __future__ import annotations

import html
import re

import pytest

from symmem.model import load
from symmem.rich import _escape, table_html


def test_quantity_latex_shows_formula_and_value() -> None:
    tex = load("gpt2").params().total._repr_latex_()
    # GPT-2 small: 124,439,808 parameters (README; Radford et al. 2019, as transformers builds it)
    assert tex.startswith("$") and tex.endswith("= 124{,}439{,}808$")
    assert r"d_{model}" in tex


def test_quantity_latex_without_a_value_is_the_formula() -> None:
    tex = load("gpt2", free=["batch"]).memory().activations._repr_latex_()
    assert r"\mathrm{batch}" in tex and "=" not in tex


def test_memory_html_has_every_component_exactly_and_a_bar() -> None:
    result = load("gpt2").memory("train")
    page = result._repr_html_()
    for name, value in result.bytes().items():
        assert isinstance(value, int)
        assert re.search(rf">{name}</td><td[^>]*>{value:,}</td>", page), name
    # the bar of a component is its share of the total, at most 100 px
    widths = [float(w) for w in re.findall(r"width:([0-9.]+)px", page)]
    total = result.bytes()["total"]
    assert isinstance(total, int)
    expected = [100 * v / total for k, v in result.bytes().items() if k != "total"]
    assert widths == [round(e, 1) for e in expected]


def test_memory_html_with_a_free_symbol_shows_mathml() -> None:
    page = load("gpt2", free=["batch"]).memory()._repr_html_()
    assert "<math>" in page and "<mi>batch</mi>" in page


def test_params_html_lists_layers() -> None:
    page = load("mixtral-8x7b").params()._repr_html_()
    assert "active per token" in page and ">layer<" in page


def test_table_escapes_names() -> None:
    assert "&lt;x&gt;" in table_html([("<x>", 1)], caption="c", bytes_column=False)


@pytest.mark.parametrize("text", ["a<b>&\"c'", "&amp; &lt;", "plain", "<script>x</script>", ""])
def test_escape_is_htmls(text: str) -> None:
    assert _escape(text) == html.escape(text)
