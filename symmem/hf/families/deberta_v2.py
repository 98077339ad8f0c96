"""DeBERTa-v2 / v3 (``DebertaV2Model``): BERT's post-LayerNorm layers with disentangled
relative attention: a shared relative-position table (and its LayerNorm) for the whole
encoder, no absolute positions by default, no pooler."""

from __future__ import annotations

from symmem.hf.config import HFConfig
from symmem.hf.decoder import layer_lines
from symmem.hf.families.bert import LAYOUT
from symmem.hf.fields import dropout
from symmem.hf.registry import register
from symmem.hf.writer import MemWriter, call


@register("deberta-v2")
def deberta_v2(c: HFConfig) -> MemWriter:
    w = MemWriter(c, "deberta_v2", "DebertaV2Model")
    if c.int("conv_kernel_size", 0, minimum=0):
        raise c.unsupported("conv_kernel_size", "DeBERTa-v2's convolution layer is not modelled")
    w.sym("vocab_size", c.int("vocab_size"))
    hidden = c.int("hidden_size")
    d = w.sym("hidden_size", hidden)
    emb = c.int("embedding_size", hidden)
    e = w.sym("embedding_size", emb) if emb != hidden else d
    w.sym("num_hidden_layers", c.int("num_hidden_layers"))
    h = w.sym("num_attention_heads", c.int("num_attention_heads"))
    w.sym("intermediate_size", c.int("intermediate_size"))
    act = c.act("hidden_act", "gelu")
    relative = c.bool("relative_attention", False)
    pos_types = c.raw("pos_att_type", None) or []
    if isinstance(pos_types, str):
        pos_types = [t for t in pos_types.lower().split("|") if t]
    share = c.bool("share_att_key", False)
    attn_p = c.float("attention_probs_dropout_prob", 0.1)
    drop = dropout(w, c, "hidden_dropout_prob", 0.1)
    if attn_p:
        w.sym("attention_probs_dropout_prob", attn_p)
    attn = call(
        "attention",
        "attention",
        d,
        heads=h,
        causal=False,
        dropout="attention_probs_dropout_prob" if attn_p else None,
    )
    attn_lines = [attn]
    if relative and not share and ({"c2p", "p2c"} & set(pos_types)):
        # pos_key_proj (c2p) / pos_query_proj (p2c): d x d with bias each, per layer
        if "c2p" in pos_types:
            attn_lines.append(call("linear", "pos_key_proj", d, d))
        if "p2c" in pos_types:
            attn_lines.append(call("linear", "pos_query_proj", d, d))
    mlp = call("mlp", "mlp", d, "intermediate_size", act=act)
    w.block("encoder_layer", layer_lines(LAYOUT, "; ".join(attn_lines), mlp, drop))
    w.body.append("  " + call("embedding", "word_embeddings", "vocab_size", e))
    if c.bool("position_biased_input", True):
        w.sym("max_position_embeddings", c.int("max_position_embeddings", 512))
        w.body.append(
            "  " + call("pos_embedding", "position_embeddings", "max_position_embeddings", e)
        )
    types = c.int("type_vocab_size", 0, minimum=0)
    if types:
        w.sym("type_vocab_size", types)
        w.body.append("  " + call("param", "token_type_embeddings", "type_vocab_size", e))
    if e != d:
        w.body.append("  " + call("linear", "embed_proj", e, d, bias=False))
    w.body.append("  " + call("layernorm", "embeddings_norm", d))
    if drop:
        w.body.append("  " + drop)
    if relative:
        buckets = c.int("position_buckets", -1, minimum=-1)
        if buckets > 0:
            rows = w.sym("position_buckets", buckets, "log-bucketed relative positions")
        else:
            span = c.int("max_relative_positions", -1, minimum=-1)
            if span < 1:
                span = c.int("max_position_embeddings", 512)
            rows = w.sym("max_relative_positions", span)
        w.body.append(f"  {call('param', 'rel_embeddings', f'2 * {rows}', d)}  # shared by layers")
        norm_rel = c.str("norm_rel_ebd", "none")
        if "layer_norm" in [x.strip() for x in norm_rel.lower().split("|")]:
            w.body.append("  " + call("param", "rel_embeddings_norm", 2, d) + "  # LayerNorm(d)")
        w.note(
            "Disentangled attention (pos_att_type: "
            + ", ".join(pos_types)
            + "): the counts are exact; the saved tensors of the content-to-position and "
            "position-to-content scores are not modelled (plain attention's are counted)."
        )
    w.body += w.stack(["encoder_layer"])
    return w
