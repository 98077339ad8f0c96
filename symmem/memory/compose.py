"""The components of one build, put together: ``total`` is their exact sum."""

from __future__ import annotations

import sympy

from symmem.memory.activations import activations, transient_train
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
    if states:
        w, g, o = model_states(b)
        comps["weights"] = w.per_gpu(b.pp_on, b.k.pp)
        if cfg.mode == "train":
            comps["gradients"] = g.per_gpu(b.pp_on, b.k.pp)
            comps["optimizer"] = o.per_gpu(b.pp_on, b.k.pp)
    if saved and cfg.mode == "train":
        comps["activations"], more = activations(b)
        b.notes += more
        comps["transient"] = transient_train(b)
    elif saved:
        comps["kv_cache"] = kv_cache(b)
        comps["transient"] = transient_infer(b)
    comps["overhead"] = b.k.overhead
    if b.pp_on:
        b.notes.append(
            "pipeline parallel: each component is its most loaded stage's, so the total is an "
            "upper bound"
        )
    comps["total"] = sympy.Add(*comps.values())
    return comps
