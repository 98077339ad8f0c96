"""What every engine's budget shares: the model as the engine loads it, per GPU.

* :class:`ModelFacts`: what a Hugging Face ``config.json`` says that the layer graph does
  not (the checkpoint's dtype, its ``quantization_config``, the context it allows);
* :func:`layout`: the weights and the attention layers of each pipeline stage, per GPU,
  under tensor parallelism.  The bytes come from the memory model (weights under tp with
  the quantized layout: :mod:`symmem.memory.states`; each layer's KV cache and its tp
  split: :meth:`Layer.kv_cache` / :meth:`Layer.kv_cache_split`), read per layer from
  a build at one token;
* :func:`forward_peak`: the working set of one forward over a chunk of tokens, which the
  engines measure in their profiling run (the memory model's inference transient: the
  largest layer's intermediates, MoE layers routing the chunk's tokens);
* :func:`pp_partition`: the decoder layers of each pipeline stage, as vLLM splits them.

Nothing here is specific to one engine; the engines' rules are in
:mod:`symmem.serving.vllm`, :mod:`.sglang` and :mod:`.trtllm` (docs/serving.md).
"""

from __future__ import annotations

import json
from collections.abc import Mapping
from fractions import Fraction
from pathlib import Path
from typing import TYPE_CHECKING, Any

import sympy

from symmem.errors import OptionError
from symmem.graph import position_limits
from symmem.hf.quantization import format_of
from symmem.memory import build
from symmem.memory.placement import places
from symmem.options import MemoryOptions
from symmem.precision import DTYPE_BYTES
from symmem.quant import NO_QUANT, QUANTS
from symmem.records import record
from symmem.serving.result import ServingOptions, Setting

if TYPE_CHECKING:  # the API floor (Model) is above this package
    from symmem.model import Model

GiB = 1024**3

#: ``torch_dtype`` / ``dtype`` of a config.json -> symmem's dtype names
_HF_DTYPES = {
    "bfloat16": "bf16",
    "float16": "fp16",
    "half": "fp16",
    "float32": "fp32",
    "float": "fp32",
}
#: what ``--kv-dtype`` accepts and the bytes per element of each (auto: the model's dtype)
KV_DTYPES = ("auto", "bf16", "fp16", "fp8")


@record
class ModelFacts:
    """What a config.json says that the layer graph does not."""

    #: the dtype the checkpoint is loaded in (vLLM's ``--dtype auto``: the config's torch_dtype)
    dtype: str = "bf16"
    #: the context the model allows (vLLM's derived max_model_len), None when unknown
    max_len: int | None = None
    #: symmem's name of the weight layout (:data:`symmem.precision.QUANTS`), None: unquantized
    quant: str | None = None
    group_size: int | None = None
    #: the quantization as the config declares it, for people
    quant_text: str | None = None
    source: str = "defaults (no config.json)"


def facts_from_config(data: Mapping[str, Any], source: str = "config.json") -> ModelFacts:
    """The serving facts of a config.json (its text already parsed)."""
    text_cfg = data.get("text_config") if isinstance(data.get("text_config"), dict) else None
    cfg: Mapping[str, Any] = text_cfg or data
    raw = data.get("torch_dtype") or data.get("dtype") or cfg.get("torch_dtype") or "bfloat16"
    dtype = _HF_DTYPES.get(str(raw), "bf16")
    if dtype == "fp32":
        # vLLM serves an fp32 checkpoint in half precision (ModelConfig._get_and_verify_dtype:
        # "fp32 -> fp16/bf16 by default"), bf16 where supported
        dtype = "bf16"
    quant, group, qtext = _quantization(
        data.get("quantization_config") or cfg.get("quantization_config")
    )
    model_type = str(cfg.get("model_type") or data.get("model_type") or "")
    return ModelFacts(dtype, _max_len(cfg, model_type), quant, group, qtext, source)


#: the context vLLM assumes when a config names none (``_get_and_verify_max_len`` logs "The
#: model's config.json does not contain any of the following keys ... Assuming the model's
#: maximum length is 2048")
VLLM_DEFAULT_MAX_LEN = 2048


def _max_len(cfg: Mapping[str, Any], model_type: str = "") -> int | None:
    """vLLM's derived max_model_len (``_get_and_verify_max_len``, vllm/config/model.py): the
    smallest of the position fields, stretched by a rope scaling factor except for the kinds
    that keep the original length (llama3, longrope, su, mrope) and for Gemma-3, whose
    max_position_embeddings is already scaled ("gemma3" in the model type)."""
    keys = (
        "max_position_embeddings",
        "n_positions",
        "max_seq_len",
        "seq_length",
        "max_sequence_length",
    )
    found = [int(cfg[k]) for k in keys if isinstance(cfg.get(k), int)]
    if not found:
        return None
    length = min(found)
    rope = cfg.get("rope_scaling")
    if isinstance(rope, dict) and "gemma3" not in model_type:
        kind = rope.get("rope_type") or rope.get("type")
        factor = rope.get("factor")
        if kind not in (None, "default", "llama3", "longrope", "su", "mrope") and factor:
            if kind == "yarn" and isinstance(rope.get("original_max_position_embeddings"), int):
                length = int(rope["original_max_position_embeddings"] * factor)
            else:
                length = int(length * factor)
    return length


#: checkpoint formats whose tensors vLLM holds in another layout (fp32 channel scales)
ENGINE_LAYOUT = {"int8-channel": "int8-channel-fp32", "fp8-channel": "fp8-channel-fp32"}


def _quantization(q: Any) -> tuple[str | None, int | None, str | None]:
    """A config's ``quantization_config`` -> (symmem format, group size, description), read by
    the importer's one parser (:func:`symmem.hf.quantization.format_of`): the engine loads the
    checkpoint's bytes (Marlin repacks GPTQ / AWQ into the same 4 bits and scales)."""
    if not isinstance(q, dict):
        return None, None, None
    name, group, _, why = format_of(q)
    method = str(q.get("quant_method", "unknown"))
    if name is None:
        raise OptionError(
            f"quantization '{method}' in the config is not modelled ({why}); see docs/serving.md"
        )
    held = ENGINE_LAYOUT.get(name, name)
    return (
        held,
        group,
        f"{method}: {name}"
        + (f", held as {held}" if held != name else "")
        + (f", group {group}" if group else ""),
    )


def facts_from_model(model: Model) -> ModelFacts:
    """The serving facts a model's header declares (``dtype``, ``quantization``,
    ``group_size``) and the positions it has (the header's ``max_positions`` or a learned
    position table, at the model's values): what a bundled model or an imported ``.mem`` says
    in place of its config.json.  A model that declares no dtype is served in bf16, as vLLM
    serves an fp32 checkpoint (``--dtype auto``)."""
    opts = model.graph.options
    declared = str(opts.get("dtype", "fp32"))
    dtype = "bf16" if declared == "fp32" else declared
    name = opts.get("quantization")
    quant = ENGINE_LAYOUT.get(str(name), str(name)) if name is not None else None
    group = int(opts["group_size"]) if quant is not None and "group_size" in opts else None
    text = None
    if name is not None:
        text = f"{name}" + (f", held as {quant}" if quant != name else "")
        text += (f", group {group}" if group else "") + " (the model's header)"
    limits = position_limits(model.graph, model.values)
    max_len = min(n for n, _ in limits) if limits else None
    where = model.filename or model.name
    return ModelFacts(dtype, max_len, quant, group, text, f"the model's header, {where}")


def checkpoint_format(
    facts: ModelFacts, o: ServingOptions, settings: dict[str, Setting]
) -> tuple[str, str | None, int | None]:
    """The weights' dtype, layout (:data:`symmem.quant.QUANTS`, None: unquantized) and group
    size the engine loads: ``--dtype`` / ``--quantization`` where given (``none``: the 16-bit
    checkpoint), else the checkpoint's (``facts``); each recorded in ``settings`` with its
    source."""
    dtype = o.dtype or facts.dtype
    settings["dtype"] = Setting(dtype, "given" if o.dtype else f"the checkpoint ({facts.source})")
    if o.quantization is not None:
        name = o.quantization
        quant = None if name == "none" else ENGINE_LAYOUT.get(name, name)
        group = None
        source = "given"
    else:
        quant, group = facts.quant, facts.group_size
        source = facts.quant_text or f"none declared ({facts.source})"
    settings["quantization"] = Setting(quant or "none", source)
    return dtype, quant, group


def read_facts(path: str | Path) -> ModelFacts | None:
    """The facts of ``path`` when it is a config.json (or a directory holding one); None for
    a ``.mem`` file or a bundled model (:func:`facts_from_model` reads its header)."""
    p = Path(path)
    if p.is_dir():
        p = p / "config.json"
    if p.suffix != ".json" or not p.is_file():
        return None
    try:
        data = json.loads(p.read_text(encoding="utf-8"))
    except (OSError, ValueError):
        return None
    return facts_from_config(data, str(p)) if isinstance(data, dict) else None


# ---------------------------------------------------------------- the model per GPU


@record
class AttnLayer:
    """One attention layer's KV cache on one GPU."""

    #: bytes per cached token on this GPU (k and v, heads / tp or replicated, or MLA's latent)
    bytes_per_token: int
    #: sliding window (tokens), None: full attention
    window: int | None


@record
class DecoderLayer:
    """One decoder layer as a pipeline stage holds it."""

    weights: Fraction
    attention: tuple[AttnLayer, ...]


@record
class Layout:
    """The model per GPU under tp, before pipeline stages: what sits before the decoder
    layers (embeddings), the decoder layers in order, and what comes after (norm, head)."""

    pre: Fraction
    layers: tuple[DecoderLayer, ...]
    post: Fraction


@record
class Stage:
    """One pipeline stage on one GPU."""

    weights: int
    attention: tuple[AttnLayer, ...]
    first: bool
    last: bool

    @property
    def kv_bytes_per_token(self) -> int:
        return sum(a.bytes_per_token for a in self.attention)


def _number(q: Any, what: str) -> Fraction:
    v = q.evaluate() if hasattr(q, "evaluate") else q
    v = sympy.nsimplify(v) if not isinstance(v, int | sympy.Basic) else sympy.sympify(v)
    if not v.is_number:
        raise OptionError(f"{what} needs every symbol of the model to have a value: {v}")
    r = sympy.Rational(v)
    return Fraction(int(r.p), int(r.q))


def workload(model: Model, tokens: int) -> Model:
    """The model at one sequence of ``tokens`` tokens (``batch = 1``, ``seq_len = tokens``)."""
    sets = {k: v for k, v in (("batch", 1), ("seq_len", tokens)) if k in model.symbols}
    if "seq_len" not in sets:
        raise OptionError(
            "serving needs the model's input as [batch, seq_len] (an imported config.json, or a "
            ".mem file whose input uses the symbols batch and seq_len)"
        )
    return model.with_values(sets)


def expert_padding(
    place: Any, model: Model, *, tp: int, quant: str | None, dtype: str, pad: tuple[int, int]
) -> Fraction:
    """Bytes per GPU that an engine's MoE kernel adds to one instance of ``place``'s experts by
    padding their matrices: the hidden width up to a multiple of ``pad[0]``, each rank's slice
    of the intermediate width up to a multiple of ``pad[1]`` (vLLM ``Mxfp4MoEMethod.
    create_weights``, vllm/model_executor/layers/quantization/mxfp4.py: the Marlin MoE kernel
    needs ``n % 256 == 0`` and ``k % 128 == 0``, so ``hidden_size = round_up(hidden, 256)``,
    ``intermediate_size_per_partition = round_up(intermediate / tp, 128)``).

    FusedMoE holds the experts as ``w13`` (the up and gate projections, column-parallel:
    ``[2 x intermediate / tp, hidden]``) and ``w2`` (the down projection, row-parallel:
    ``[hidden, intermediate / tp]``), biases alike; a layer lists its experts' matrices in
    that order, the down projection last (the one back to the layer's width).  0 for a place
    without experts (tensors with ``active`` copies)."""

    experts = [t for t in place.node.layer.tensors() if t.active is not None]
    if not experts:
        return Fraction(0)
    fmt = QUANTS.get(quant) if quant else None

    def num(e: Any) -> int:
        v = _number(model.quantity(e), "an expert's shape")
        return int(v)

    def up(n: int, k: int) -> int:
        return -(-n // k) * k

    mats = [t for t in experts if t.matmul]
    biases = [t for t in experts if not t.matmul]
    hidden_pad, inter_pad = pad
    delta = Fraction(0)
    for group in (mats, biases):
        for i, t in enumerate(group):
            down = i == len(group) - 1
            dims = [num(d) for d in t.shape]
            copies = num(t.copies)
            padded: list[int]
            current: list[int]
            if len(dims) == 2:  # [out, in]
                h, inter = (dims[0], dims[1]) if down else (dims[1], dims[0])
                now_inter = inter // tp if t.tp_split else inter
                padded_inter = up(inter // tp, inter_pad)
                padded = (
                    [up(h, hidden_pad), padded_inter] if down else [padded_inter, up(h, hidden_pad)]
                )
                current = [h, now_inter] if down else [now_inter, h]
            else:  # a bias: [out]
                d = dims[0]
                now = d if down or not t.tp_split else d // tp
                padded = [up(d, hidden_pad) if down else up(d // tp, inter_pad)]
                current = [now]
            if t.matmul and fmt is not None:
                new = fmt.matrix_bytes(sympy.Integer(padded[0]), sympy.Integer(padded[1]), copies)
                old = fmt.matrix_bytes(sympy.Integer(current[0]), sympy.Integer(current[1]), copies)
                delta += Fraction(str(sympy.Rational(new - old)))
            else:
                size = int(DTYPE_BYTES[dtype])
                n_new = copies * int(sympy.prod(padded))
                n_old = copies * int(sympy.prod(current))
                delta += (n_new - n_old) * size
    return delta


def layout(
    model: Model,
    *,
    tp: int,
    weight_dtype: str,
    kv_dtype: str,
    quant: str | None,
    group: int | None,
    expert_pad: tuple[int, int] | None = None,
) -> Layout:
    """The weights and attention layers per GPU under ``tp`` (no pipeline yet).

    One memory build at one token gives each layer's row: its weights (tp splits, the
    quantized layout, tied weights once) and its KV cache for one token (kv heads split
    over tp, replicated below it; MLA's latent whole).  A repeat's rows are divided into
    its decoder layers: a body holding ``k`` attention layers (Gemma-2's sliding + full
    pair) is ``k`` decoder layers of equal weight.
    """
    m = workload(model, 1)
    opts = MemoryOptions(
        mode="infer",
        precision=weight_dtype if weight_dtype in ("bf16", "fp16", "fp32") else "bf16",
        weight_dtype=weight_dtype,
        kv_dtype=kv_dtype,
        tp=tp,
        quant=quant or NO_QUANT,  # None here is 16-bit weights, not the model's declared format
        group_size=group if quant else None,
        overhead=0,
    )
    result = build(m.graph, m.values, opts)
    rows = {r.path: r for r in result.rows}
    plist, repeats = places(m.graph)
    pre, post = Fraction(0), Fraction(0)
    order: list[str] = []  # repeats in execution order
    body: dict[str, list[Any]] = {}
    for p in plist:
        row = rows.get(p.node.path)
        if row is None:
            continue
        if p.stage == "pre":
            pre += _number(m.quantity(row.weights), "weights")
        elif p.stage == "post":
            post += _number(m.quantity(row.weights), "weights")
        else:
            assert p.repeat is not None
            if p.repeat not in body:
                order.append(p.repeat)
                body[p.repeat] = []
            body[p.repeat].append((p, row))
    layers: list[DecoderLayer] = []
    for path in order:
        count = _number(m.quantity(repeats[path].iterations), "a repeat count")
        if count.denominator != 1:
            raise OptionError(f"repeat {path} runs {count} times: not a whole number")
        n = int(count)
        if n == 0:  # a repeat run no times (DeepSeek-V3's mtp_layers = 0): no layers
            continue
        weights = sum(
            (_number(m.quantity(r.weights), "weights") for _, r in body[path]), Fraction(0)
        )
        if expert_pad is not None:
            for p, _ in body[path]:
                one = expert_padding(p, m, tp=tp, quant=quant, dtype=weight_dtype, pad=expert_pad)
                weights += one * _number(m.quantity(p.mult), "a repeat count")
        attn = []
        for p, r in body[path]:
            kv = _number(m.quantity(r.kv_cache), "the KV cache")
            if kv == 0:
                continue
            per_instance = kv / _number(m.quantity(p.mult), "a repeat count")
            w = p.node.layer.kv_window()
            win = None if w is None else int(_number(m.quantity(w), "a sliding window"))
            attn.append(AttnLayer(_ceil(per_instance), win))
        k = max(len(attn), 1)
        per_layer = weights / (n * k)
        for _ in range(n):
            if attn:
                layers += [DecoderLayer(per_layer, (a,)) for a in attn]
            else:
                layers.append(DecoderLayer(per_layer * k, ()))
    return Layout(pre, tuple(layers), post)


def _ceil(x: Fraction) -> int:
    return -(-x.numerator // x.denominator)


def pp_partition(n_layers: int, pp: int) -> list[int]:
    """Decoder layers per pipeline stage as vLLM splits them (``get_pp_indices`` in
    vllm/distributed/utils.py): ``n // pp`` each, the remainder given one each to the
    stages just before the last."""
    if pp > n_layers:
        raise OptionError(f"pp = {pp} is more than the {n_layers} decoder layers")
    parts = [n_layers // pp] * pp
    for i in range(2, n_layers % pp + 2):
        parts[-i] += 1
    return parts


def stages(lay: Layout, pp: int) -> list[Stage]:
    """The layout split into ``pp`` stages: embeddings on the first, norm and head on the last."""
    parts = pp_partition(len(lay.layers), pp)
    out, start = [], 0
    for i, n in enumerate(parts):
        chunk = lay.layers[start : start + n]
        start += n
        w = sum((d.weights for d in chunk), Fraction(0))
        if i == 0:
            w += lay.pre
        if i == pp - 1:
            w += lay.post
        attn = tuple(a for d in chunk for a in d.attention)
        out.append(Stage(_ceil(w), attn, i == 0, i == pp - 1))
    return out


def forward_peak(model: Model, *, tokens: int, tp: int, dtype: str) -> int:
    """The working set of one forward over ``tokens`` tokens on one GPU: the memory model's
    inference transient (the largest layer's intermediates at ``tokens`` tokens, MoE layers
    routing those tokens; docs/memory.md) at ``batch = 1, seq_len = tokens``.

    Attention as the engines run it: fused kernels that never hold the ``s x s`` scores
    (vLLM's attention backends, vllm/v1/attention/backends/flash_attn.py and
    triton_attn.py, which take gpt-oss's sinks as a kernel argument; SGLang's and
    TensorRT-LLM's likewise), so ``attention = flash`` for every layer, sinks included
    (transformers has no sdpa path for sinks and falls back to eager; the engines do not)."""
    m = workload(model, tokens)
    opts = MemoryOptions(
        mode="infer",
        precision=dtype,
        tp=tp,
        overhead=0,
        prefill_chunk=tokens,
        attention="flash",
    )
    result = build(m.graph, m.values, opts)
    return _ceil(_number(result.transient, "the forward peak"))


def vocab_size(model: Model) -> int:
    """The width of the model's output (the logits' vocabulary)."""
    shape = model.graph.root.out_shape
    return int(_number(model.quantity(shape[-1]), "the vocabulary"))


def kv_bytes(kv_dtype: str, model_dtype: str) -> str:
    """The dtype the KV cache is kept in: ``auto`` is the model's."""
    if kv_dtype not in KV_DTYPES:
        raise OptionError(f"unknown KV dtype '{kv_dtype}': valid names are {', '.join(KV_DTYPES)}")
    return model_dtype if kv_dtype == "auto" else kv_dtype
