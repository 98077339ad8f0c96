"""What every command shares: option types, loading a model, and turning
:class:`~symmem.errors.SymmemError` into one message and exit code 1."""

from __future__ import annotations

import json
import math
import sys
from collections.abc import Iterator
from contextlib import contextmanager
from typing import Annotated, Any

import typer

from symmem.errors import OptionError, SymmemError

ModelArg = Annotated[str, typer.Argument(help="A .mem file, a Hugging Face config.json, or a bundled model name (symmem zoo).", show_default=False)]
SetOpt = Annotated[list[str] | None, typer.Option("--set", "-s", help="Give a symbol a value: name=value (repeatable).")]
FreeOpt = Annotated[list[str] | None, typer.Option("--free", "-f", help="Keep a symbol symbolic even if it has a default (repeatable).")]
JsonOpt = Annotated[bool, typer.Option("--json", help="Print machine-readable JSON.")]
ModelNameOpt = Annotated[str | None, typer.Option("--model", help="Which model of the file, when it defines several.")]


@contextmanager
def user_errors() -> Iterator[None]:
    """Report a user's mistake in one message (file:line:col and caret) and exit 1."""
    try:
        yield
    except SymmemError as exc:
        typer.echo(exc.render(), err=True)
        raise typer.Exit(1) from None
    except KeyboardInterrupt:  # pragma: no cover
        raise typer.Exit(130) from None


def parse_sets(items: list[str] | None) -> dict[str, int | float]:
    """``["d_model=64", "p=0.1"]`` -> ``{"d_model": 64, "p": 0.1}``."""
    out: dict[str, int | float] = {}
    for item in items or []:
        name, sep, value = item.partition("=")
        name, value = name.strip(), value.strip().replace("_", "")
        if not sep or not name or not value:
            raise OptionError(f"--set expects name=value, got '{item}'")
        try:
            number: int | float = int(value)
        except ValueError:
            try:
                number = float(value)
            except ValueError:
                raise OptionError(f"--set {name}: '{value}' is not a number") from None
        if not math.isfinite(number):
            raise OptionError(f"--set {name}: '{value}' is not a finite number")
        out[name] = number
    return out


def load_model(path: str, sets: list[str] | None, free: list[str] | None, model: str | None = None) -> Any:
    from symmem.model import load

    return load(path, model=model, set_values=parse_sets(sets), free=free or [])


def human(n: int) -> str:
    """Thousands separators for people: 124439808 -> 124,439,808."""
    return f"{n:,}"


def echo_json(doc: Any) -> None:
    typer.echo(json.dumps(doc, indent=2))


def stdout_isatty() -> bool:
    return sys.stdout.isatty()


def with_memory_options(fn: Any) -> Any:
    """Give a command every memory-model option of `symmem memory` (same flags, types and help).

    The wrapped function receives them as one ``memory_options`` dict holding only
    the options the user changed from their defaults (so ``model.memory(**memory_options)``
    uses the memory model's own defaults for the rest).  Used by solve, sweep, diff
    and show; the options are read from :func:`symmem.cli.memory.memory`'s signature
    and :func:`symmem.memory.option_names`, so a new memory option appears everywhere.
    """
    import functools
    import inspect
    import typing

    from symmem.cli.memory import memory as memory_command
    from symmem.memory import option_names

    names = set(option_names())
    hints = typing.get_type_hints(memory_command, include_extras=True)
    theirs = [p.replace(annotation=hints[p.name]) for p in inspect.signature(memory_command).parameters.values()
              if p.name in names]
    own_hints = typing.get_type_hints(fn, include_extras=True)
    sig = inspect.signature(fn)
    own = [p.replace(annotation=own_hints.get(p.name, p.annotation)) for p in sig.parameters.values()
           if p.name != "memory_options"]
    taken = {p.name for p in own}
    extra = [p.replace(kind=inspect.Parameter.KEYWORD_ONLY) for p in theirs if p.name not in taken]

    @functools.wraps(fn)
    def wrapper(*args: Any, **kwargs: Any) -> Any:
        options = {}
        for p in extra:
            value = kwargs.pop(p.name, p.default)
            if value != p.default:
                options[p.name] = value
        if "overhead" in options and isinstance(options["overhead"], str):
            from symmem.units import parse_bytes

            with user_errors():
                options["overhead"] = parse_bytes(options["overhead"], what="--overhead") if options["overhead"] != "0" else 0
        return fn(*args, memory_options=options, **kwargs)

    params = [p.replace(kind=inspect.Parameter.KEYWORD_ONLY) if p.kind is inspect.Parameter.POSITIONAL_OR_KEYWORD
              and p.default is not inspect.Parameter.empty else p for p in own]
    wrapper.__signature__ = sig.replace(parameters=[*params, *extra], return_annotation=None)  # type: ignore[attr-defined]
    wrapper.__annotations__ = {p.name: p.annotation for p in [*params, *extra]}
    return wrapper
