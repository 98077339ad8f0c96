"""One function per supported ``model_type``: config fields -> blocks and layers.

Every default below is the one the transformers config class (or, where the
class leaves the field out, the modeling code's ``getattr`` fallback) applies
when the field is absent; the sources are transformers'
``models/<type>/configuration_<type>.py`` and ``modeling_<type>.py``
(checked against transformers 5.x).  Required fields (the sizes that define
a model: hidden size, layer count, heads, vocabulary, FFN width) have no
silent default: their absence is an :class:`~symmem.errors.ImportHFError`.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

from symmem.hf.importer import HFConfig, MemWriter, model_name_for

# ---------------------------------------------------------------- small renderers


def _v(value: Any) -> str:
    if isinstance(value, bool):
        return "true" if value else "false"
    return str(value)


def call(kind: str, name: str | None = None, *pos: Any, **kw: Any) -> str:
    """``kind name(pos..., key = value)``; keyword arguments that are None are left out."""
    args = [_v(p) for p in pos] + [f"{k} = {_v(v)}" for k, v in kw.items() if v is not None]
    head = kind if name is None else f"{kind} {name}"
    return f"{head}({', '.join(args)})"


def residual(*stmts: str) -> str:
    """A multi-line ``residual { ... }`` (one statement a line, as in examples/gpt2.mem)."""
    return "residual {\n" + _indent(stmts) + "\n}"


def par(a: list[str], b: list[str]) -> str:
    """``parallel { a } { b }``: both branches read the same input and their outputs add."""
    return "parallel {\n" + _indent(a) + "\n} {\n" + _indent(b) + "\n}"


def _indent(stmts: tuple[str, ...] | list[str]) -> str:
    lines = [ln for s in stmts if s for part in s.split("; ") for ln in part.split("\n")]
    return "\n".join(f"  {ln}" for ln in lines)


def _rope_note(c: HFConfig, w: MemWriter) -> None:
    for key in ("rope_scaling", "rope_parameters"):
        if c.has(key):
            rs = c.data[key]
            kind = rs.get("rope_type", rs.get("type", "default")) if isinstance(rs, dict) else rs
            w.note(f"{key}: {kind} (rotary scaling has no parameters: counts are unchanged)")
            return


def _dropout(w: MemWriter, c: HFConfig, key: str, default: float) -> str:
    """A ``dropout(key)`` statement when the config's probability is non-zero, else ''."""
    p = c.float(key, default)
    if p == 0:
        return ""
    return f"dropout({w.sym(key, p)})"


def _tied(c: HFConfig, default: bool) -> bool:
    return c.bool("tie_word_embeddings", default)


def _head_dim(c: HFConfig, w: MemWriter, hidden: int, heads: int, default: int | None) -> str | None:
    """``head_dim`` for attention(...): None when it equals hidden_size / num_attention_heads."""
    hd = c.opt_int("head_dim", default)
    if hd is None:
        return None
    if hidden % heads == 0 and hd == hidden // heads:
        return None
    return w.sym("head_dim", hd, "differs from hidden_size / num_attention_heads")


def _kv_heads(c: HFConfig, w: MemWriter, heads: int, default: int | None, key: str = "num_key_value_heads") -> str | None:
    kv = c.opt_int(key, default)
    if kv is None or kv == heads:
        return None
    if heads % kv:
        raise c.unsupported(key, f"num_attention_heads = {heads} is not a multiple of it", kv)
    return w.sym(key, kv, "grouped-query attention" if kv > 1 else "multi-query attention")


# ---------------------------------------------------------------- encoders: BERT, RoBERTa


def _bert_like(c: HFConfig, hf_class: str) -> MemWriter:
    w = MemWriter(c, model_name_for(c), hf_class)
    if c.bool("add_cross_attention", False) or c.bool("is_decoder", False):
        raise c.unsupported("add_cross_attention" if c.has("add_cross_attention") else "is_decoder",
                            "BERT as a decoder with cross-attention is not modelled")
    pet = c.str("position_embedding_type", "absolute")
    if pet != "absolute":
        raise c.unsupported("position_embedding_type", "relative position embeddings add per-layer tables symmem does not model")
    w.sym("vocab_size", c.int("vocab_size"))
    d = w.sym("hidden_size", c.int("hidden_size"))
    w.sym("num_hidden_layers", c.int("num_hidden_layers"))
    h = w.sym("num_attention_heads", c.int("num_attention_heads"))
    w.sym("intermediate_size", c.int("intermediate_size"))
    w.sym("max_position_embeddings", c.int("max_position_embeddings", 512))
    w.sym("type_vocab_size", c.int("type_vocab_size", 2))
    act = c.act("hidden_act", "gelu")
    attn_p = c.float("attention_probs_dropout_prob", 0.1)
    drop = _dropout(w, c, "hidden_dropout_prob", 0.1)
    if attn_p:
        w.sym("attention_probs_dropout_prob", attn_p)
    w.note("The base model with its pooler (no MLM / NSP / classifier head); post-LayerNorm encoder layers.")
    w.block("encoder_layer", [
        residual(call("attention", "attention", d, heads=h, causal=False,
                      dropout="attention_probs_dropout_prob" if attn_p else None), drop),
        call("layernorm", "attention_norm", d),
        residual(call("mlp", "mlp", d, "intermediate_size", act=act), drop),
        call("layernorm", "output_norm", d),
    ])
    w.body += [
        "  " + call("embedding", "word_embeddings", "vocab_size", d),
        "  " + call("pos_embedding", "position_embeddings", "max_position_embeddings", d),
        # token types: one row per token added to the stream (all type 0 for one segment); a
        # param, since pos_embedding adds one row per position
        "  " + call("param", "token_type_embeddings", "type_vocab_size", d),
        "  " + call("layernorm", "embeddings_norm", d),
    ]
    if drop:
        w.body.append("  " + drop)
    w.body += w.stack(["encoder_layer"])
    w.body.append("  " + call("linear", "pooler", d, d) + "  # BertPooler: dense + tanh on the first token")
    return w


def bert(c: HFConfig) -> MemWriter:
    return _bert_like(c, "BertModel")


def roberta(c: HFConfig) -> MemWriter:
    w = _bert_like(c, "RobertaModel")
    w.note("RoBERTa's max_position_embeddings includes its padding offset (positions start at pad_token_id + 1).")
    return w


# ---------------------------------------------------------------- GPT-2


def gpt2(c: HFConfig) -> MemWriter:
    w = MemWriter(c, "gpt2", "GPT2LMHeadModel")
    if c.bool("add_cross_attention", False):
        raise c.unsupported("add_cross_attention", "GPT-2 with cross-attention is not modelled")
    w.sym("vocab_size", c.int("vocab_size"))
    d = w.sym("n_embd", c.int("n_embd"), "hidden size")
    w.sym("n_layer", c.int("n_layer"))
    w.sym("n_head", c.int("n_head"))
    w.sym("n_positions", c.int("n_positions", 1024))
    if c.has("n_inner"):
        ff = w.sym("n_inner", c.int("n_inner"), "MLP width")
    else:
        c.raw("n_inner", None)
        ff = "4 * n_embd"
    act = c.act("activation_function", "gelu_new")
    attn_p = c.float("attn_pdrop", 0.1)
    if attn_p:
        w.sym("attn_pdrop", attn_p)
    resid = _dropout(w, c, "resid_pdrop", 0.1)
    emb = _dropout(w, c, "embd_pdrop", 0.1)
    tied = _tied(c, True)
    w.block("gpt2_block", [
        residual(call("layernorm", "ln_1", d),
                 call("attention", "attn", d, heads="n_head", dropout="attn_pdrop" if attn_p else None), resid),
        residual(call("layernorm", "ln_2", d), call("mlp", "mlp", d, ff, act=act), resid),
    ])
    w.body += [
        "  " + call("embedding", "wte", "vocab_size", d),
        "  " + call("pos_embedding", "wpe", "n_positions", d),
    ]
    if emb:
        w.body.append("  " + emb)
    w.body += w.stack(["gpt2_block"], count="n_layer", name="h")
    w.body += [
        "  " + call("layernorm", "ln_f", d),
        "  " + call("linear", "lm_head", d, "vocab_size", bias=False, tie="wte" if tied else None),
    ]
    return w


# ---------------------------------------------------------------- GPT-NeoX (Pythia)


def gpt_neox(c: HFConfig) -> MemWriter:
    w = MemWriter(c, "gpt_neox", "GPTNeoXForCausalLM")
    w.sym("vocab_size", c.int("vocab_size"))
    d = w.sym("hidden_size", c.int("hidden_size"))
    w.sym("num_hidden_layers", c.int("num_hidden_layers"))
    h = w.sym("num_attention_heads", c.int("num_attention_heads"))
    w.sym("intermediate_size", c.int("intermediate_size"))
    act = c.act("hidden_act", "gelu")
    bias = c.bool("attention_bias", True)
    parallel = c.bool("use_parallel_residual", True)
    tied = _tied(c, False)
    _rope_note(c, w)
    drop = _dropout(w, c, "hidden_dropout", 0.0)
    attn = call("attention", "attention", d, heads=h, qkv_bias=bias, out_bias=bias)
    mlp = call("mlp", "mlp", d, "intermediate_size", act=act)
    if parallel:
        w.note("use_parallel_residual: x + attn(ln1(x)) + mlp(ln2(x)).")
        layer = [residual(par([call("layernorm", "input_layernorm", d), attn, drop],
                                   [call("layernorm", "post_attention_layernorm", d), mlp, drop]))]
    else:
        layer = [residual(call("layernorm", "input_layernorm", d), attn, drop),
                 residual(call("layernorm", "post_attention_layernorm", d), mlp, drop)]
    w.block("neox_layer", layer)
    w.body.append("  " + call("embedding", "embed_in", "vocab_size", d))
    w.body += w.stack(["neox_layer"])
    w.body += [
        "  " + call("layernorm", "final_layer_norm", d),
        "  " + call("linear", "embed_out", d, "vocab_size", bias=False, tie="embed_in" if tied else None),
    ]
    return w


# ---------------------------------------------------------------- OPT


def opt(c: HFConfig) -> MemWriter:
    w = MemWriter(c, "opt", "OPTForCausalLM")
    w.sym("vocab_size", c.int("vocab_size"))
    d = w.sym("hidden_size", c.int("hidden_size"))
    w.sym("num_hidden_layers", c.int("num_hidden_layers"))
    h = w.sym("num_attention_heads", c.int("num_attention_heads"))
    w.sym("ffn_dim", c.int("ffn_dim"))
    w.sym("max_position_embeddings", c.int("max_position_embeddings", 2048))
    proj = c.int("word_embed_proj_dim", c.int("hidden_size"))
    e = w.sym("word_embed_proj_dim", proj, "embedding width") if proj != c.int("hidden_size") else d
    pre_ln = c.bool("do_layer_norm_before", True)
    remove_final = c.bool("_remove_final_layer_norm", False)
    bias = c.bool("enable_bias", True)
    affine = c.bool("layer_norm_elementwise_affine", True)
    act = c.act("activation_function", "relu")
    tied = _tied(c, True)
    attn_p = c.float("attention_dropout", 0.0)
    if attn_p:
        w.sym("attention_dropout", attn_p)
    drop = _dropout(w, c, "dropout", 0.1)
    ln_args: dict[str, Any] = {} if affine else {"affine": False}
    attn = call("attention", "self_attn", d, heads=h, qkv_bias=bias, out_bias=bias,
                dropout="attention_dropout" if attn_p else None)
    mlp = call("mlp", "mlp", d, "ffn_dim", act=act, bias=bias)
    if pre_ln:
        layer = [residual(call("layernorm", "self_attn_layer_norm", d, **ln_args), attn, drop),
                 residual(call("layernorm", "final_layer_norm", d, **ln_args), mlp, drop)]
    else:
        w.note("do_layer_norm_before = false: post-LayerNorm layers (OPT-350m).")
        layer = [residual(attn, drop), call("layernorm", "self_attn_layer_norm", d, **ln_args),
                 residual(mlp, drop), call("layernorm", "final_layer_norm", d, **ln_args)]
    w.block("opt_layer", layer)
    w.body.append("  " + call("embedding", "embed_tokens", "vocab_size", e))
    if e != d:
        w.body.append("  " + call("linear", "project_in", e, d, bias=False))
    w.body.append("  " + call("pos_embedding", "embed_positions", "max_position_embeddings + 2", d)
                  + "  # OPTLearnedPositionalEmbedding: 2 extra rows (offset)")
    w.body += w.stack(["opt_layer"])
    if pre_ln and not remove_final:
        w.body.append("  " + call("layernorm", "final_norm", d, **ln_args) + "  # decoder.final_layer_norm")
    if e != d:
        w.body.append("  " + call("linear", "project_out", d, e, bias=False))
    w.body.append("  " + call("linear", "lm_head", e, "vocab_size", bias=False, tie="embed_tokens" if tied else None))
    return w


# ---------------------------------------------------------------- Llama-style decoders


def _layer_windows(c: HFConfig, n: int, *, scheme: str) -> list[bool]:
    """Which layers use sliding-window attention (True), following each config class."""
    if c.has("layer_types"):
        types = c.data["layer_types"]
        if not isinstance(types, list) or len(types) != n:
            raise c.unsupported("layer_types", f"expected a list of {n} layer types")
        for t in types:
            if t not in ("full_attention", "sliding_attention"):
                raise c.unsupported("layer_types", f"unknown layer type '{t}'")
        return [t == "sliding_attention" for t in types]
    if scheme == "none":
        return [False] * n
    if scheme == "all":  # mistral, mixtral, phi3: sliding_window applies to every layer when set
        return [c.has("sliding_window")] * n
    if scheme == "qwen2":  # sliding from max_window_layers on, when use_sliding_window
        use = c.bool("use_sliding_window", False)
        start = c.int("max_window_layers", 28, minimum=0)
        return [use and i >= start for i in range(n)]
    if scheme == "qwen3_moe":
        return [c.bool("use_sliding_window", False)] * n
    if scheme == "gemma2":  # even layers (0, 2, ...) slide
        return [bool((i + 1) % 2) for i in range(n)]
    raise AssertionError(scheme)


def _decoder(
    c: HFConfig,
    w: MemWriter,
    *,
    attention: Callable[[str | None], str],
    ffns: dict[str, str],
    layer_ffn: list[str],
    windows: list[bool],
    tied: bool,
    sandwich: bool = False,
    extra_body: list[str] | None = None,
    prefix: tuple[str, int] | None = None,
    named: bool = False,
) -> None:
    """Embedding, the layer stack, final RMSNorm and LM head of a Llama-style decoder.

    ``attention(window)`` renders the attention statement; ``ffns`` maps a
    feed-forward kind to its statement; ``layer_ffn`` gives each layer's kind.
    ``sandwich`` adds Gemma-2's norms after attention and after the MLP.
    """
    d = "hidden_size"
    window_sym = None
    if any(windows):
        window_sym = w.sym("sliding_window", c.int("sliding_window"), "KV cache holds at most this many tokens")
    keys: list[str] = []
    names: dict[tuple[str, bool], str] = {}
    distinct = sorted(set(zip(layer_ffn, windows, strict=True)), key=lambda k: (list(ffns).index(k[0]), k[1]))
    for ffn, slide in distinct:
        name = "decoder_layer" if len(set(layer_ffn)) == 1 and not named else f"{ffn}_layer"
        if len(set(windows)) > 1:
            name += "_sliding" if slide else "_full"
        names[(ffn, slide)] = name
        attn = attention(window_sym if slide else None)
        if sandwich:
            lines = [
                residual(call("rmsnorm", "input_layernorm", d), attn, call("rmsnorm", "post_attention_layernorm", d)),
                residual(call("rmsnorm", "pre_feedforward_layernorm", d), ffns[ffn],
                         call("rmsnorm", "post_feedforward_layernorm", d)),
            ]
        else:
            lines = [
                residual(call("rmsnorm", "input_layernorm", d), attn),
                residual(call("rmsnorm", "post_attention_layernorm", d), ffns[ffn]),
            ]
        w.block(name, lines)
    keys = [names[(f, s)] for f, s in zip(layer_ffn, windows, strict=True)]
    w.body.append("  " + call("embedding", "embed_tokens", "vocab_size", d))
    if prefix is not None:
        sym, k = prefix
        if k:
            w.body += w.stack(keys[:k], count=sym, name="dense_layers")
        else:
            w.body.append(f"  repeat {sym} dense_layers {{ dense_layer }}")
        w.body += w.stack(keys[k:], count=f"num_hidden_layers - {sym}", name="moe_layers")
    else:
        w.body += w.stack(keys)
    w.body.append("  " + call("rmsnorm", "norm", d))
    w.body += extra_body or []
    w.body.append("  " + call("linear", "lm_head", d, "vocab_size", bias=False, tie="embed_tokens" if tied else None))


def _core_sizes(c: HFConfig, w: MemWriter) -> tuple[int, int]:
    w.sym("vocab_size", c.int("vocab_size"))
    hidden = c.int("hidden_size")
    w.sym("hidden_size", hidden)
    w.sym("num_hidden_layers", c.int("num_hidden_layers"))
    heads = c.int("num_attention_heads")
    w.sym("num_attention_heads", heads)
    return hidden, heads


def _gqa_attention(
    c: HFConfig, w: MemWriter, *, kv_default: int | None, head_dim_default: int | None,
    qkv_bias: bool, out_bias: bool, qk_norm: bool = False,
) -> Callable[[str | None], str]:
    hidden, heads = c.int("hidden_size"), c.int("num_attention_heads")
    kv = _kv_heads(c, w, heads, kv_default)
    hd = _head_dim(c, w, hidden, heads, head_dim_default)
    if hd is None and hidden % heads:
        raise c.unsupported("num_attention_heads", f"hidden_size = {hidden} is not a multiple of it and no head_dim is given")
    attn_p = c.float("attention_dropout", 0.0)
    if attn_p:
        w.sym("attention_dropout", attn_p)

    def render(window: str | None) -> str:
        return call("attention", "self_attn", "hidden_size", heads="num_attention_heads", kv_heads=kv, head_dim=hd,
                    qkv_bias=qkv_bias, out_bias=out_bias, qk_norm=qk_norm or None,
                    dropout="attention_dropout" if attn_p else None, window=window)

    return render


def llama(c: HFConfig) -> MemWriter:
    w = MemWriter(c, "llama", "LlamaForCausalLM")
    _core_sizes(c, w)
    w.sym("intermediate_size", c.int("intermediate_size"))
    bias = c.bool("attention_bias", False)
    mlp_bias = c.bool("mlp_bias", False)
    act = c.act("hidden_act", "silu")
    _rope_note(c, w)
    attn = _gqa_attention(c, w, kv_default=None, head_dim_default=None, qkv_bias=bias, out_bias=bias)
    ffn = call("gated_mlp", "mlp", "hidden_size", "intermediate_size", act=act, bias=mlp_bias or None)
    n = c.int("num_hidden_layers")
    _decoder(c, w, attention=attn, ffns={"dense": ffn}, layer_ffn=["dense"] * n, windows=[False] * n,
             tied=_tied(c, False))
    return w


def mistral(c: HFConfig) -> MemWriter:
    w = MemWriter(c, "mistral", "MistralForCausalLM")
    _core_sizes(c, w)
    w.sym("intermediate_size", c.int("intermediate_size"))
    act = c.act("hidden_act", "silu")
    _rope_note(c, w)
    attn = _gqa_attention(c, w, kv_default=8, head_dim_default=None, qkv_bias=False, out_bias=False)
    n = c.int("num_hidden_layers")
    if not c.has("sliding_window") and "sliding_window" not in c.data:
        c.defaults_applied.append("sliding_window = 4096")
        c.data = {**c.data, "sliding_window": 4096}
    _decoder(c, w, attention=attn, ffns={"dense": call("gated_mlp", "mlp", "hidden_size", "intermediate_size", act=act)},
             layer_ffn=["dense"] * n, windows=_layer_windows(c, n, scheme="all"), tied=_tied(c, False))
    return w


def mixtral(c: HFConfig) -> MemWriter:
    w = MemWriter(c, "mixtral", "MixtralForCausalLM")
    _core_sizes(c, w)
    w.sym("intermediate_size", c.int("intermediate_size"), "width of each expert")
    e = w.sym("num_local_experts", c.int("num_local_experts", 8))
    k = w.sym("num_experts_per_tok", c.int("num_experts_per_tok", 2))
    act = c.act("hidden_act", "silu")
    _rope_note(c, w)
    attn = _gqa_attention(c, w, kv_default=8, head_dim_default=None, qkv_bias=False, out_bias=False)
    n = c.int("num_hidden_layers")
    moe = call("moe", "block_sparse_moe", "hidden_size", "intermediate_size", e, k, act=act)
    w.header_options.append("active_embeddings = count")
    _decoder(c, w, attention=attn, ffns={"moe": moe}, layer_ffn=["moe"] * n,
             windows=_layer_windows(c, n, scheme="all"), tied=_tied(c, False))
    return w


def qwen2(c: HFConfig) -> MemWriter:
    w = MemWriter(c, "qwen2", "Qwen2ForCausalLM")
    _core_sizes(c, w)
    w.sym("intermediate_size", c.int("intermediate_size"))
    act = c.act("hidden_act", "silu")
    _rope_note(c, w)
    w.note("Qwen2 attention: q, k, v projections with biases, output projection without.")
    attn = _gqa_attention(c, w, kv_default=32, head_dim_default=None, qkv_bias=True, out_bias=False)
    n = c.int("num_hidden_layers")
    _decoder(c, w, attention=attn, ffns={"dense": call("gated_mlp", "mlp", "hidden_size", "intermediate_size", act=act)},
             layer_ffn=["dense"] * n, windows=_layer_windows(c, n, scheme="qwen2"), tied=_tied(c, False))
    return w


def qwen3(c: HFConfig) -> MemWriter:
    w = MemWriter(c, "qwen3", "Qwen3ForCausalLM")
    _core_sizes(c, w)
    w.sym("intermediate_size", c.int("intermediate_size"))
    act = c.act("hidden_act", "silu")
    bias = c.bool("attention_bias", False)
    _rope_note(c, w)
    w.note("Qwen3 attention: RMSNorm of q and k per head (qk_norm).")
    attn = _gqa_attention(c, w, kv_default=32, head_dim_default=128, qkv_bias=bias, out_bias=bias, qk_norm=True)
    n = c.int("num_hidden_layers")
    _decoder(c, w, attention=attn, ffns={"dense": call("gated_mlp", "mlp", "hidden_size", "intermediate_size", act=act)},
             layer_ffn=["dense"] * n, windows=_layer_windows(c, n, scheme="qwen2"), tied=_tied(c, False))
    return w


def _sparse_layers(c: HFConfig, n: int, has_experts: bool) -> list[str]:
    """Qwen-MoE: layer i is MoE unless in mlp_only_layers or (i + 1) % decoder_sparse_step != 0."""
    step = c.int("decoder_sparse_step", 1)
    only = c.raw("mlp_only_layers", [])
    if not isinstance(only, list) or not all(isinstance(i, int) and not isinstance(i, bool) for i in only):
        raise c.unsupported("mlp_only_layers", "expected a list of layer indices")
    return ["moe" if (i not in only and has_experts and (i + 1) % step == 0) else "dense" for i in range(n)]


def qwen2_moe(c: HFConfig) -> MemWriter:
    w = MemWriter(c, "qwen2_moe", "Qwen2MoeForCausalLM")
    _core_sizes(c, w)
    n = c.int("num_hidden_layers")
    act = c.act("hidden_act", "silu")
    e = c.int("num_experts", 60, minimum=0)
    kinds = _sparse_layers(c, n, e > 0)
    ffns: dict[str, str] = {}
    if "dense" in kinds:
        w.sym("intermediate_size", c.int("intermediate_size", 5632), "dense (mlp_only) layers")
        ffns["dense"] = call("gated_mlp", "mlp", "hidden_size", "intermediate_size", act=act)
    if "moe" in kinds:
        w.sym("moe_intermediate_size", c.int("moe_intermediate_size", 1408), "width of each routed expert")
        w.sym("num_experts", e)
        w.sym("num_experts_per_tok", c.int("num_experts_per_tok", 4))
        shared = c.int("shared_expert_intermediate_size", 5632, minimum=0)
        if shared:
            w.sym("shared_expert_intermediate_size", shared, "one shared expert, with a sigmoid gate")
        ffns["moe"] = call("moe", "mlp", "hidden_size", "moe_intermediate_size", "num_experts", "num_experts_per_tok",
                           n_shared=1 if shared else None, d_shared="shared_expert_intermediate_size" if shared else None,
                           act=act, shared_gate=True)
        # Qwen2MoeSparseMoeBlock always builds shared_expert_gate (1 x d), even with a 0-wide shared expert
    ffns = {k: ffns[k] for k in ("dense", "moe") if k in ffns}
    bias = c.bool("qkv_bias", True)
    _rope_note(c, w)
    attn = _gqa_attention(c, w, kv_default=16, head_dim_default=None, qkv_bias=bias, out_bias=False)
    w.header_options.append("active_embeddings = count")
    _decoder(c, w, attention=attn, ffns=ffns, layer_ffn=kinds, windows=_layer_windows(c, n, scheme="none"),
             tied=_tied(c, False))
    return w


def qwen3_moe(c: HFConfig) -> MemWriter:
    w = MemWriter(c, "qwen3_moe", "Qwen3MoeForCausalLM")
    _core_sizes(c, w)
    n = c.int("num_hidden_layers")
    act = c.act("hidden_act", "silu")
    e = c.int("num_experts", 128, minimum=0) if c.has("num_experts") else c.int("num_local_experts", 128, minimum=0)
    kinds = _sparse_layers(c, n, e > 0)
    ffns: dict[str, str] = {}
    if "dense" in kinds:
        w.sym("intermediate_size", c.int("intermediate_size", 6144), "dense (mlp_only) layers")
        ffns["dense"] = call("gated_mlp", "mlp", "hidden_size", "intermediate_size", act=act)
    if "moe" in kinds:
        w.sym("moe_intermediate_size", c.int("moe_intermediate_size", 768), "width of each routed expert")
        w.sym("num_experts", e)
        w.sym("num_experts_per_tok", c.int("num_experts_per_tok", 8))
        ffns["moe"] = call("moe", "mlp", "hidden_size", "moe_intermediate_size", "num_experts", "num_experts_per_tok",
                           act=act)
    bias = c.bool("attention_bias", False)
    _rope_note(c, w)
    attn = _gqa_attention(c, w, kv_default=4, head_dim_default=None, qkv_bias=bias, out_bias=bias, qk_norm=True)
    w.header_options.append("active_embeddings = count")
    _decoder(c, w, attention=attn, ffns=ffns, layer_ffn=kinds, windows=_layer_windows(c, n, scheme="qwen3_moe"),
             tied=_tied(c, False))
    return w


def gemma(c: HFConfig) -> MemWriter:
    w = MemWriter(c, "gemma", "GemmaForCausalLM")
    _core_sizes(c, w)
    w.sym("intermediate_size", c.int("intermediate_size"))
    act_name = c.str("hidden_act", "gelu_pytorch_tanh")
    act = "gelu_tanh" if act_name == "gelu" else c.act("hidden_act", "gelu_pytorch_tanh")  # GemmaConfig maps gelu -> tanh
    bias = c.bool("attention_bias", False)
    _rope_note(c, w)
    attn = _gqa_attention(c, w, kv_default=16, head_dim_default=256, qkv_bias=bias, out_bias=bias)
    n = c.int("num_hidden_layers")
    w.note("Gemma's RMSNorm scales by (1 + weight): the same d parameters per norm.")
    _decoder(c, w, attention=attn, ffns={"dense": call("gated_mlp", "mlp", "hidden_size", "intermediate_size", act=act)},
             layer_ffn=["dense"] * n, windows=[False] * n, tied=_tied(c, True))
    return w


def gemma2(c: HFConfig) -> MemWriter:
    w = MemWriter(c, "gemma2", "Gemma2ForCausalLM")
    _core_sizes(c, w)
    w.sym("intermediate_size", c.int("intermediate_size"))
    act = c.act("hidden_activation", "gelu_pytorch_tanh")
    bias = c.bool("attention_bias", False)
    _rope_note(c, w)
    attn = _gqa_attention(c, w, kv_default=4, head_dim_default=256, qkv_bias=bias, out_bias=bias)
    n = c.int("num_hidden_layers")
    if "sliding_window" not in c.data:
        c.defaults_applied.append("sliding_window = 4096")
        c.data = {**c.data, "sliding_window": 4096}
    windows = _layer_windows(c, n, scheme="gemma2") if c.has("sliding_window") else [False] * n
    w.note("Gemma-2: norms before and after attention and the MLP; logit soft-capping has no parameters.")
    _decoder(c, w, attention=attn, ffns={"dense": call("gated_mlp", "mlp", "hidden_size", "intermediate_size", act=act)},
             layer_ffn=["dense"] * n, windows=windows, tied=_tied(c, True), sandwich=True)
    return w


def phi3(c: HFConfig) -> MemWriter:
    w = MemWriter(c, "phi3", "Phi3ForCausalLM")
    _core_sizes(c, w)
    w.sym("intermediate_size", c.int("intermediate_size"))
    act = c.act("hidden_act", "silu")
    _rope_note(c, w)
    w.note("Phi-3 fuses q/k/v (qkv_proj) and gate/up (gate_up_proj): the same counts as separate projections.")
    attn = _gqa_attention(c, w, kv_default=None, head_dim_default=None, qkv_bias=False, out_bias=False)
    n = c.int("num_hidden_layers")
    _decoder(c, w, attention=attn, ffns={"dense": call("gated_mlp", "mlp", "hidden_size", "intermediate_size", act=act)},
             layer_ffn=["dense"] * n, windows=_layer_windows(c, n, scheme="all"), tied=_tied(c, False))
    return w


# ---------------------------------------------------------------- DeepSeek-V2 / V3 (MLA + MoE)


def _deepseek(c: HFConfig, version: int) -> MemWriter:
    w = MemWriter(c, f"deepseek_v{version}", f"DeepseekV{version}ForCausalLM")
    _core_sizes(c, w)
    n = c.int("num_hidden_layers")
    d = "hidden_size"
    v3 = version == 3
    w.sym("intermediate_size", c.int("intermediate_size"), "dense layers")
    w.sym("moe_intermediate_size", c.int("moe_intermediate_size"), "width of each routed and shared expert")
    e = w.sym("n_routed_experts", c.int("n_routed_experts", 256 if v3 else 64))
    k = w.sym("num_experts_per_tok", c.int("num_experts_per_tok", 8 if v3 else None))
    shared = c.int("n_shared_experts", 1 if v3 else 2, minimum=0)
    w.sym("n_shared_experts", shared)
    first_k = c.int("first_k_dense_replace", 3 if v3 else 0, minimum=0)
    w.sym("first_k_dense_replace", first_k, "the first layers keep a dense MLP")
    freq = c.int("moe_layer_freq", 1)
    w.sym("kv_lora_rank", c.int("kv_lora_rank", 512))
    q_lora = c.opt_int("q_lora_rank", 1536)
    if q_lora is not None:
        w.sym("q_lora_rank", q_lora)
    w.sym("qk_nope_head_dim", c.int("qk_nope_head_dim", 128))
    w.sym("qk_rope_head_dim", c.int("qk_rope_head_dim", 64))
    w.sym("v_head_dim", c.int("v_head_dim", 128))
    bias = c.bool("attention_bias", False)
    mlp_bias = c.bool("mlp_bias", False) if not v3 else False
    act = c.act("hidden_act", "silu")
    _rope_note(c, w)
    method = c.str("topk_method", "noaux_tc" if v3 else "greedy")
    groups = [f"{key} = {c.data[key]}" for key in ("n_group", "topk_group") if c.has(key)]
    w.note(f"Routing: topk_method = {method}" + (f", {', '.join(groups)}" if groups else "")
           + " (group-limited routing has no parameters).")
    if freq != 1:
        w.note(f"moe_layer_freq = {freq}: MoE in layers i >= first_k_dense_replace with i % moe_layer_freq == 0 "
               "(DeepSeek's reference code; transformers ignores moe_layer_freq).")
    kinds = ["moe" if (i >= first_k and i % freq == 0) else "dense" for i in range(n)]
    if q_lora is None:
        w.note("q_lora_rank = null: queries are projected directly (q_proj), without a latent.")
    mla = call("mla", "self_attn", d, "num_attention_heads", "kv_lora_rank", "qk_nope_head_dim", "qk_rope_head_dim",
               "v_head_dim", q_lora_rank="q_lora_rank" if q_lora is not None else None, bias=bias or None)
    ffns = {
        "dense": call("gated_mlp", "mlp", d, "intermediate_size", act=act, bias=mlp_bias or None),
        "moe": call("moe", "mlp", d, "moe_intermediate_size", e, k, n_shared="n_shared_experts" if shared else None,
                    d_shared="moe_intermediate_size" if shared else None, act=act, score_bias=True if v3 else None),
    }
    if mlp_bias and shared:
        # DeepseekV2MLP (the shared experts, one MLP of width n_shared * f) takes config.mlp_bias;
        # the fused routed experts have no biases.  The moe kind has no shared-expert bias: a param.
        ffns["moe"] += "; " + call("param", "shared_experts_bias", "2 * n_shared_experts * moe_intermediate_size + hidden_size")
        w.note("mlp_bias: shared_experts_bias holds the gate, up and down biases of the shared experts.")
    extra: list[str] = []
    if v3:
        mtp = c.int("num_nextn_predict_layers", 1, minimum=0)
        w.sym("mtp_layers", 0, f"multi-token-prediction modules: the checkpoint has num_nextn_predict_layers = {mtp}")
        w.note("MTP (DeepSeek-V3 section 2.2): set mtp_layers = num_nextn_predict_layers to count them; transformers "
               "does not build them.  Each adds two RMSNorms, a 2d -> d projection, one MoE decoder layer and a "
               "final RMSNorm; its embedding and output head are shared with the main model (the released "
               "checkpoint stores copies of both).")
        w.header_options.append("active_embeddings = exclude")
        w.block("mtp_module", [
            call("rmsnorm", "enorm", d), call("rmsnorm", "hnorm", d),
            call("param", "eh_proj", d, f"2 * {d}") + "  # Linear(2d, d, bias=false)",
            "moe_layer" if "moe" in kinds else "dense_layer",
            call("rmsnorm", "shared_head_norm", d),
        ])
        extra.append("  repeat mtp_layers mtp { mtp_module }")
    else:
        w.header_options.append("active_embeddings = count")
    prefix_ok = freq == 1 and all(kk == "dense" for kk in kinds[:first_k])
    _decoder(c, w, attention=lambda _w: mla, ffns=ffns, layer_ffn=kinds, windows=[False] * n,
             tied=_tied(c, False), extra_body=extra, prefix=("first_k_dense_replace", first_k) if prefix_ok else None,
             named=True)
    if "dense_layer" not in w.blocks:  # so that first_k_dense_replace can be set above 0
        w.block("dense_layer", [
            residual(call("rmsnorm", "input_layernorm", d), mla),
            residual(call("rmsnorm", "post_attention_layernorm", d), ffns["dense"]),
        ])
    if "mtp_module" in w.blocks:  # MTP refers to the layer blocks: render it after them
        w.blocks["mtp_module"] = w.blocks.pop("mtp_module")
    return w


def deepseek_v2(c: HFConfig) -> MemWriter:
    return _deepseek(c, 2)


def deepseek_v3(c: HFConfig) -> MemWriter:
    return _deepseek(c, 3)


# ---------------------------------------------------------------- Falcon


def falcon(c: HFConfig) -> MemWriter:
    w = MemWriter(c, "falcon", "FalconForCausalLM")
    w.sym("vocab_size", c.int("vocab_size"))
    hidden = c.int("hidden_size") if c.has("hidden_size") or not c.has("n_embed") else c.int("n_embed")
    d = w.sym("hidden_size", hidden)
    n_key = "num_hidden_layers" if c.has("num_hidden_layers") or not c.has("n_layer") else "n_layer"
    w.sym("num_hidden_layers", c.int(n_key))
    h_key = "num_attention_heads" if c.has("num_attention_heads") or not c.has("n_head") else "n_head"
    heads = c.int(h_key)
    h = w.sym("num_attention_heads", heads)
    if hidden % heads:
        raise c.unsupported(h_key, f"hidden_size = {hidden} is not a multiple of it")
    new_arch = c.bool("new_decoder_architecture", False)
    multi_query = c.bool("multi_query", True)
    parallel = c.bool("parallel_attn", True)
    bias = c.bool("bias", False)
    ffn = c.opt_int("ffn_hidden_size", None)
    f = w.sym("ffn_hidden_size", ffn) if ffn is not None else "4 * hidden_size"
    act = c.act("activation", "gelu")
    if c.bool("alibi", False):
        w.note("alibi = true: ALiBi position biases (no parameters).")
    kv: str | None
    if new_arch:
        kv_n = c.int("num_kv_heads", heads)
        kv = None if kv_n == heads else w.sym("num_kv_heads", kv_n, "grouped-query attention")
    elif multi_query:
        kv = "1"
        w.note("multi_query: one key/value head.")
    else:
        kv = None
    n_ln = c.opt_int("num_ln_in_parallel_attn", 2 if new_arch else None)
    attn = call("attention", "self_attention", d, heads=h, kv_heads=kv, qkv_bias=bias, out_bias=bias)
    mlp = call("mlp", "mlp", d, f, act=act, bias=bias)
    drop = _dropout(w, c, "hidden_dropout", 0.0)
    if not parallel:
        layer = [residual(call("layernorm", "input_layernorm", d), attn, drop),
                 residual(call("layernorm", "post_attention_layernorm", d), mlp, drop)]
    elif n_ln == 2:
        w.note("new_decoder_architecture: parallel attention and MLP, each with its own LayerNorm (ln_attn, ln_mlp).")
        layer = [residual(par([call("layernorm", "ln_attn", d), attn], [call("layernorm", "ln_mlp", d), mlp]), drop)]
    else:
        w.note("parallel_attn: x + attn(ln(x)) + mlp(ln(x)), one LayerNorm.")
        layer = [residual(call("layernorm", "input_layernorm", d), par([attn], [mlp]), drop)]
    w.block("falcon_layer", layer)
    w.body.append("  " + call("embedding", "word_embeddings", "vocab_size", d))
    w.body += w.stack(["falcon_layer"], name="h")
    w.body += [
        "  " + call("layernorm", "ln_f", d),
        "  " + call("linear", "lm_head", d, "vocab_size", bias=False, tie="word_embeddings" if _tied(c, True) else None),
    ]
    return w


# ---------------------------------------------------------------- T5


def t5(c: HFConfig) -> MemWriter:
    w = MemWriter(c, "t5", "T5ForConditionalGeneration")
    w.sym("vocab_size", c.int("vocab_size"))
    d = w.sym("d_model", c.int("d_model"), "hidden size")
    w.sym("d_kv", c.int("d_kv", 64), "size of each attention head")
    w.sym("d_ff", c.int("d_ff"))
    w.sym("num_layers", c.int("num_layers"), "encoder layers")
    w.sym("num_decoder_layers", c.int("num_decoder_layers", c.int("num_layers")), "decoder layers")
    w.sym("num_heads", c.int("num_heads"))
    w.sym("relative_attention_num_buckets", c.int("relative_attention_num_buckets", 32))
    proj = c.str("feed_forward_proj", "relu")
    parts = proj.split("-")
    if len(parts) > 2 or (len(parts) == 2 and parts[0] != "gated"):
        raise c.unsupported("feed_forward_proj", "expected 'ACT' or 'gated-ACT'")
    gated = parts[0] == "gated"
    act_name = "gelu_new" if proj == "gated-gelu" else parts[-1]
    if act_name not in ("gelu", "gelu_new", "relu", "silu", "gelu_pytorch_tanh", "gelu_fast", "quick_gelu", "tanh",
                        "sigmoid", "swish", "gelu_python", "gelu_accurate"):
        raise c.unsupported("feed_forward_proj", f"activation '{act_name}' is not one symmem knows")
    from symmem.hf.importer import ACTIVATIONS

    act = ACTIVATIONS[act_name]
    tied = _tied(c, True)
    drop = _dropout(w, c, "dropout_rate", 0.1)
    w.note("Encoder-decoder.  The decoder's cross-attention is written as an attention over the decoder stream: "
           "the same q/k/v/o shapes, but keys and values really come from the encoder output (see docs/import.md).")
    w.note("T5's LayerNorm has a scale and no shift or mean (RMSNorm); the relative-position bias table belongs to "
           "the first layer of each stack and is shared by the others.")
    ffn = (call("gated_mlp", "DenseReluDense", d, "d_ff", act=act) if gated
           else call("mlp", "DenseReluDense", d, "d_ff", act=act, bias=False))
    attn_kw: dict[str, Any] = {"heads": "num_heads", "head_dim": "d_kv", "qkv_bias": False, "out_bias": False}
    w.block("encoder_layer", [
        residual(call("rmsnorm", "layer_norm", d), call("attention", "SelfAttention", d, causal=False, **attn_kw), drop),
        residual(call("rmsnorm", "ff_layer_norm", d), ffn, drop),
    ])
    w.block("decoder_layer", [
        residual(call("rmsnorm", "layer_norm", d), call("attention", "SelfAttention", d, **attn_kw), drop),
        residual(call("rmsnorm", "cross_layer_norm", d),
                 call("attention", "EncDecAttention", d, causal=False, **attn_kw), drop),
        residual(call("rmsnorm", "ff_layer_norm", d), ffn, drop),
    ])
    w.body.append("  " + call("embedding", "shared", "vocab_size", d) + "  # shared by encoder and decoder")
    w.body.append("  " + call("param", "encoder_relative_attention_bias", "relative_attention_num_buckets", "num_heads"))
    w.body += w.stack(["encoder_layer"], count="num_layers", name="encoder")
    w.body.append("  " + call("rmsnorm", "encoder_final_layer_norm", d))
    w.body.append("  " + call("param", "decoder_relative_attention_bias", "relative_attention_num_buckets", "num_heads"))
    w.body += w.stack(["decoder_layer"], count="num_decoder_layers", name="decoder")
    w.body.append("  " + call("rmsnorm", "decoder_final_layer_norm", d))
    if not tied:
        w.note("tie_word_embeddings = false (T5 v1.1, Flan-T5): the LM head has its own weight.")
    w.body.append("  " + call("linear", "lm_head", d, "vocab_size", bias=False, tie="shared" if tied else None))
    return w


FAMILIES: dict[str, Callable[[HFConfig], MemWriter]] = {
    "bert": bert,
    "roberta": roberta,
    "gpt2": gpt2,
    "gpt_neox": gpt_neox,
    "opt": opt,
    "llama": llama,
    "mistral": mistral,
    "mixtral": mixtral,
    "qwen2": qwen2,
    "qwen2_moe": qwen2_moe,
    "qwen3": qwen3,
    "qwen3_moe": qwen3_moe,
    "gemma": gemma,
    "gemma2": gemma2,
    "phi3": phi3,
    "falcon": falcon,
    "t5": t5,
    "deepseek_v2": deepseek_v2,
    "deepseek_v3": deepseek_v3,
}
