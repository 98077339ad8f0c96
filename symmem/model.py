"""The Python API: a loaded model and the quantities it answers for.

``symmem.load(path)`` / ``symmem.parse(text)`` give a :class:`Model`; its
methods return result objects that carry sympy expressions and evaluate them
at the model's values (defaults, ``set``) on request.  Nothing here prints.
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping
from pathlib import Path
from typing import Any

import sympy

from symmem import graph as g
from symmem.counts import LayerParams, ParamsResult, param_counts
from symmem.errors import OptionError, SemanticError, SymmemError, suggest
from symmem.memory import MemoryResult
from symmem.memory import build as build_memory
from symmem.options import MemoryOptions
from symmem.quantity import Quantity, as_expr
from symmem.records import record
from symmem.sources import read_source
from symmem.syntax import normalize
from symmem.syntax import parse as parse_text
from symmem.values import as_mapping, as_name, as_names, require

__all__ = ["LayerParams", "Model", "ParamsResult", "Quantity", "ValueSource", "load", "parse"]

#: the symbols listed first wherever values are stated: the workload
WORKLOAD = ("batch", "seq_len")


@record
class ValueSource:
    """The value a symbol has in a model, and where it came from.

    ``value``: an int (or a float / an exact fraction as text) at the model's values, the
    expression as text when other symbols remain, or None when the symbol has no value.
    ``source``: ``"default in FILE"``, ``"--set"`` / ``"--batch"`` / ``"set"`` (how it was
    given), ``"free (--free)"``, or ``"no value"``.
    """

    value: int | float | str | None
    source: str

    def as_dict(self) -> dict[str, Any]:
        return {"value": self.value, "source": self.source}


class Model:
    """A checked model: its layer graph and the values of its symbols."""

    def __init__(
        self,
        graph: g.LayerGraph,
        *,
        set_values: Mapping[str, Any] | None = None,
        free: Iterable[str] = (),
        source: str | None = None,
        filename: str | None = None,
        origins: Mapping[str, str] | None = None,
    ) -> None:
        if not isinstance(graph, g.LayerGraph):
            raise OptionError(
                f"Model: expected a layer graph (make models with symmem.load or symmem.parse), "
                f"got {type(graph).__name__}"
            )
        self.graph = graph
        self.source = source
        self.filename = filename
        self.set_values = as_mapping(set_values, "set_values", OptionError)
        #: how each set value was given (``"--set"``, ``"--batch"``); ``"set"`` when not said
        self.origins = dict(origins or {})
        self.free = as_names(free, "free", OptionError)
        self.values = g.resolve_values(graph.defaults, graph.symbols, self.set_values, self.free)

    # ------------------------------------------------------------ basics
    @property
    def name(self) -> str:
        return self.graph.name

    @property
    def symbols(self) -> dict[str, sympy.Symbol]:
        return dict(self.graph.symbols)

    def symbol(self, name: str) -> sympy.Symbol:
        as_name(name, "symbol", OptionError)
        if name not in self.graph.symbols:
            hint = suggest(name, list(self.graph.symbols))
            raise SemanticError(f"unknown symbol '{name}'" + (f": {hint}" if hint else ""))
        return self.graph.symbols[name]

    def quantity(self, expr: sympy.Expr) -> Quantity:
        return Quantity(as_expr(expr), self.values, self.graph.symbols, self.graph.constraints)

    def check_values(self, values: Mapping[str, Any] | None = None) -> None:
        """SemanticError unless the model accepts these values (with its own for the other
        symbols), exactly as ``--set`` / ``set_values`` would: whole sizes, divisibility
        (head_dim), positivity.  Solve and sweep answer only with values that pass."""
        merged = {**self.set_values, **as_mapping(values, "values", OptionError)}
        resolved = g.resolve_values(self.graph.defaults, self.graph.symbols, merged, self.free)
        g.check_values(self.graph.constraints, resolved)

    def with_values(
        self, set_values: Mapping[str, Any] | None = None, free: Iterable[str] = ()
    ) -> Model:
        """A copy with other symbol values (``set``) or symbols kept symbolic (``free``)."""
        merged = {**self.set_values, **as_mapping(set_values, "set_values", OptionError)}
        free = as_names(free, "free", OptionError)
        return Model(
            self.graph,
            set_values=merged,
            free=(*self.free, *free),
            source=self.source,
            filename=self.filename,
            origins=self.origins,
        )

    # ------------------------------------------------------------ values and their sources
    def value_sources(self, names: Iterable[str] | None = None) -> dict[str, ValueSource]:
        """Each symbol's value and where it came from, ``batch`` and ``seq_len`` first, then
        the others in declaration order (only ``names`` when given: the symbols a quantity
        uses).  What every output states (docs/api.md)."""
        wanted = set(self.graph.symbols if names is None else as_names(names, "names", OptionError))
        order = [n for n in WORKLOAD if n in self.graph.symbols]
        order += [n for n in self.graph.symbols if n not in WORKLOAD]
        here = self.filename or self.name
        out: dict[str, ValueSource] = {}
        for name in order:
            if name not in wanted:
                continue
            s = self.graph.symbols[name]
            if name in self.free:
                out[name] = ValueSource(None, "free (--free)")
                continue
            if name in self.set_values:
                source = self.origins.get(name, "set")
            elif s in self.graph.defaults:
                source = f"default in {here}"
            else:
                out[name] = ValueSource(None, "no value (symbolic)")
                continue
            expr = self.values.get(s)
            out[name] = ValueSource(_plain(expr), source)
        return out

    def positions_note(self) -> str | None:
        """A warning when ``seq_len`` is beyond the positions the model has
        (:func:`symmem.graph.positions_warning`)."""
        return g.positions_warning(self.graph, self.values)

    # ------------------------------------------------------------ parameters
    def params(
        self, *, active_embeddings: str | None = None, include_buffers: bool = False
    ) -> ParamsResult:
        """Exact parameter counts (:func:`symmem.counts.param_counts`).

        ``active_embeddings`` ("count" or "exclude"): whether active-per-token
        counts include input-embedding tables; default from the model header,
        else "count".  ``include_buffers``: count buffers that a checkpoint
        stores (batchnorm running statistics, DeepSeek-V3's router
        ``e_score_correction_bias``) as parameters, the way a checkpoint's
        tensor count does; PyTorch's ``parameters()`` does not.  See
        docs/conventions.md.
        """
        return param_counts(
            self.graph,
            self.quantity,
            active_embeddings=active_embeddings,
            include_buffers=include_buffers,
        )

    # ------------------------------------------------------------ memory
    def memory(
        self, mode: str = "train", *, options: MemoryOptions | None = None, **kw: Any
    ) -> MemoryResult:
        """Bytes per GPU of a training step (``mode="train"``) or of inference (``"infer"``):
        a :class:`symmem.memory.MemoryResult` with one :class:`Quantity` per component
        (weights, gradients, optimizer, activations, transient, kv_cache, overhead, total).
        The options are the fields of :class:`symmem.options.MemoryOptions` (docs/memory.md),
        given as keywords or as ``options=`` (keywords then change those)."""
        if options is None:
            opts = MemoryOptions.from_user({"mode": mode, **kw})
        elif not isinstance(options, MemoryOptions):
            raise OptionError(f"options: expected MemoryOptions, got {options!r}"[:200])
        else:
            opts = options.replace(**kw) if kw else options
        if opts.mtp is None and self.set_values.get(g.MTP_SYMBOL) == 0:
            # the user's own mtp_layers = 0 decides, as any other value they set does (the
            # memory model keeps a non-zero one; a 0 it cannot tell from the file's default)
            opts = opts.replace(mtp=False)
        return build_memory(self.graph, self.values, opts)


def _plain(expr: sympy.Expr | None) -> int | float | str | None:
    if expr is None:
        return None
    e = sympy.sympify(expr)
    if e.is_Integer:
        return int(e)
    if e.is_Float:
        return float(e)
    return str(e)


def parse(
    text: str,
    *,
    filename: str | None = None,
    model: str | None = None,
    set_values: Mapping[str, Any] | None = None,
    free: Iterable[str] = (),
    origins: Mapping[str, str] | None = None,
) -> Model:
    """Parse DSL text and check it into a :class:`Model`.

    Errors are :class:`~symmem.errors.SymmemError` with the source attached,
    so ``str(err)`` shows file:line:column and a caret.
    """
    free = as_names(free, "free", OptionError)
    set_values = as_mapping(set_values, "set_values", OptionError)
    if model is not None:
        as_name(model, "model", OptionError)
    if filename is not None:
        require(filename, str, "filename", OptionError)
    text = normalize(text) if isinstance(text, str) else text
    try:
        program = parse_text(text, filename)
        graph = g.build(program, model=model, set_values=set_values, free=free)
        return Model(
            graph,
            set_values=set_values,
            free=free,
            source=text,
            filename=filename,
            origins=origins,
        )
    except SymmemError as exc:
        raise exc.with_source(text, filename) from None


def load(
    path: str | Path,
    *,
    model: str | None = None,
    set_values: Mapping[str, Any] | None = None,
    free: Iterable[str] = (),
    origins: Mapping[str, str] | None = None,
) -> Model:
    """Load a ``.mem`` file, a Hugging Face ``config.json`` or a bundled model name.
    ``origins``: how each of ``set_values`` was given (``{"batch": "--batch"}``), for
    :meth:`Model.value_sources`."""
    text, filename = read_source(path)
    return parse(
        text, filename=filename, model=model, set_values=set_values, free=free, origins=origins
    )
