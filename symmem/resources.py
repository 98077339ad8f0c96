"""Where the shipped data files live: the grammar and the bundled example models.

The repository keeps them at its top level (``grammar/symmem.lark``, ``examples/*.mem``),
beside the ``symmem`` package.  A wheel ships them inside the package as package data
(``symmem.grammar``, ``symmem.data``: the package-dir mapping in pyproject.toml).

Lookup order, so that two checkouts never read each other's files:

1. the checkout that holds the *imported* ``symmem`` package (its parent folder has
   ``pyproject.toml`` and ``grammar/symmem.lark``): a plain import from a checkout and
   an editable install both land here, whatever other editable install is on the path;
2. else the package data of an installed wheel.

Importing ``symmem.grammar`` or ``symmem.data`` first (what this module did before) is
wrong in a checkout: setuptools' editable finder maps those names to the folders of the
checkout that was installed, which may not be the one whose code is running.
"""

from __future__ import annotations

from functools import lru_cache
from importlib import resources
from pathlib import Path
from typing import TYPE_CHECKING

if TYPE_CHECKING:
    from importlib.resources.abc import Traversable

GRAMMAR_FILE = "symmem.lark"

_PACKAGE_DIR = Path(__file__).resolve().parent


def checkout_root(package_dir: Path = _PACKAGE_DIR) -> Path | None:
    """The source checkout that holds ``package_dir``, or None in an installed wheel.

    A checkout is recognised by ``pyproject.toml`` and ``grammar/symmem.lark`` beside the
    package folder; site-packages holds neither.
    """
    root = package_dir.parent
    if (root / "pyproject.toml").is_file() and (root / "grammar" / GRAMMAR_FILE).is_file():
        return root
    return None


def _locate(folder: str, package: str, package_dir: Path) -> Traversable:
    root = checkout_root(package_dir)
    if root is not None:
        return root / folder
    return resources.files(package)


def grammar_dir(package_dir: Path = _PACKAGE_DIR) -> Traversable:
    """The folder of ``symmem.lark``: the checkout's ``grammar/``, else ``symmem.grammar``."""
    return _locate("grammar", "symmem.grammar", package_dir)


def examples_dir(package_dir: Path = _PACKAGE_DIR) -> Traversable:
    """The bundled models: the checkout's ``examples/``, else ``symmem.data``."""
    return _locate("examples", "symmem.data", package_dir)


@lru_cache(maxsize=1)
def grammar_text() -> str:
    """The text of the DSL grammar that belongs to the running code."""
    return grammar_dir().joinpath(GRAMMAR_FILE).read_text(encoding="utf-8")
