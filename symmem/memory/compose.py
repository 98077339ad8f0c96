"""The components of one build, put together: ``total`` is their exact sum."""

from __future__ import annotations

import sympy

from symmem.graph import positions_warning
from symmem.memory.activations import activations, transient_train
from symmem.memory.buffers import buffers
from symmem.memory.context import Build
from symmem.memory.inference import kv_cache, transient_infer
from symmem.memory.result import COMPONENTS
from symmem.memory.states import model_states


def components(b: Build, *, states: bool = True, saved: bool = True) -> dict[str, sympy.Expr]:
    """Every component of one build, and ``total``, their sum.

    ``states=False`` leaves out the model states (weights, gradients, optimizer: 0) and
    ``saved=False`` the rest (activations, transient, KV cache: 0), for a caller that builds
    each side under its own structure (the calculator page, :mod:`symmem.page`)."""
    cfg = b.cfg
    zero = sympy.Integer(0)
    comps: dict[str, sympy.Expr] = dict.fromkeys(COMPONENTS, zero)
    # DualPipe: each rank holds two stages' parameters (Build.share)
    if states:
        w, g, o = model_states(b)
        comps["weights"] = b.share(w)
        if cfg.mode == "train":
            comps["gradients"] = b.share(g)
            comps["optimizer"] = b.share(o)
    if saved and cfg.mode == "train":
        comps["activations"], more = activations(b)
        b.notes += more
        # the ZeRO-3 / offload / context-parallel working buffers are temporaries of the step
        comps["transient"] = transient_train(b) + buffers(b)
    elif saved:
        comps["kv_cache"] = kv_cache(b)
        comps["transient"] = transient_infer(b)
    comps["overhead"] = b.k.overhead
    if b.par.zero and sympy.sympify(b.par.dp) == 1:
        b.notes.append(
            f"zero = {b.par.zero} with dp = 1 shards nothing: ZeRO splits over the data-parallel "
            "ranks (--dp)"
        )
    warning = positions_warning(b.graph, b.values)
    if warning:
        b.notes.append(f"warning: {warning}")
    if b.stage_split is not None:
        b.notes.append(
            "pipeline stages hold " + ", ".join(str(n) for n in b.stage_split.sizes) + " repeated "
            "layers (decided at the model's values)"
        )
    if b.pp_on:
        b.notes.append(
            "pipeline parallel: each component is its most loaded stage's, so the total is an "
            "upper bound"
        )
    comps["total"] = sympy.Add(*comps.values())
    return comps


def host(b: Build) -> sympy.Expr:
    """Host memory per node of a build whose components were computed (:func:`components`):
    each rank's offloaded states (on its busiest pipeline stage) times the GPUs of a node."""
    return b.k.node_gpus * b.share(b.host)
