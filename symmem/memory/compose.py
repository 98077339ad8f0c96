"""The components of one build, put together: ``total`` is their exact sum."""

from __future__ import annotations

import sympy

from symmem.graph import positions_warning
from symmem.memory.activations import activations, transient_train
from symmem.memory.context import Build
from symmem.memory.inference import kv_cache, transient_infer
from symmem.memory.result import COMPONENTS
from symmem.memory.states import model_states


def components(b: Build) -> dict[str, sympy.Expr]:
    """Every component of one build, and ``total``, their sum."""
    cfg = b.cfg
    zero = sympy.Integer(0)
    w, g, o = model_states(b)
    comps: dict[str, sympy.Expr] = dict.fromkeys(COMPONENTS, zero)
    comps["weights"] = w.per_gpu(b.pp_on, b.k.pp)
    if cfg.mode == "train":
        comps["gradients"] = g.per_gpu(b.pp_on, b.k.pp)
        comps["optimizer"] = o.per_gpu(b.pp_on, b.k.pp)
        comps["activations"], more = activations(b)
        b.notes += more
        comps["transient"] = transient_train(b)
    else:
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
    if b.pp_on:
        b.notes.append(
            "pipeline parallel: each component is its most loaded stage's, so the total is an "
            "upper bound"
        )
    comps["total"] = sympy.Add(*comps.values())
    return comps
