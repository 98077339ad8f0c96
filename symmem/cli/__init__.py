"""The command line: each command is a thin shell over one API call.

Every module in this package except ``common`` defines one command: a function
named like the module (``params.params``) or listed in its ``COMMAND`` =
("name", function).  Adding a command is adding a module.
"""

from __future__ import annotations

import importlib
import pkgutil

import typer

app = typer.Typer(
    name="symmem",
    help="Exact symbolic formulas for the parameters and memory of neural networks.",
    no_args_is_help=True,
    pretty_exceptions_enable=False,
    add_completion=False,
)

for _info in sorted(pkgutil.iter_modules(__path__), key=lambda i: i.name):
    if _info.name in ("common",) or _info.name.startswith("_"):
        continue
    _mod = importlib.import_module(f"{__name__}.{_info.name}")
    _name, _fn = getattr(_mod, "COMMAND", (_info.name.replace("_", "-"), getattr(_mod, _info.name)))
    app.command(_name)(_fn)


def main() -> None:
    app()
