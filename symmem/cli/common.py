"""What every command shares: option types, loading a model, and turning
:class:`~symmem.errors.SymmemError` into one message and exit code 1."""

from __future__ import annotations

import json
import sys
from collections.abc import Iterable, Iterator
from contextlib import contextmanager
from fractions import Fraction
from typing import TYPE_CHECKING, Annotated, Any

import typer

from symmem.errors import OptionError, SymmemError
from symmem.graph import MTP_SYMBOL
from symmem.limits import LimitError, parse_decimal
from symmem.model import Model, ValueSource, load

if TYPE_CHECKING:
    from symmem.memory.config import MemoryConfig

ModelArg = Annotated[
    str,
    typer.Argument(
        help="A .mem file, a Hugging Face config.json, or a bundled model name (symmem zoo).",
        show_default=False,
    ),
]
SetOpt = Annotated[
    list[str] | None,
    typer.Option("--set", "-s", help="Give a symbol a value: name=value (repeatable)."),
]
FreeOpt = Annotated[
    list[str] | None,
    typer.Option(
        "--free", "-f", help="Keep a symbol symbolic even if it has a default (repeatable)."
    ),
]
JsonOpt = Annotated[bool, typer.Option("--json", help="Print machine-readable JSON.")]
BatchOpt = Annotated[
    int | None,
    typer.Option(
        "--batch",
        help="The batch (per data-parallel rank): the same as --set batch=N.",
        show_default=False,
    ),
]
SeqLenOpt = Annotated[
    int | None,
    typer.Option(
        "--seq-len",
        help="The sequence length (training) or context (inference): --set seq_len=N.",
        show_default=False,
    ),
]
ModelNameOpt = Annotated[
    str | None, typer.Option("--model", help="Which model of the file, when it defines several.")
]


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


def parse_sets(items: list[str] | None) -> dict[str, int | Fraction]:
    """``["d_model=64", "p=0.1", "n=1e23"]`` -> ``{"d_model": 64, "p": Fraction(1, 10),
    "n": 10**23}``: exact, by symmem's one decimal parser (never ``eval``, never a float)."""
    out: dict[str, int | Fraction] = {}
    for item in items or []:
        name, sep, value = item.partition("=")
        name, value = name.strip(), value.strip()
        if not sep or not name or not value:
            raise OptionError(f"--set expects name=value, got '{item}'")
        negative = value.startswith("-")
        try:
            number = parse_decimal(value.removeprefix("-").removeprefix("+"), f"--set {name}")
        except LimitError as exc:
            raise OptionError(exc.message) from None
        if number is None:
            raise OptionError(f"--set {name}: '{value}' is not a number")
        out[name] = -number if negative else number
    return out


def load_model(
    path: str,
    sets: list[str] | None,
    free: list[str] | None,
    model: str | None = None,
    batch: int | None = None,
    seq_len: int | None = None,
) -> Model:
    """The model with its values: ``--set``, then ``--batch`` / ``--seq-len``; each value
    remembers which option gave it (:meth:`Model.value_sources`)."""
    values: dict[str, int | Fraction] = parse_sets(sets)
    origins = dict.fromkeys(values, "--set")
    for name, flag, value in (("batch", "--batch", batch), ("seq_len", "--seq-len", seq_len)):
        if value is None:
            continue
        if value < 1:
            raise OptionError(f"{flag} must be an integer >= 1, not {value}")
        if name in values and values[name] != value:
            raise OptionError(f"{flag} {value} and --set {name}={values[name]}: give it once")
        values[name] = value
        origins[name] = flag
    return load(path, model=model, set_values=values, free=free or [], origins=origins)


def _sources(
    m: Model, names: Iterable[str] | None, config: MemoryConfig | None
) -> dict[str, ValueSource]:
    """:meth:`Model.value_sources`, with the values a memory build put in by an option: the
    MTP modules (``mtp_layers``) counted as ``--mtp`` / ``--no-mtp`` or the mode decided."""
    sources = m.value_sources(names)
    if (
        config is not None
        and config.mtp is not None
        and MTP_SYMBOL in sources
        and MTP_SYMBOL not in m.set_values
    ):
        if config.mtp_explicit:
            how = "--mtp" if config.mtp else "--no-mtp"
        elif config.mode == "train":
            how = "the model's mtp modules, counted in training; --no-mtp leaves them out"
        else:
            how = "left out at inference; --mtp counts them"
        sources[MTP_SYMBOL] = ValueSource(config.mtp, how)
    return sources


def values_doc(
    m: Model, names: Iterable[str] | None = None, config: MemoryConfig | None = None
) -> dict[str, dict[str, Any]]:
    """``{name: {"value", "source"}}``, batch and seq_len first: the ``values`` of --json."""
    return {k: v.as_dict() for k, v in _sources(m, names, config).items()}


def values_lines(
    m: Model, names: Iterable[str] | None = None, config: MemoryConfig | None = None
) -> list[str]:
    """The values used, for people: the workload on the first line with how to change it,
    the model's own symbols after it, grouped by where they come from."""
    sources = _sources(m, names, config)
    workload = {k: v for k, v in sources.items() if k in ("batch", "seq_len")}
    rest = {k: v for k, v in sources.items() if k not in workload}
    lines = []
    if workload:
        lines.append("values: " + _grouped(workload) + "; --batch, --seq-len or --set change them")
    if rest:
        lines.append(("values: " if not workload else "        ") + _grouped(rest))
    return lines


def head_lines(m: Model, names: Iterable[str] | None, config: MemoryConfig | None) -> list[str]:
    """What an output prints first: what was assumed for the options left unset
    (:meth:`MemoryConfig.assumptions`, when the quantity is memory) and the values used
    (:func:`values_lines`)."""
    assumed = config.assumptions() if config is not None else ""
    return ([assumed] if assumed else []) + values_lines(m, names, config)


def head_doc(m: Model, names: Iterable[str] | None, config: MemoryConfig | None) -> dict[str, Any]:
    """The same for --json: ``values`` (:func:`values_doc`) and, for memory, ``config`` (with
    its ``assumed``)."""
    doc: dict[str, Any] = {"values": values_doc(m, names, config)}
    if config is not None:
        doc["config"] = config.describe()
    return doc


def _grouped(sources: dict[str, Any]) -> str:
    groups: list[tuple[str, list[str]]] = []
    for name, vs in sources.items():
        shown = f"{name} = " + (f"{vs.value:,}" if isinstance(vs.value, int) else str(vs.value))
        if vs.value is None:
            shown = name
        if groups and groups[-1][0] == vs.source:
            groups[-1][1].append(shown)
        else:
            groups.append((vs.source, [shown]))
    return "; ".join(f"{', '.join(items)} ({src})" for src, items in groups)


def human(n: int) -> str:
    """Thousands separators for people: 124439808 -> 124,439,808."""
    return f"{n:,}"


def echo_json(doc: Any) -> None:
    typer.echo(json.dumps(doc, indent=2))


def stdout_isatty() -> bool:
    return sys.stdout.isatty()


def progress_bar(total: int, threshold: int) -> Any:
    """A progress callback ``(done, total)`` drawing rich's bar on stderr, for work of at least
    ``threshold`` items on a terminal (else None: no bar)."""
    if total < threshold or not sys.stderr.isatty():
        return None
    from rich.console import Console
    from rich.progress import Progress

    bar = Progress(console=Console(stderr=True), transient=True)
    task = bar.add_task("solving" if threshold < 1_000_000 else "evaluating", total=total)
    bar.start()

    def update(done: int, total: int) -> None:
        bar.update(task, completed=done)
        if done >= total:
            bar.stop()

    return update
