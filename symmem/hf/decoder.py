"""The decoder skeleton every causal-LM family shares, parametrised as data.

A decoder is: token embedding (and, for some, learned positions), a stack of
layers, a final norm and an LM head.  Families differ in module names, norm
kind, where the norms sit (pre-norm, Gemma-2's sandwich, post-norm, GPT-NeoX /
Falcon's parallel attention and MLP), biases, the head's bias and tying, and
the feed-forward of each layer.  :class:`Layout` holds the structure and the
names, :func:`build_decoder` writes blocks and body from it, and
:class:`DecoderSpec` is a whole Llama-style family as data (the fields it
reads, with their class defaults): most families are one ``DecoderSpec``.
"""

from __future__ import annotations

from collections.abc import Callable, Sequence
from dataclasses import replace
from typing import Literal

from symmem.hf.config import HFConfig, model_name_for
from symmem.hf.fields import (
    WindowScheme,
    core_sizes,
    default_sliding_window,
    dropout,
    head_dim,
    kv_heads,
    layer_windows,
    rope_note,
    sparse_layers,
)
from symmem.hf.writer import MemWriter, call, par, residual
from symmem.records import record

#: renders the attention statement; its argument is the window symbol (None: full attention)
Attention = Callable[[str | None], str]


@record
class Layout:
    """How one family names and arranges its modules (transformers' module names)."""

    #: the DSL kind of every norm
    norm: Literal["rmsnorm", "layernorm"] = "rmsnorm"
    #: False: LayerNorm without scale and shift (OPT's ``layer_norm_elementwise_affine``)
    norm_affine: bool = True
    #: False: LayerNorm with a scale and no shift (Cohere's ``CohereLayerNorm``)
    norm_bias: bool = True
    #: the hidden-size symbol
    hidden: str = "hidden_size"
    embed: str = "embed_tokens"
    #: the block name of a homogeneous stack (``<ffn>_layer`` when layers differ)
    block: str = "decoder_layer"
    stack: str = "layers"
    #: the layer-count symbol
    count: str = "num_hidden_layers"
    #: ``pre_norm``: ``x + f(norm(x))`` per sublayer; ``post_norm``: ``norm(x + f(x))``;
    #: ``parallel``: ``x + attn(norm(x)) + mlp(norm'(x))`` (one shared norm when
    #: ``mlp_norm`` is None)
    arrangement: Literal["pre_norm", "post_norm", "parallel"] = "pre_norm"
    attn_norm: str | None = "input_layernorm"
    mlp_norm: str | None = "post_attention_layernorm"
    #: Gemma-2's norms after attention and after the MLP (inside the residual)
    post_attn_norm: str | None = None
    post_mlp_norm: str | None = None
    #: parallel: dropout on each branch (GPT-NeoX) rather than on their sum (Falcon)
    branch_dropout: bool = False
    final_norm: str = "norm"
    head: str = "lm_head"
    head_bias: bool = False

    def norm_stmt(self, name: str | None) -> str:
        """The norm statement called ``name``; '' for None."""
        if name is None:
            return ""
        return call(
            self.norm,
            name,
            self.hidden,
            affine=None if self.norm_affine else False,
            bias=None if self.norm_bias or self.norm != "layernorm" else False,
        )


def layer_lines(layout: Layout, attention: str, ffn: str, dropout: str = "") -> list[str]:
    """The statements of one layer: attention and feed-forward arranged as ``layout`` says."""
    norm = layout.norm_stmt
    if layout.arrangement == "post_norm":
        return [
            residual(attention, dropout),
            norm(layout.attn_norm),
            residual(ffn, dropout),
            norm(layout.mlp_norm),
        ]
    if layout.arrangement == "parallel":
        inner = dropout if layout.branch_dropout else ""
        outer = "" if layout.branch_dropout else dropout
        if layout.mlp_norm is None:
            return [residual(norm(layout.attn_norm), par([attention, inner], [ffn, inner]), outer)]
        branches = par(
            [norm(layout.attn_norm), attention, inner], [norm(layout.mlp_norm), ffn, inner]
        )
        return [residual(branches, outer)]
    return [
        residual(norm(layout.attn_norm), attention, norm(layout.post_attn_norm), dropout),
        residual(norm(layout.mlp_norm), ffn, norm(layout.post_mlp_norm), dropout),
    ]


def build_decoder(
    c: HFConfig,
    w: MemWriter,
    layout: Layout,
    *,
    attention: Attention,
    ffns: dict[str, str],
    layer_ffn: Sequence[str],
    windows: Sequence[bool],
    tied: bool,
    dropout: str = "",
    before_layers: Sequence[str] = (),
    extra_body: Sequence[str] = (),
    prefix: tuple[str, int] | None = None,
    named: bool = False,
    window_key: str = "sliding_window",
) -> None:
    """Blocks and body: embedding, the layer stack, final norm and LM head.

    ``ffns`` maps a feed-forward kind to its statement and ``layer_ffn`` gives
    each layer's kind; ``windows`` says which layers use sliding-window
    attention.  Layers that differ get one block per (kind, window) pair,
    named ``<kind>_layer`` (always, when ``named``) with ``_sliding`` /
    ``_full``.  ``before_layers`` follows the embedding (learned positions,
    embedding dropout); ``extra_body`` precedes the head (DeepSeek-V3's MTP);
    ``prefix = (symbol, k)`` splits the stack after the first ``k`` layers
    (DeepSeek's ``first_k_dense_replace``).  ``window_key`` is the config field of the
    window (Llama 4's ``attention_chunk_size``).
    """
    d = layout.hidden
    window_sym = None
    if any(windows):
        window_sym = w.sym(window_key, c.int(window_key), "KV cache holds at most this many tokens")
    names: dict[tuple[str, bool], str] = {}
    distinct = sorted(
        set(zip(layer_ffn, windows, strict=True)), key=lambda k: (list(ffns).index(k[0]), k[1])
    )
    for ffn, slide in distinct:
        name = layout.block if len(set(layer_ffn)) == 1 and not named else f"{ffn}_layer"
        if len(set(windows)) > 1:
            name += "_sliding" if slide else "_full"
        names[(ffn, slide)] = name
        attn = attention(window_sym if slide else None)
        w.block(name, layer_lines(layout, attn, ffns[ffn], dropout))
    keys = [names[(f, s)] for f, s in zip(layer_ffn, windows, strict=True)]
    w.body.append("  " + call("embedding", layout.embed, "vocab_size", d))
    w.body += [f"  {s}" for s in before_layers if s]
    if prefix is not None:
        sym, k = prefix
        if k:
            w.body += w.stack(keys[:k], count=sym, name="dense_layers")
        else:
            w.body.append(f"  repeat {sym} dense_layers {{ dense_layer }}")
        w.body += w.stack(keys[k:], count=f"{layout.count} - {sym}", name="moe_layers")
    else:
        w.body += w.stack(keys, count=layout.count, name=layout.stack)
    w.body.append("  " + layout.norm_stmt(layout.final_norm))
    w.body += extra_body
    head = call(
        "linear",
        layout.head,
        d,
        "vocab_size",
        bias=layout.head_bias,
        tie=layout.embed if tied else None,
    )
    w.body.append("  " + head)


def gqa_attention(
    c: HFConfig,
    w: MemWriter,
    *,
    kv_default: int | None,
    head_dim_default: int | None,
    qkv_bias: bool,
    out_bias: bool,
    qk_norm: bool = False,
    qk_norm_scope: Literal["head", "full"] = "head",
    sinks: bool = False,
) -> Attention:
    """Llama-style ``self_attn``: grouped-query heads, optional head_dim, biases, qk-norm
    (per head, or over the whole projection: OLMo-2) and gpt-oss's attention sinks."""
    hidden, heads = c.int("hidden_size"), c.int("num_attention_heads")
    kv = kv_heads(c, w, heads, kv_default)
    hd = head_dim(c, w, hidden, heads, head_dim_default)
    if hd is None and hidden % heads:
        raise c.unsupported(
            "num_attention_heads",
            f"hidden_size = {hidden} is not a multiple of it and no head_dim is given",
        )
    attn_p = c.float("attention_dropout", 0.0)
    if attn_p:
        w.sym("attention_dropout", attn_p)

    def render(window: str | None) -> str:
        return call(
            "attention",
            "self_attn",
            "hidden_size",
            heads="num_attention_heads",
            kv_heads=kv,
            head_dim=hd,
            qkv_bias=qkv_bias,
            out_bias=out_bias,
            qk_norm=qk_norm or None,
            qk_norm_scope=qk_norm_scope if qk_norm and qk_norm_scope != "head" else None,
            dropout="attention_dropout" if attn_p else None,
            window=window,
            sinks=sinks or None,
            # gpt-oss's eager_attention_forward takes its softmax in the logits' own dtype
            # (F.softmax(combined_logits, dim=-1, dtype=combined_logits.dtype)), not in fp32
            softmax_fp32=False if sinks else None,
        )

    return render


# ---------------------------------------------------------------- a family as data


@record
class FromConfig:
    """A boolean read from a config field, with the transformers class's default."""

    key: str
    default: bool

    def read(self, c: HFConfig) -> bool:
        return c.bool(self.key, self.default)


#: a fixed switch, or one the config sets
Switch = bool | FromConfig


def _switch(c: HFConfig, s: Switch) -> bool:
    return s.read(c) if isinstance(s, FromConfig) else s


#: a feed-forward statement given (activation, mlp bias)
Statement = Callable[[str, bool], str]


@record
class FeedForward:
    """Each layer's feed-forward kind, and each kind's statement given (activation, mlp bias)."""

    layers: list[str]
    statements: dict[str, Statement]


#: reads the feed-forward sizes (declaring their symbols) for ``n`` layers
FeedForwardReader = Callable[[HFConfig, MemWriter, int], FeedForward]


def dense_ffn(c: HFConfig, w: MemWriter, n: int) -> FeedForward:
    """Every layer a ``gated_mlp`` of ``intermediate_size`` (Llama's SwiGLU MLP)."""
    w.sym("intermediate_size", c.int("intermediate_size"))

    def render(act: str, bias: bool) -> str:
        return call(
            "gated_mlp", "mlp", "hidden_size", "intermediate_size", act=act, bias=bias or None
        )

    return FeedForward(["dense"] * n, {"dense": render})


def sparse_moe_ffn(
    c: HFConfig,
    w: MemWriter,
    n: int,
    *,
    experts: int,
    dense_width: int,
    expert_width: int,
    per_token: int,
    shared_width: int | None = None,
) -> FeedForward:
    """Qwen-MoE's layers: routed experts where ``decoder_sparse_step`` / ``mlp_only_layers``
    say (:func:`sparse_layers`), a dense ``gated_mlp`` elsewhere.  The other arguments are the
    class's defaults: ``experts`` is the number already read from the config; ``shared_width``
    (None: the class has no shared expert) is the default of
    ``shared_expert_intermediate_size``, whose sigmoid gate Qwen2MoeSparseMoeBlock builds
    even for a 0-wide shared expert."""
    kinds = sparse_layers(c, n, experts > 0)
    statements: dict[str, Statement] = {}
    if "dense" in kinds:
        w.sym(
            "intermediate_size", c.int("intermediate_size", dense_width), "dense (mlp_only) layers"
        )

        def dense(act: str, bias: bool) -> str:
            return call("gated_mlp", "mlp", "hidden_size", "intermediate_size", act=act)

        statements["dense"] = dense
    if "moe" in kinds:
        w.sym(
            "moe_intermediate_size",
            c.int("moe_intermediate_size", expert_width),
            "width of each routed expert",
        )
        w.sym("num_experts", experts)
        w.sym("num_experts_per_tok", c.int("num_experts_per_tok", per_token))
        shared = 0
        if shared_width is not None:
            shared = c.int("shared_expert_intermediate_size", shared_width, minimum=0)
            if shared:
                w.sym(
                    "shared_expert_intermediate_size",
                    shared,
                    "one shared expert, with a sigmoid gate",
                )

        def moe(act: str, bias: bool) -> str:
            return call(
                "moe",
                "mlp",
                "hidden_size",
                "moe_intermediate_size",
                "num_experts",
                "num_experts_per_tok",
                n_shared=1 if shared else None,
                d_shared="shared_expert_intermediate_size" if shared else None,
                act=act,
                shared_gate=True if shared_width is not None else None,
            )

        statements["moe"] = moe
    return FeedForward(kinds, statements)


@record
class DecoderSpec:
    """A Llama-style family as data: the fields it reads, with its class's defaults.

    Calling the spec on a config imports it; register it with
    ``register("model_type")(DecoderSpec(...))``.  Fields are read in a fixed
    order (sizes, feed-forward, biases, activation, rope, attention, window,
    tying), which fixes the order of the file's symbols and defaults.
    """

    #: the transformers class whose parameter count the file reproduces
    hf_class: str
    ffn: FeedForwardReader = dense_ffn
    #: class default of ``num_key_value_heads`` (None: one key/value head per query head)
    kv_heads: int | None = None
    #: class (or modeling ``getattr``) default of ``head_dim`` (None: hidden / heads)
    head_dim: int | None = None
    qkv_bias: Switch = FromConfig("attention_bias", False)
    out_bias: Switch = FromConfig("attention_bias", False)
    mlp_bias: Switch = False
    #: RMSNorm of q and k (Qwen3: per head; a FromConfig for families that make it optional)
    qk_norm: Switch = False
    #: where qk_norm normalises: each head (Qwen3) or the whole projection (OLMo-2, OLMoE)
    qk_norm_scope: Literal["head", "full"] = "head"
    #: one learned logit per head in every softmax (gpt-oss's ``sinks``)
    sinks: bool = False
    #: the activation field and its default
    act: tuple[str, str] = ("hidden_act", "silu")
    #: activation names the config class reads differently (Gemma reads gelu as tanh-GELU)
    act_aliases: tuple[tuple[str, str], ...] = ()
    windows: WindowScheme | None = None
    #: the class's ``sliding_window`` default, applied when the field is absent
    sliding_window: int | None = None
    #: the class's ``sliding_window_pattern`` default (``windows = "pattern"``)
    window_pattern: int = 0
    #: the LM head's bias (None: the layout's)
    head_bias: Switch | None = None
    #: the residual-dropout field and its class default (None: the family has none)
    dropout: tuple[str, float] | None = None
    #: class default of ``tie_word_embeddings``
    tied: bool = False
    notes: tuple[str, ...] = ()
    header_options: tuple[str, ...] = ()
    layout: Layout = Layout()

    def _act(self, c: HFConfig) -> str:
        key, default = self.act
        aliases = dict(self.act_aliases)
        if aliases:
            name = c.str(key, default)
            if name in aliases:
                return aliases[name]
        return c.act(key, default)

    def __call__(self, c: HFConfig) -> MemWriter:
        w = MemWriter(c, model_name_for(c), self.hf_class)
        core_sizes(c, w)
        n = c.int("num_hidden_layers")
        ff = self.ffn(c, w, n)
        qkv_bias, out_bias = _switch(c, self.qkv_bias), _switch(c, self.out_bias)
        mlp_bias = _switch(c, self.mlp_bias)
        act = self._act(c)
        rope_note(c, w)
        for note in self.notes:
            w.note(note)
        attn = gqa_attention(
            c,
            w,
            kv_default=self.kv_heads,
            head_dim_default=self.head_dim,
            qkv_bias=qkv_bias,
            out_bias=out_bias,
            qk_norm=_switch(c, self.qk_norm),
            qk_norm_scope=self.qk_norm_scope,
            sinks=self.sinks,
        )
        if self.sliding_window is not None:
            default_sliding_window(c, self.sliding_window)
        windows = layer_windows(c, n, self.windows, self.window_pattern)
        tied = c.bool("tie_word_embeddings", self.tied)
        w.header_options += self.header_options
        ffns = {kind: render(act, mlp_bias) for kind, render in ff.statements.items()}
        # the cos / sin tables of the rotary embedding, made once per forward
        hd = "head_dim" if "head_dim" in w.symbols else "hidden_size / num_attention_heads"
        rope = call("rotary", "rotary_emb", hd)
        layout = self.layout
        if self.head_bias is not None:
            layout = replace(layout, head_bias=_switch(c, self.head_bias))
        drop = dropout(w, c, *self.dropout) if self.dropout is not None else ""
        build_decoder(
            c,
            w,
            layout,
            attention=attn,
            ffns=ffns,
            layer_ffn=ff.layers,
            windows=windows,
            tied=tied,
            before_layers=[rope],
            dropout=drop,
        )
        return w
