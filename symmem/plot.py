"""Memory against a swept symbol, as a PNG/PDF/SVG (matplotlib, the ``plot`` extra).

One line per value of a second grid symbol, the budget as a horizontal line,
the largest value that fits (from :func:`symmem.solve.solve`) marked on each
line, and optionally the components stacked.  Memory is drawn in GiB (as
nvidia-smi and the budgets of GPUs are read).  Written atomically.
"""

from __future__ import annotations

import os
from collections.abc import Mapping, Sequence
from typing import Any

import numpy as np

from symmem.errors import OptionError
from symmem.files import atomic_path

GiB = float(1024**3)


def _matplotlib() -> Any:
    try:
        import matplotlib
    except ImportError:
        raise OptionError("--plot needs matplotlib (pip install 'symmem[plot]')") from None
    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    return plt


def check_target(path: str | os.PathLike[str]) -> tuple[str, str, str]:
    """OptionError unless ``path`` is a .png/.pdf/.svg in an existing directory (checked before
    a sweep does any work or writes any file)."""
    target = os.fspath(path)
    ext = os.path.splitext(target)[1].lower()
    if ext not in (".png", ".pdf", ".svg"):
        raise OptionError(f"--plot {target}: use a .png, .pdf or .svg file name")
    directory = os.path.dirname(os.path.abspath(target))
    if not os.path.isdir(directory):
        raise OptionError(f"--plot {target}: the directory {directory} does not exist")
    return target, ext, directory


def plot_sweep(
    columns: Mapping[str, np.ndarray],
    grid_names: Sequence[str],
    value: str,
    path: str | os.PathLike[str],
    *,
    budget_bytes: int | None = None,
    budget_label: str | None = None,
    solved: Mapping[int | None, Any] | None = None,
    components: Sequence[str] = (),
    title: str | None = None,
    unit: str = "bytes",
    xlog: bool | None = None,
) -> dict[str, str]:
    """Draw ``value`` against ``grid_names[0]``, one line per value of ``grid_names[1]``.

    ``xlog``: a log x axis; None: when the grid spans a factor of 64 or more and some line is
    not a straight one (a quantity linear in the symbol, memory in batch, is drawn on a
    linear axis, where it reads as the line it is).  Returns what was drawn: ``title`` and
    ``xscale``.
    ``solved``: second-symbol value (None with one grid symbol) -> SolveResult, marked on its line.
    ``components``: column names to stack (one line only).
    """
    target, ext, _ = check_target(path)
    if len(grid_names) > 2:
        raise OptionError(
            "--plot draws one or two grid symbols (x axis, one line per value of the second)"
        )
    for name in (grid_names[0], value, *components):
        _plottable(name, columns[name])
    plt = _matplotlib()
    x_name = grid_names[0]
    scale = GiB if unit == "bytes" else 1e9
    ylabel = f"{value} (GiB)" if unit == "bytes" else f"{value} (billions of {unit})"
    fig, ax = plt.subplots(figsize=(8, 5), dpi=120)
    x = columns[x_name]
    groups: list[tuple[int | None, np.ndarray]]
    if len(grid_names) == 2:
        second = columns[grid_names[1]]
        groups = [(int(w), second == w) for w in np.unique(second)]
    else:
        groups = [(None, np.ones(len(x), dtype=bool))]
    if components and len(groups) > 1:
        raise OptionError(
            "--stacked draws one line: sweep one symbol, or give the second a single value"
        )
    palette = plt.get_cmap("tab10").colors
    straight = True
    for i, (w, mask) in enumerate(groups):
        xs = x[mask].astype(np.float64)
        order = np.argsort(xs)
        ys = np.asarray(columns[value][mask], dtype=np.float64)[order] / scale
        xs = xs[order]
        straight = straight and _straight(xs, ys)
        color = palette[i % len(palette)] if len(groups) > 1 else "black"
        label = f"{grid_names[1]} = {w:,}" if w is not None else value
        r = (solved or {}).get(w)
        if r is not None and r.fits:
            label += (
                f"  (fits up to {x_name} = {r.value:,})"
                if not r.unbounded
                else "  (every value fits)"
            )
        if components:
            shown = [
                c for c in components if np.any(np.asarray(columns[c][mask], dtype=np.float64) != 0)
            ]
            stack = [np.asarray(columns[c][mask], dtype=np.float64)[order] / scale for c in shown]
            ax.stackplot(xs, *stack, labels=shown, alpha=0.75)
            ax.plot(xs, ys, color="black", linewidth=1.5, label="total")
        else:
            ax.plot(
                xs,
                ys,
                color=color,
                linewidth=1.8,
                marker="o" if len(xs) <= 24 else None,
                markersize=3,
                label=label,
            )
        if r is not None and r.fits and not r.unbounded and xs[0] <= r.value <= xs[-1]:
            ax.plot(
                [r.value],
                [float(r.bytes_at_value) / scale],
                marker="*",
                markersize=13,
                color=color if not components else "gold",
                markeredgecolor="black",
                zorder=5,
            )
            ax.annotate(
                f"{x_name} = {r.value:,}",
                (r.value, float(r.bytes_at_value) / scale),
                textcoords="offset points",
                xytext=(6, -14),
                fontsize=8,
            )
    if budget_bytes is not None:
        ax.axhline(
            budget_bytes / scale,
            color="black" if components else "red",
            linestyle="--",
            linewidth=1.2,
            label=budget_label or f"budget {budget_bytes / scale:,.2f} GiB",
        )
        # keep the crossing readable: curves far above the budget are clipped at 3x the budget
        peak = float(np.max(np.asarray(columns[value], dtype=np.float64)))
        top = max(min(peak, 3 * budget_bytes), budget_bytes) / scale
        ax.set_ylim(0, top * 1.08)
    ax.set_xlabel(x_name)
    ax.set_ylabel(ylabel)
    if budget_bytes is None:
        ax.set_ylim(bottom=0)
    if xlog is None:
        xlog = bool(np.max(x) / max(np.min(x), 1) >= 64) and not straight
    if xlog:
        from matplotlib.ticker import FuncFormatter

        ax.set_xscale("log", base=2)
        ax.xaxis.set_major_formatter(FuncFormatter(lambda v, _pos: f"{v:,.0f}"))
    ax.grid(True, alpha=0.3)
    ax.legend(fontsize=8, loc="upper left")
    if title:
        ax.set_title(title)
    fig.tight_layout()
    try:
        with atomic_path(target, suffix=ext) as tmp:
            fig.savefig(tmp)
    finally:
        plt.close(fig)
    return {"title": title or "", "xscale": "log" if xlog else "linear"}


def _straight(xs: np.ndarray, ys: np.ndarray) -> bool:
    """Whether the points lie on one straight line (to a part in 10^9 of the range)."""
    if len(xs) < 3 or xs[-1] == xs[0]:
        return True
    line = ys[0] + (ys[-1] - ys[0]) * (xs - xs[0]) / (xs[-1] - xs[0])
    span = max(float(np.max(np.abs(ys))), 1e-300)
    return bool(np.max(np.abs(ys - line)) <= 1e-9 * span)


#: the largest value a plot draws: a float64 (matplotlib's numbers) ends at about 1.8e308
PLOT_MAX = 1e300


def _plottable(name: str, col: np.ndarray) -> None:
    """OptionError for a column a plot cannot draw (values beyond a float's range)."""
    if col.dtype != object:
        return
    biggest = max((abs(v) for v in col), default=0)
    if biggest > PLOT_MAX:
        raise OptionError(
            f"--plot: {name} reaches {float(biggest) if biggest < 10**308 else 'above 1e308'}, "
            f"beyond what a plot can draw (up to {PLOT_MAX:g}); write the exact values with "
            "--out FILE.csv"
        )
