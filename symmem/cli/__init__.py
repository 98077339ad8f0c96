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

import atexit
import contextlib
import errno
import importlib
import io
import os
import pkgutil
import sys
from typing import Any, NoReturn

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
    """Run the command line; output that cannot be written (a closed standard output, a full
    disk under ``> file``, a closed pipe) is an error with exit status 1, never a traceback
    or a silent success."""
    if sys.stdout is None:  # started with stdout closed (`symmem ... >&-`)
        sys.stdout = _Closed()
    code: Any = 0
    argv = sys.argv[1:]
    # build only the command being run, when one is named (its module alone is imported)
    only = argv[0] if argv and argv[0] in command_modules() else None
    try:
        build_app(only)()
    except SystemExit as exc:
        code = exc.code
    except OSError as exc:
        code = _output_failed(exc)
    except MemoryError:  # a last resort: the bounds of docs/limits.md should come first
        with contextlib.suppress(OSError, ValueError):
            sys.stderr.write(
                "error: out of memory (the machine's, or the limit of ulimit -v); give smaller "
                "sizes or a coarser grid (docs/limits.md)\n"
            )
        code = 1
    try:
        sys.stdout.flush()
    except OSError as exc:
        code = _output_failed(exc)
    sys.exit(code)


def run() -> NoReturn:
    """The ``symmem`` script and ``python -m symmem``: :func:`main`, then the process ends as
    soon as its work is done, without Python tearing the interpreter down.

    Tearing down frees every object one at a time: after a memory build, sympy's caches hold
    enough expressions that this takes 0.1-0.2 s, about a quarter of a cold ``symmem
    memory`` (issue 8: a cold command within 1.5x a bare ``import sympy``, which pays its own
    smaller teardown).  What a normal exit does that a finished command needs is done here,
    in the same order: the exit handlers run (``atexit``: logging, and torch or matplotlib
    when a command loaded them), then standard output and error are flushed; the status is
    what ``sys.exit`` would give.  :func:`main` itself raises ``SystemExit`` as usual, so
    callers in Python keep their interpreter.
    """
    try:
        main()
        code: Any = 0
    except SystemExit as exc:
        code = exc.code
    if code is None:
        status = 0
    elif isinstance(code, int):
        status = code
    else:  # sys.exit("message"): the message on standard error, status 1
        with contextlib.suppress(OSError, ValueError):
            sys.stderr.write(f"{code}\n")
        status = 1
    atexit._run_exitfuncs()  # what Py_FinalizeEx runs first
    for stream in (sys.stdout, sys.stderr):
        with contextlib.suppress(OSError, ValueError, AttributeError):
            stream.flush()
    os._exit(status)


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
