"""The parallel layouts of a training job that fit N GPUs, and their memory per GPU and per node.

A layout is (tp, pp, virtual stages, dp, cp, ep, ZeRO stage, recompute, micro-batch,
offload) with tp x pp x cp x dp = N.  For each *structure* (recompute policy; pipeline on
or off) the memory model is built once with every numeric choice as a symbol
(:func:`symmem.memory.config.symbolic_knobs`: the parallel degrees, the ZeRO flags, the
offload flags, the in-flight micro-batches) and the micro-batch ``batch`` free, as the
ZeRO paper writes (2 + 2 + K) Psi / N_d; that expression is compiled once for numpy and
evaluated over every candidate at once.  The figures are float64 (exact to a byte for
what fits a GPU); ``symmem memory`` with a layout's :meth:`Layout.options` gives the
exact integer (tests/test_layouts.py holds them equal).

Order (Narayanan et al. 2021, Section 3 takeaways: tensor parallelism up to the GPUs of
a node, pipeline parallelism across nodes to fit the model, data parallelism for the
rest; and no recompute or offload where memory allows): layouts without offload
first, then by recompute (none, selective, full), then the least model parallelism
tp x pp x cp, the largest tp within a node, fewer pipeline stages, less context
parallelism, the lowest ZeRO stage, the largest micro-batch, fewer virtual stages,
the smallest ep.  See docs/memory.md, "Layout search".
"""

from __future__ import annotations

import csv
import functools
from collections.abc import Iterable, Mapping
from dataclasses import field
from typing import TYPE_CHECKING, Any

import numpy as np
import sympy

from symmem.errors import OptionError
from symmem.files import atomic_text
from symmem.graph import evaluator
from symmem.memory.compose import components, host
from symmem.memory.config import KNOB_ARGS, knob_values, resolve, symbolic_knobs
from symmem.memory.context import Build
from symmem.memory.placement import places
from symmem.options import MemoryOptions
from symmem.records import record
from symmem.symbols import knob

if TYPE_CHECKING:  # the API floor imports nothing from here; a model is passed in
    from symmem.model import Model

#: recompute policies in the order the search prefers them
RECOMPUTE = ("none", "selective", "full")
#: offload settings the search tries (params only with ZeRO-3)
OFFLOAD_CHOICES: tuple[tuple[str, ...], ...] = ((), ("optimizer",), ("optimizer", "params"))
#: the columns of a candidate row, then the recompute index
_ROW = ("tp", "pp", "vp", "dp", "cp", "ep", "zero", "b", "m", "offload", "recompute")
#: the GPU components of a training step (their sum is the GPU total)
_GPU = ("weights", "gradients", "optimizer", "activations", "transient", "overhead")


@record
class Layout:
    """One layout that fits, with its memory: bytes per GPU (``gpu``: the busiest GPU's total)
    and per node in host memory (``host``)."""

    tp: int
    pp: int
    virtual_stages: int
    dp: int
    cp: int
    ep: int
    zero: int
    checkpointing: str
    micro_batch: int
    micro_batches: int
    offload: tuple[str, ...]
    gpu: int
    host: int
    gpu_headroom: int
    host_headroom: int | None
    components: dict[str, int] = field(default_factory=dict)

    def options(self) -> dict[str, Any]:
        """The memory options (and ``batch``) that reproduce this layout with ``symmem memory``."""
        out: dict[str, Any] = {
            "tp": self.tp,
            "pp": self.pp,
            "dp": self.dp,
            "cp": self.cp,
            "ep": self.ep,
            "zero": self.zero,
            "checkpointing": self.checkpointing,
            "micro_batches": self.micro_batches,
            "offload": self.offload,
        }
        if self.virtual_stages != 1:
            out["virtual_stages"] = self.virtual_stages
        if self.tp > 1:
            out["sp"] = True
        if self.ep > 1:
            out["edp"] = self.dp * self.cp // self.ep
        return out

    def to_json(self) -> dict[str, Any]:
        return {
            "tp": self.tp,
            "pp": self.pp,
            "virtual_stages": self.virtual_stages,
            "dp": self.dp,
            "cp": self.cp,
            "ep": self.ep,
            "zero": self.zero,
            "checkpointing": self.checkpointing,
            "micro_batch": self.micro_batch,
            "micro_batches": self.micro_batches,
            "offload": list(self.offload),
            "gpu_bytes": self.gpu,
            "gpu_headroom": self.gpu_headroom,
            "host_bytes_per_node": self.host,
            "host_headroom": self.host_headroom,
            "components": dict(self.components),
        }


@record
class LayoutSearch:
    """Every layout that fits, in the search's order, and what was searched."""

    layouts: tuple[Layout, ...]
    gpus: int
    gpu_budget: int
    host_budget: int | None
    seq_len: int
    global_batch: int | None
    candidates: int
    notes: tuple[str, ...] = ()


def _divisors(n: int) -> list[int]:
    return [d for d in range(1, n + 1) if n % d == 0]


class _Compiled:
    """One structure's components, evaluated over numpy arrays of the knobs and ``batch`` by
    walking the expression once per call (no printing, no compiling: a structure is used once
    per search).  The model's symbols take their numbers; shared subtrees are evaluated once."""

    def __init__(self, exprs: Mapping[str, sympy.Expr], values: Mapping[sympy.Symbol, float]):
        self.exprs = dict(exprs)
        self.values = dict(values)

    def __call__(self, columns: Mapping[sympy.Symbol, Any]) -> dict[str, np.ndarray]:
        memo: dict[sympy.Basic, Any] = {**self.values, **columns}
        n = max((len(v) for v in columns.values() if isinstance(v, np.ndarray)), default=1)

        def ev(e: sympy.Basic) -> Any:
            hit = memo.get(e)
            if hit is not None:
                return hit
            if e.is_Number:
                out: Any = float(e)
            elif e.is_Add:
                out = sum(ev(a) for a in e.args)
            elif e.is_Mul:
                out = 1.0
                for a in e.args:
                    out = out * ev(a)
            elif e.is_Pow:
                out = ev(e.args[0]) ** float(e.args[1])
            elif isinstance(e, sympy.Min):
                out = functools.reduce(np.minimum, (ev(a) for a in e.args))
            elif isinstance(e, sympy.Max):
                out = functools.reduce(np.maximum, (ev(a) for a in e.args))
            elif isinstance(e, sympy.floor):
                out = np.floor(ev(e.args[0]))
            elif isinstance(e, sympy.ceiling):
                out = np.ceil(ev(e.args[0]))
            elif e.is_Symbol:
                raise OptionError(f"the layout search needs a value for {e}")
            else:
                out = float(e)
            memo[e] = out
            return out

        return {
            name: np.broadcast_to(np.asarray(ev(e), dtype=np.float64), (n,))
            for name, e in self.exprs.items()
        }


def _compile(
    model: Model,
    base: MemoryOptions,
    checkpointing: str,
    pp_on: bool,
    tp: int,
    values: Mapping[sympy.Symbol, float],
) -> _Compiled:
    """The structure (recompute, pipeline on or off) built once with symbolic knobs; sequence
    parallelism on (it divides by tp, which is 1 where tp is)."""
    opts = base.replace(
        checkpointing=checkpointing, pp=2 if pp_on else 1, zero=0, offload=(), tp=tp, sp=tp > 1
    )
    cfg, opt, quant = resolve(opts, model.graph.options)
    b = Build(model.graph, model.values, cfg, opt, quant, opts.policy, symbolic_knobs())
    comps = components(b)
    exprs = {name: comps[name] for name in _GPU}
    exprs["host"] = host(b)
    return _Compiled(exprs, values)


def search(
    model: Model,
    *,
    gpus: int,
    gpu_budget: int,
    seq_len: int,
    global_batch: int | None = None,
    host_budget: int | None = None,
    gpus_per_node: int = 8,
    options: MemoryOptions | None = None,
    micro_batch: Iterable[int] | None = None,
) -> LayoutSearch:
    """Every layout of a training step of ``model`` over ``gpus`` GPUs whose memory per GPU fits
    ``gpu_budget`` bytes (and per node ``host_budget``), in the order of the module docstring.

    ``options`` gives the choices the search does not vary (precision, optimizer...);
    ``global_batch`` (sequences per step) fixes dp x micro-batch x micro-batches, otherwise
    the micro-batch is 1 (or ``micro_batch``) and a pipeline holds pp micro-batches.
    """
    if gpus < 1 or gpus_per_node < 1:
        raise OptionError("gpus and gpus_per_node must be >= 1")
    base = (options or MemoryOptions()).replace(mode="train", gpus_per_node=gpus_per_node)
    if base.shard_group is not None:
        raise OptionError(
            "the layout search varies dp and shards over dp x cp: --shard-group (HSDP) is not "
            "searched; use symmem memory --shard-group for one layout"
        )
    symbols = model.graph.symbols
    shapes = [s for p in places(model.graph)[0] for s in p.node.in_shape]
    if "seq_len" not in symbols or not any(
        sympy.sympify(s).has(symbols["seq_len"]) for s in shapes
    ):
        raise OptionError("the layout search needs a sequence model: its shapes use no seq_len")
    m = model.with_values({"seq_len": seq_len}, free=["batch"])
    batch = m.graph.symbols["batch"]
    ev = evaluator(m.values)
    numbers: dict[sympy.Symbol, float] = {}
    for name, sym_ in m.graph.symbols.items():
        if sym_ == batch:
            continue
        v = ev(sym_)
        if v is None:
            raise OptionError(f"the layout search needs every symbol's value: {name} has none")
        numbers[sym_] = float(v)
    plist, repeats = places(m.graph)
    heads: set[int] = set()
    experts: set[int] = set()
    for p in plist:
        for opt, size in p.node.layer.parallel_sizes().items():
            v = ev(size)
            if isinstance(v, int):
                (heads if opt == "tp" else experts).add(v)
    inner = {p.repeat for p in plist if p.repeat is not None}
    layers = sum(int(ev(repeats[r].iterations) or 0) for r in inner)

    def tp_ok(t: int) -> bool:
        return all(h % t == 0 for h in heads)

    ep_choices = sorted({d for e in experts for d in _divisors(e)}) if experts else [1]
    ep_choices = [e for e in ep_choices if all(x % e == 0 for x in experts)]
    micro_given = sorted(set(micro_batch)) if micro_batch is not None else None
    notes: list[str] = []

    # the tp the structures are built with: any that divides the heads (the knobs replace it)
    build_tp = next((t for t in range(2, 1 + min(heads, default=1)) if tp_ok(t)), 1)
    rows: list[tuple[int, ...]] = []  # tp, pp, vp, dp, cp, ep, zero, b, m, offload index
    for tp in _divisors(min(gpus_per_node, gpus)):
        if gpus % tp or not tp_ok(tp):
            continue
        for cp in _divisors(gpus // tp):
            if seq_len % (2 * cp) and cp > 1:  # Megatron: seq_len divisible by 2 cp
                continue
            for pp in _divisors(gpus // (tp * cp)):
                if pp > 1 and (not repeats or pp > layers):
                    continue
                dp = gpus // (tp * cp * pp)
                vps = [1]
                if pp > 1 and layers:
                    vps += [v for v in range(2, layers // pp + 1) if layers % (pp * v) == 0]
                for ep in ep_choices:
                    if (dp * cp) % ep:
                        continue
                    if global_batch is not None:
                        if global_batch % dp:
                            continue
                        per_rank = global_batch // dp
                        pairs = [(b, per_rank // b) for b in _divisors(per_rank)]
                    else:
                        pairs = [(b, pp) for b in (micro_given or [1])]
                    for vp in vps:
                        for b, mb in pairs:
                            if vp > 1 and mb % pp:  # Megatron: interleaving needs m % pp == 0
                                continue
                            for zero in (0, 1, 2, 3):
                                if pp > 1 and zero >= 2:  # DeepSpeed: ZeRO-2/3 exclude pipelines
                                    continue
                                for oi, off in enumerate(OFFLOAD_CHOICES):
                                    if "params" in off and zero != 3:
                                        continue
                                    rows.append((tp, pp, vp, dp, cp, ep, zero, b, mb, oi))
    if not rows:
        raise OptionError(
            f"no layout of {gpus} GPUs divides the model (heads {sorted(heads)}, "
            f"seq_len {seq_len}, global batch {global_batch})"
        )
    grid = np.array(rows, dtype=np.int64)
    names = (*_GPU, "host")
    kept: list[np.ndarray] = []  # per structure: rows, recompute index, gpu total, components
    total_candidates = 0
    for pp_on in (False, True):
        sel = grid[(grid[:, 1] > 1) == pp_on]
        if not len(sel):
            continue
        cols = _columns(sel, base, gpus_per_node, model.graph.options)
        columns = {
            **{knob(a): c for a, c in zip(KNOB_ARGS, cols, strict=True)},
            batch: sel[:, 7].astype(np.float64),
        }
        for ci, ckpt in enumerate(RECOMPUTE):
            comps = _compile(m, base, ckpt, pp_on, build_tp, numbers)(columns)
            total_candidates += len(sel)
            gpu: np.ndarray = np.sum([comps[c] for c in _GPU], axis=0)
            fits: np.ndarray = gpu <= gpu_budget
            if host_budget is not None:
                fits &= comps["host"] <= host_budget
            idx = np.nonzero(fits)[0]
            if not len(idx):
                continue
            values = np.ceil(np.stack([gpu[idx], *(comps[c][idx] for c in names)], axis=1))
            kept.append(
                np.concatenate(
                    [sel[idx], np.full((len(idx), 1), ci), values.astype(np.int64)], axis=1
                )
            )
    found: list[Layout] = []
    if kept:
        table = np.concatenate(kept)
        t = {k: table[:, i] for i, k in enumerate(_ROW)}
        n_off = np.array([len(o) for o in OFFLOAD_CHOICES])[t["offload"]]
        ttp, tcp, tpp = t["tp"], t["cp"], t["pp"]
        # np.lexsort sorts by the last key first: the order of the module docstring, reversed
        order = np.lexsort(
            (
                t["ep"],
                t["vp"],
                -t["b"],
                t["zero"],
                tcp,
                tpp,
                -ttp,
                ttp > gpus_per_node,
                ttp * tpp * tcp,
                t["recompute"],
                n_off,
            )
        )
        for r in table[order].tolist():
            g, h = r[11], r[-1]
            found.append(
                Layout(
                    tp=r[0],
                    pp=r[1],
                    virtual_stages=r[2],
                    dp=r[3],
                    cp=r[4],
                    ep=r[5],
                    zero=r[6],
                    checkpointing=RECOMPUTE[r[10]],
                    micro_batch=r[7],
                    micro_batches=r[8],
                    offload=OFFLOAD_CHOICES[r[9]],
                    gpu=g,
                    host=h,
                    gpu_headroom=gpu_budget - g,
                    host_headroom=None if host_budget is None else host_budget - h,
                    components=dict(zip(names, r[12:], strict=True)),
                )
            )
    if not found:
        notes.append("nothing fits: more GPUs, a smaller micro-batch or a lower precision")
    return LayoutSearch(
        layouts=tuple(found),
        gpus=gpus,
        gpu_budget=gpu_budget,
        host_budget=host_budget,
        seq_len=seq_len,
        global_batch=global_batch,
        candidates=total_candidates,
        notes=tuple(notes),
    )


def _columns(
    sel: np.ndarray, base: MemoryOptions, gpus_per_node: int, declared: Mapping[str, str]
) -> list[Any]:
    """The knobs (in KNOB_ARGS order) for each candidate row: the search's degrees as arrays,
    the base configuration's numbers (dtypes, master copy, overhead) as scalars."""
    cfg, _, _ = resolve(base, declared)
    fixed = dict(zip(KNOB_ARGS, knob_values(cfg), strict=True))
    f = lambda a: a.astype(np.float64)  # noqa: E731
    tp, pp, vp, dp, cp, ep = (f(sel[:, i]) for i in range(6))
    zero, mb, oi = sel[:, 6], f(sel[:, 8]), sel[:, 9]
    offload = np.array([[("params" in o), ("optimizer" in o)] for o in OFFLOAD_CHOICES])
    cols: dict[str, Any] = {
        **{k: float(v) for k, v in fixed.items()},
        "tp": tp,
        "pp": pp,
        "dp": dp,
        "ep": ep,
        "micro_batches": mb,
        "cp": cp,
        "cp_on": (cp > 1).astype(np.float64),
        "etp": tp,
        "edp": dp * cp / ep,
        "zero_group": dp * cp,
        "zero_weights": (zero >= 3).astype(np.float64),
        "zero_grads": (zero >= 2).astype(np.float64),
        "zero_optimizer": (zero >= 1).astype(np.float64),
        "offload_params": offload[oi, 0].astype(np.float64),
        "offload_optimizer": offload[oi, 1].astype(np.float64),
        "offload_activations": 0.0,
        "node_gpus": float(gpus_per_node),
        "stage_copies": 1.0,
        "virtual_stages": vp,
        "interleaved": (vp > 1).astype(np.float64),
        "dual": 0.0,
    }
    return [cols[name] for name in KNOB_ARGS]


#: the columns of the CSV (and of each row of --json): degrees, then bytes
CSV_FIELDS = (
    "tp",
    "pp",
    "virtual_stages",
    "dp",
    "cp",
    "ep",
    "zero",
    "checkpointing",
    "micro_batch",
    "micro_batches",
    "offload",
    "gpu_bytes",
    "gpu_headroom",
    "host_bytes_per_node",
    "host_headroom",
    *(f"{c}_bytes" for c in _GPU),
)


def csv_rows(result: LayoutSearch) -> list[list[Any]]:
    """One row per layout in :data:`CSV_FIELDS` order (``offload`` as ``optimizer+params``)."""
    out = []
    for x in result.layouts:
        out.append(
            [
                x.tp,
                x.pp,
                x.virtual_stages,
                x.dp,
                x.cp,
                x.ep,
                x.zero,
                x.checkpointing,
                x.micro_batch,
                x.micro_batches,
                "+".join(x.offload) or "none",
                x.gpu,
                x.gpu_headroom,
                x.host,
                "" if x.host_headroom is None else x.host_headroom,
                *(x.components[c] for c in _GPU),
            ]
        )
    return out


def write_csv(result: LayoutSearch, path: str) -> None:
    """Every layout of ``result`` as CSV at ``path`` (written atomically)."""
    with atomic_text(path) as fh:
        w = csv.writer(fh)
        w.writerow(CSV_FIELDS)
        w.writerows(csv_rows(result))


def to_json(result: LayoutSearch) -> dict[str, Any]:
    """The ``--json`` document: what was searched and every layout that fits, in order."""
    return {
        "gpus": result.gpus,
        "gpu_budget": result.gpu_budget,
        "host_budget": result.host_budget,
        "seq_len": result.seq_len,
        "global_batch": result.global_batch,
        "candidates": result.candidates,
        "fits": len(result.layouts),
        "notes": list(result.notes),
        "layouts": [x.to_json() for x in result.layouts],
    }
