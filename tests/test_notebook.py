"""The example notebook (examples/symmem.ipynb) runs top to bottom and shows what it promises.

Executed with nbclient in a fresh kernel, so the notebook cannot go stale; skipped when the
``test`` extra's nbclient / ipykernel are not installed.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

import pytest

from symmem.model import load
from symmem.solve import solve

nbformat = pytest.importorskip("nbformat")
nbclient = pytest.importorskip("nbclient")
pytest.importorskip("ipykernel")
pytest.importorskip("pandas")
pytest.importorskip("matplotlib")

NOTEBOOK = Path(__file__).resolve().parent.parent / "examples" / "symmem.ipynb"


def _outputs(nb: Any) -> list[dict[str, Any]]:
    """Each code cell's merged output data (mime type -> text)."""
    out = []
    for cell in nb.cells:
        if cell.cell_type != "code":
            continue
        data: dict[str, Any] = {}
        for o in cell.outputs:
            assert o.output_type != "error", "".join(o.get("traceback", []))
            data.update(o.get("data", {}))
        out.append(data)
    return out


def test_example_notebook_runs_and_renders() -> None:
    nb = nbformat.read(NOTEBOOK, as_version=4)
    # run from the repository root: the kernel imports this checkout's symmem
    root = str(NOTEBOOK.parent.parent)
    client = nbclient.NotebookClient(
        nb, timeout=600, kernel_name="python3", resources={"metadata": {"path": root}}
    )
    client.execute()
    out = _outputs(nb)
    # params: an HTML table with GPT-2's published 124,439,808 (README; Radford et al. 2019)
    assert "124,439,808" in out[1]["text/html"]
    assert out[2]["text/latex"].endswith("= 124{,}439{,}808$")
    # memory: each exact byte count the API gives appears in the table
    mem = load("gpt2").memory("train", precision="mixed-bf16", zero=1, dp=8)
    for value in mem.bytes().values():
        assert isinstance(value, int) and f"{value:,}" in out[3]["text/html"]
    assert "batch" in out[4]["text/latex"]
    free = load("gpt2", free=["batch"]).memory("train", precision="mixed-bf16", zero=1, dp=8)
    assert out[5]["text/plain"] == str(solve(free.total, "80GiB", "batch").value)
    assert "text/latex" in out[6]
    assert "seq_len" in out[7]["text/html"] and "activations" in out[7]["text/html"]
    assert "image/png" in out[8]
    assert out[9]["text/plain"] == "True"
