"""The command line: each command is a thin shell over one API call.

Every module in this package except ``common`` defines one command: a function
named like the module (``params.params``) or listed in its ``COMMAND`` =
("name", function).  Adding a command is adding a module.
"""

from __future__ import annotations

import contextlib
import errno
import importlib
import io
import os
import pkgutil
import sys
from typing import Any

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
    """Run the command line; output that cannot be written (a closed standard output, a full
    disk under ``> file``, a closed pipe) is an error with exit status 1, never a traceback
    or a silent success."""
    if sys.stdout is None:  # started with stdout closed (`symmem ... >&-`)
        sys.stdout = _Closed()
    code: Any = 0
    try:
        app()
    except SystemExit as exc:
        code = exc.code
    except OSError as exc:
        code = _output_failed(exc)
    try:
        sys.stdout.flush()
    except OSError as exc:
        code = _output_failed(exc)
    sys.exit(code)


class _Closed(io.TextIOBase):
    """Standard output when the process started without one: every write fails."""

    def write(self, s: str) -> int:
        raise OSError(errno.EBADF, "standard output is closed")


def _output_failed(exc: OSError) -> int:
    """Report an output error once and make sure Python's exit does not report it again."""
    with contextlib.suppress(OSError):
        devnull = os.open(os.devnull, os.O_WRONLY)
        os.dup2(devnull, sys.stdout.fileno())
    if exc.errno == errno.EPIPE:  # the reader went away (| head): quiet, as the shell does
        return 1
    with contextlib.suppress(OSError, ValueError):
        sys.stderr.write(f"symmem: cannot write the output: {exc.strerror or exc}\n")
    return 1
