"""A serving plan's question (:class:`ServingOptions`) and answer (:class:`ServingPlan`)."""

from __future__ import annotations

from dataclasses import field
from typing import Any

from symmem.errors import OptionError
from symmem.quant import QUANTS
from symmem.records import record

#: the weights' dtypes an engine loads (``--dtype``; None: the checkpoint's)
SERVING_DTYPES = ("bf16", "fp16", "fp32")
#: the weight layouts (``--quantization``; ``none``: the 16-bit checkpoint)
SERVING_QUANTS = ("none", *QUANTS)
ENGINES = ("vllm", "sglang", "trtllm")
#: vLLM's MXFP4 MoE kernels (``Mxfp4Backend``), each padding the experts' matrices its own way:
#: (hidden multiple, per-rank intermediate multiple), vllm/model_executor/layers/quantization/
#: mxfp4.py ``Mxfp4MoEMethod.create_weights``.  Triton's swizzled layout (triton_kernels) is
#: counted at the checkpoint's size: its padding is not modelled (docs/serving.md).
MXFP4_BACKENDS = {"marlin": (256, 128), "triton": (1, 64), "flashinfer": (256, 256)}
#: how vLLM is started, which decides its batch defaults (``UsageContext`` in
#: vllm/usage/usage_lib.py, read by ``EngineArgs._set_default_args``): ``serve`` is the OpenAI
#: API server (``vllm serve``: ``OPENAI_API_SERVER``), ``llm`` the Python ``vllm.LLM`` class
#: (offline inference: ``LLM_CLASS``)
ENTRYPOINTS = {"serve": "OPENAI_API_SERVER", "llm": "LLM_CLASS"}


@record
class ServingOptions:
    """The engine's settings; ``None`` means the engine's own default (stated in the plan,
    with its source).  Byte sizes are ints.  ``budget``: one GPU's total as CUDA reports it
    (with ``gpu`` too, the GPU still decides the engine's defaults and its interconnect)."""

    engine: str = "vllm"
    gpu: str | None = None
    budget: int | None = None
    tp: int = 1
    pp: int = 1
    max_model_len: int | None = None
    gpu_memory_utilization: float | None = None
    max_num_batched_tokens: int | None = None
    max_num_seqs: int | None = None
    kv_dtype: str = "auto"
    block_size: int | None = None
    enforce_eager: bool = False
    #: the checkpoint's dtype / layout, when the config does not say (or to override it)
    dtype: str | None = None
    quantization: str | None = None
    #: runtime-only terms: None = the engine's documented default (docs/serving.md)
    non_torch_bytes: int | None = None
    cuda_graph_bytes: int | None = None
    #: vLLM's ``--kv-cache-memory``: the KV cache's bytes per GPU, given instead of profiled
    kv_cache_memory: int | None = None
    #: vLLM's MXFP4 MoE kernel (:data:`MXFP4_BACKENDS`); None: vLLM's choice for the GPU
    mxfp4_backend: str | None = None
    #: how vLLM is started (:data:`ENTRYPOINTS`): its batch defaults depend on it
    entrypoint: str = "serve"

    def __post_init__(self) -> None:
        if self.engine not in ENGINES:
            raise OptionError(
                f"unknown engine '{self.engine}': valid names are {', '.join(ENGINES)}"
            )
        if self.mxfp4_backend is not None and self.mxfp4_backend not in MXFP4_BACKENDS:
            raise OptionError(
                f"unknown MXFP4 backend '{self.mxfp4_backend}': valid names are "
                + ", ".join(MXFP4_BACKENDS)
            )
        if self.entrypoint not in ENTRYPOINTS:
            raise OptionError(
                f"unknown entrypoint '{self.entrypoint}': valid names are " + ", ".join(ENTRYPOINTS)
            )
        if self.entrypoint != "serve" and self.engine != "vllm":
            raise OptionError(
                f"entrypoint '{self.entrypoint}' is vLLM's Python LLM class; the {self.engine} "
                "budget does not model its entry points (docs/serving.md)"
            )
        if self.dtype is not None and self.dtype not in SERVING_DTYPES:
            raise OptionError(
                f"unknown dtype '{self.dtype}': valid names are {', '.join(SERVING_DTYPES)}"
            )
        if self.quantization is not None and self.quantization not in SERVING_QUANTS:
            raise OptionError(
                f"unknown quantization '{self.quantization}': valid names are "
                + ", ".join(SERVING_QUANTS)
            )
        for name in ("tp", "pp"):
            v = getattr(self, name)
            if isinstance(v, bool) or not isinstance(v, int) or v < 1:
                raise OptionError(f"{name} must be an integer >= 1, not {v!r}")
        for name in ("max_model_len", "max_num_batched_tokens", "max_num_seqs", "block_size"):
            v = getattr(self, name)
            if v is not None and (isinstance(v, bool) or not isinstance(v, int) or v < 1):
                raise OptionError(f"{name} must be an integer >= 1, not {v!r}")
        g = self.gpu_memory_utilization
        if g is not None and not 0 < g <= 1:
            raise OptionError(f"gpu_memory_utilization must be in (0, 1], not {g}")
        for name in ("budget", "kv_cache_memory", "non_torch_bytes", "cuda_graph_bytes"):
            v = getattr(self, name)
            if v is not None and (isinstance(v, bool) or not isinstance(v, int) or v < 0):
                raise OptionError(f"{name} must be a size in bytes >= 0, not {v!r}")


@record
class Setting:
    """One setting the plan used: its value and where the value comes from."""

    value: Any
    source: str


@record
class StagePlan:
    """One pipeline stage's budget on one GPU."""

    weights_bytes: int
    kv_bytes_per_token: int
    activation_peak_bytes: int
    kv_cache_bytes: int
    kv_blocks: int
    kv_tokens: int
    attention_layers: int


@record
class ServingPlan:
    """One engine's budget for one model on one GPU (the busiest stage with pp > 1).

    Every field is per GPU.  ``kv_cache_bytes`` is what the engine gives the KV cache;
    ``kv_tokens`` the tokens it logs ("GPU KV cache size: N tokens"); ``max_concurrency``
    the requests of ``max_model_len`` tokens that fit at once ("Maximum concurrency for N
    tokens per request"); ``starts`` whether the engine starts (vLLM refuses when one
    request of ``max_model_len`` tokens does not fit).
    """

    engine: str
    model: str
    budget_bytes: int
    requested_bytes: int
    weights_bytes: int
    kv_bytes_per_token: int
    activation_peak_bytes: int
    non_torch_bytes: int
    cuda_graph_bytes: int
    kv_cache_bytes: int
    kv_blocks: int
    kv_tokens: int
    max_concurrency: float
    max_model_len: int
    #: the largest max_model_len one request of which fits (vLLM's start-up check)
    max_model_len_that_starts: int
    starts: bool
    settings: dict[str, Setting]
    formulas: dict[str, str]
    stages: tuple[StagePlan, ...] = ()
    notes: tuple[str, ...] = field(default=())

    def to_json(self) -> dict[str, Any]:
        return {
            "engine": self.engine,
            "model": self.model,
            "budget_bytes": self.budget_bytes,
            "requested_bytes": self.requested_bytes,
            "weights_bytes": self.weights_bytes,
            "kv_bytes_per_token": self.kv_bytes_per_token,
            "activation_peak_bytes": self.activation_peak_bytes,
            "non_torch_bytes": self.non_torch_bytes,
            "cuda_graph_bytes": self.cuda_graph_bytes,
            "kv_cache_bytes": self.kv_cache_bytes,
            "kv_blocks": self.kv_blocks,
            "kv_tokens": self.kv_tokens,
            "max_concurrency": self.max_concurrency,
            "max_model_len": self.max_model_len,
            "max_model_len_that_starts": self.max_model_len_that_starts,
            "starts": self.starts,
            "settings": {
                k: {"value": s.value, "source": s.source} for k, s in self.settings.items()
            },
            "formulas": dict(self.formulas),
            "stages": [vars(s) for s in self.stages],
            "notes": list(self.notes),
        }
