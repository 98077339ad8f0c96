"""The command line: each command is a thin shell over one API call.

Every module in this package except ``common`` and those starting with ``_`` defines
one command, named like the module with ``-`` for ``_`` (``import_hf`` ->
``symmem import-hf``): a function named like the module.  Adding a command is
adding a module.

A run imports only the module of the command it runs (``symmem memory`` never
loads the sweep's numpy or the check's torch); ``symmem --help`` and
``symmem.cli.app`` load them all.
"""

from __future__ import annotations

import importlib
import pkgutil
import sys
from typing import Any

import typer


def command_modules() -> dict[str, str]:
    """Command name -> module name, read from the package without importing the modules."""
    names = sorted(i.name for i in pkgutil.iter_modules(__path__))
    return {n.replace("_", "-"): n for n in names if n != "common" and not n.startswith("_")}


def build_app(only: str | None = None) -> typer.Typer:
    """The typer application with every command, or with the command ``only``."""
    app = typer.Typer(
        name="symmem",
        help="Exact symbolic formulas for the parameters and memory of neural networks.",
        no_args_is_help=True,
        pretty_exceptions_enable=False,
        add_completion=False,
    )

    @app.callback()
    def _group() -> None:
        """Exact symbolic formulas for the parameters and memory of neural networks."""

    for name, module in command_modules().items():
        if only is None or name == only:
            mod = importlib.import_module(f"{__name__}.{module}")
            app.command(name)(getattr(mod, module))
    return app


def __getattr__(name: str) -> Any:
    """``symmem.cli.app``: the whole application, built on first use."""
    if name == "app":
        app = build_app()
        globals()["app"] = app
        return app
    raise AttributeError(name)


def main() -> None:
    """The ``symmem`` script: build only the command being run, when one is named."""
    argv = sys.argv[1:]
    only = argv[0] if argv and argv[0] in command_modules() else None
    build_app(only)()
