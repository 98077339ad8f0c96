"""Serving plans: an inference server's budget for a model, per GPU, as the engine computes it.

``plan(model, facts, ServingOptions(engine="vllm", gpu="h100", tp=2))`` answers "will this
model serve on these GPUs, with what context and how many concurrent requests?" with the
engine's own rules: vLLM (:mod:`.vllm`), SGLang (:mod:`.sglang`), TensorRT-LLM
(:mod:`.trtllm`).  What they share (the weights and KV cache per GPU under tp / pp, the
forward peak of a prefill chunk) is in :mod:`.common`.  docs/serving.md has each rule with
its source and the published start-up logs these rules are checked against.
"""

from __future__ import annotations

from dataclasses import replace
from pathlib import Path
from typing import TYPE_CHECKING

from symmem.errors import OptionError
from symmem.serving import sglang, trtllm, vllm
from symmem.serving.common import (
    VLLM_DEFAULT_MAX_LEN,
    ModelFacts,
    facts_from_config,
    facts_from_model,
    read_facts,
)
from symmem.serving.result import ENGINES, ServingOptions, ServingPlan, Setting, StagePlan

if TYPE_CHECKING:  # the API floor (Model) is above this package
    from symmem.model import Model

__all__ = [
    "ENGINES",
    "ModelFacts",
    "ServingOptions",
    "ServingPlan",
    "Setting",
    "StagePlan",
    "facts_from_config",
    "facts_from_model",
    "facts_of",
    "plan",
    "read_facts",
    "smallest_tp",
]

_ENGINES = {"vllm": vllm.plan, "sglang": sglang.plan, "trtllm": trtllm.plan}


def plan(model: Model, options: ServingOptions, facts: ModelFacts | None = None) -> ServingPlan:
    """The engine's budget for ``model`` (``facts``: by default from the config.json it was
    imported from)."""
    if facts is None:
        facts = facts_of(model)
    return _ENGINES[options.engine](model, facts, options)


def facts_of(model: Model) -> ModelFacts:
    """The serving facts of the config.json a model was imported from; for a bundled model or
    a ``.mem`` file, what its header declares (:func:`facts_from_model`)."""
    name = model.filename or ""
    name = name.removesuffix(" (as imported .mem)")
    found = read_facts(Path(name)) if name else None
    if found is None:
        return facts_from_model(model)
    if found.max_len is None:
        # a config that names no length: its config class's default, which the importer
        # wrote into the header (Gemma-3's text part: 131,072), else vLLM's assumption
        # (``_get_and_verify_max_len``: "Assuming the model's maximum length is 2048")
        header = facts_from_model(model).max_len
        if header is not None:
            return replace(found, max_len=header, source=f"{found.source}, its class's default")
        return replace(
            found, max_len=VLLM_DEFAULT_MAX_LEN, source="vLLM's default: the config names no length"
        )
    return found


def smallest_tp(
    model: Model, options: ServingOptions, facts: ModelFacts | None = None, most: int = 64
) -> tuple[int, ServingPlan]:
    """The smallest tensor-parallel degree (a power of two) at which the engine starts with
    ``max_model_len``; OptionError when none up to ``most`` does."""
    tp, last = 1, None
    while tp <= most:
        try:
            p = plan(model, replace(options, tp=tp), facts)
        except OptionError as exc:  # tp does not divide the heads: try the next
            last = str(exc)
            tp *= 2
            continue
        if p.starts and p.kv_blocks > 0:
            return tp, p
        tp *= 2
    raise OptionError(
        f"no tensor-parallel degree up to {most} serves this context"
        + (f" ({last})" if last else "")
    )
