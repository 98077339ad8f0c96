"""Where the grammar and the bundled examples are read from (symmem.resources).

Two checkouts must never read each other's files: setuptools' editable finder maps
``symmem.grammar`` and ``symmem.data`` to the folders of whichever checkout was installed,
so a checkout finds its own ``grammar/`` and ``examples/`` beside the imported package,
and only an installed wheel uses the package data.
"""

from __future__ import annotations

import os
import shutil
import subprocess
import sys
from pathlib import Path

import pytest

from symmem import resources

ROOT = Path(__file__).resolve().parent.parent


def _fake_checkout(root: Path, grammar: str, example: str) -> Path:
    (root / "symmem").mkdir(parents=True)
    (root / "grammar").mkdir()
    (root / "examples").mkdir()
    (root / "pyproject.toml").write_text("[project]\nname = 'symmem'\n")
    (root / "grammar" / "symmem.lark").write_text(grammar)
    (root / "examples" / f"{example}.mem").write_text("x = 1\n")
    return root / "symmem"


def test_this_checkout_reads_its_own_files() -> None:
    assert resources.checkout_root() == ROOT
    assert Path(str(resources.grammar_dir())) == ROOT / "grammar"
    assert Path(str(resources.examples_dir())) == ROOT / "examples"
    assert resources.grammar_text() == (ROOT / "grammar" / "symmem.lark").read_text()


def test_two_checkouts_each_read_their_own(tmp_path: Path) -> None:
    a = _fake_checkout(tmp_path / "a", "// grammar a\n", "only_a")
    b = _fake_checkout(tmp_path / "b", "// grammar b\n", "only_b")
    for pkg, name in ((a, "a"), (b, "b")):
        grammar = resources.grammar_dir(pkg).joinpath("symmem.lark").read_text()
        assert grammar == f"// grammar {name}\n"
        names = [p.name for p in resources.examples_dir(pkg).iterdir()]
        assert names == [f"only_{name}.mem"]


def test_wheel_reads_package_data(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    """site-packages has no pyproject.toml beside the package: the package data is used,
    even when a stray top-level grammar/ sits there."""
    site = tmp_path / "site-packages"
    (site / "symmem").mkdir(parents=True)
    (site / "grammar").mkdir()
    (site / "grammar" / "symmem.lark").write_text("// not ours\n")
    assert resources.checkout_root(site / "symmem") is None
    asked: list[str] = []

    def files(pkg: str) -> Path:
        asked.append(pkg)
        return site

    monkeypatch.setattr(resources.resources, "files", files)
    resources.grammar_dir(site / "symmem")
    resources.examples_dir(site / "symmem")
    assert asked == ["symmem.grammar", "symmem.data"]


def test_a_copied_checkout_ignores_the_installed_one(tmp_path: Path) -> None:
    """A second checkout, run from its own folder while another one (or none) is installed
    editable on this machine, lists its own examples and parses with its own grammar."""
    copy = tmp_path / "other"
    for item in ("symmem", "grammar", "examples"):
        shutil.copytree(ROOT / item, copy / item, ignore=shutil.ignore_patterns("__pycache__"))
    shutil.copy(ROOT / "pyproject.toml", copy / "pyproject.toml")
    shutil.copy(copy / "examples" / "gpt2.mem", copy / "examples" / "only_in_copy.mem")
    grammar = copy / "grammar" / "symmem.lark"
    grammar.write_text("// edited in the copy\n" + grammar.read_text())
    script = (
        "import symmem, symmem.resources as r, symmem.syntax as s\n"
        "from symmem.sources import zoo_names\n"
        "print(symmem.__file__)\n"
        "print('only_in_copy' in zoo_names())\n"
        "print(r.grammar_text().splitlines()[0])\n"
        "print(s._rt.GRAMMAR_KEY == s.grammar_key(r.grammar_text()))\n"
    )
    env = {k: v for k, v in os.environ.items() if k != "PYTHONPATH"}
    out = subprocess.run(
        [sys.executable, "-c", script],
        cwd=copy,
        env=env,
        capture_output=True,
        text=True,
        check=True,
    ).stdout.splitlines()
    assert out == [
        str(copy / "symmem" / "__init__.py"),
        "True",
        "// edited in the copy",
        "True",  # the copy's edited grammar, compiled in memory: never the stale tables
    ]


def test_wheel_ships_grammar_examples_and_parser(tmp_path: Path) -> None:
    """`pip install .` (a wheel) works away from any checkout: the package data is inside."""
    src = tmp_path / "src"  # built from a copy: setuptools writes build/ beside the source
    for item in ("symmem", "grammar", "examples"):
        shutil.copytree(ROOT / item, src / item, ignore=shutil.ignore_patterns("__pycache__"))
    for item in ("pyproject.toml", "README.md"):
        shutil.copy(ROOT / item, src / item)
    build = subprocess.run(
        [sys.executable, "-m", "pip", "wheel", "--no-deps", "--no-build-isolation", "-q"]
        + ["-w", str(tmp_path / "dist"), str(src)],
        capture_output=True,
        text=True,
    )
    if build.returncode:
        pytest.skip(f"cannot build a wheel here: {build.stderr[-300:]}")
    (wheel,) = (tmp_path / "dist").glob("symmem-*.whl")
    site = tmp_path / "site"
    subprocess.run(
        [sys.executable, "-m", "pip", "install", "-q", "--no-deps", "--target", str(site), wheel],
        check=True,
        capture_output=True,
    )
    assert (site / "symmem" / "grammar" / "symmem.lark").is_file()
    assert (site / "symmem" / "data" / "gpt2.mem").is_file()
    assert (site / "symmem" / "_lark_parser.py").is_file()
    argv = ["symmem", "solve", "--budget", "24GB", "gpt2"]
    script = (
        f"import sys; sys.path.insert(0, {str(site)!r}); sys.argv = {argv!r}\n"
        "import symmem.resources as r, symmem.syntax as s\n"
        "assert r.checkout_root() is None and s._rt.__name__ == 'symmem._lark_parser'\n"
        "from symmem.cli import main; main()\n"
    )
    env = {k: v for k, v in os.environ.items() if k != "PYTHONPATH"}
    run = subprocess.run(
        [sys.executable, "-c", script], cwd=tmp_path, env=env, capture_output=True, text=True
    )
    assert run.returncode == 0, run.stderr
    assert "batch = 11" in run.stdout  # GPT-2 in fp32 with AdamW: 11 sequences fit 24 GB
