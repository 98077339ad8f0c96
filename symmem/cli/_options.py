"""The memory options on the command line, generated from :class:`symmem.options.MemoryOptions`.

``@memory_options`` gives a command one flag per option field (its type, default,
help text and valid names come from the field), and calls the command with one
``options: MemoryOptions`` argument.  A new option field appears on every command
that takes memory options, with no edit here.
"""

from __future__ import annotations

import functools
import inspect
import typing
from collections.abc import Callable
from typing import Annotated, Any

import typer

from symmem.cli.common import user_errors
from symmem.options import MemoryOptions, option_fields

#: the parameter through which a decorated command receives the options
PARAM = "options"


def _parameters() -> list[inspect.Parameter]:
    params = []
    for f, spec in option_fields():
        if spec.cli is None:
            continue
        flag = spec.flag or "--" + f.name.replace("_", "-")
        default = f.default
        if (
            spec.cli is not bool
            and spec.cli is not (bool | None)
            and not isinstance(default, int | str)
        ):
            default = (
                None  # tuples and other parsed values: the CLI passes the text, None = the default
            )
        option = typer.Option(
            *flag.split("|"), help=spec.help_text(), show_default=default is not None
        )
        params.append(
            inspect.Parameter(
                f.name,
                inspect.Parameter.KEYWORD_ONLY,
                default=default,
                annotation=Annotated[spec.cli, option],
            )
        )
    return params


def memory_options(fn: Callable[..., None]) -> Callable[..., None]:
    """Add every memory option to a command; it receives them as ``options: MemoryOptions``."""
    generated = _parameters()
    names = {p.name for p in generated}
    hints = typing.get_type_hints(fn, include_extras=True)
    own = [
        p.replace(annotation=hints.get(p.name, p.annotation))
        for p in inspect.signature(fn).parameters.values()
        if p.name != PARAM and p.name not in names
    ]
    defaults = {p.name: p.default for p in generated}

    @functools.wraps(fn)
    def wrapper(*args: Any, **kwargs: Any) -> None:
        given = {name: kwargs.pop(name) for name in list(kwargs) if name in names}
        changed = {k: v for k, v in given.items() if v != defaults[k]}
        with user_errors():
            options = MemoryOptions.from_user(changed)
        fn(*args, **{PARAM: options}, **kwargs)

    positional = [p for p in own if p.default is inspect.Parameter.empty]
    keyword = [
        p.replace(kind=inspect.Parameter.KEYWORD_ONLY)
        for p in own
        if p.default is not inspect.Parameter.empty
    ]
    params = [*positional, *keyword, *generated]
    wrapper.__signature__ = inspect.Signature(params, return_annotation=None)  # type: ignore[attr-defined]
    wrapper.__annotations__ = {p.name: p.annotation for p in params}
    return wrapper
