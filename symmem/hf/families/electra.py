"""ELECTRA (``ElectraModel``): BERT's layers under a narrower embedding projected to the
hidden size; no pooler."""

from __future__ import annotations

from symmem.hf.config import HFConfig, model_name_for
from symmem.hf.decoder import layer_lines
from symmem.hf.families.bert import LAYOUT
from symmem.hf.fields import dropout
from symmem.hf.registry import register
from symmem.hf.writer import MemWriter, call


@register("electra")
def electra(c: HFConfig) -> MemWriter:
    w = MemWriter(c, model_name_for(c), "ElectraModel")
    if c.bool("add_cross_attention", False) or c.bool("is_decoder", False):
        raise c.unsupported("is_decoder", "ELECTRA as a decoder is not modelled")
    if c.str("position_embedding_type", "absolute") != "absolute":
        raise c.unsupported(
            "position_embedding_type", "relative position embeddings are not modelled"
        )
    w.sym("vocab_size", c.int("vocab_size"))
    emb = c.int("embedding_size", 128)
    hidden = c.int("hidden_size")
    d = w.sym("hidden_size", hidden)
    e = w.sym("embedding_size", emb) if emb != hidden else d
    w.sym("num_hidden_layers", c.int("num_hidden_layers"))
    h = w.sym("num_attention_heads", c.int("num_attention_heads"))
    w.sym("intermediate_size", c.int("intermediate_size"))
    w.sym("max_position_embeddings", c.int("max_position_embeddings", 512))
    w.sym("type_vocab_size", c.int("type_vocab_size", 2))
    act = c.act("hidden_act", "gelu")
    attn_p = c.float("attention_probs_dropout_prob", 0.1)
    drop = dropout(w, c, "hidden_dropout_prob", 0.1)
    if attn_p:
        w.sym("attention_probs_dropout_prob", attn_p)
    w.note("The discriminator / generator body (no head): embeddings, projection, BERT layers.")
    attn = call(
        "attention",
        "attention",
        d,
        heads=h,
        causal=False,
        dropout="attention_probs_dropout_prob" if attn_p else None,
    )
    mlp = call("mlp", "mlp", d, "intermediate_size", act=act)
    w.block("encoder_layer", layer_lines(LAYOUT, attn, mlp, drop))
    w.body += [
        "  " + call("embedding", "word_embeddings", "vocab_size", e),
        "  " + call("pos_embedding", "position_embeddings", "max_position_embeddings", e),
        "  " + call("param", "token_type_embeddings", "type_vocab_size", e),
        "  " + call("layernorm", "embeddings_norm", e),
    ]
    if drop:
        w.body.append("  " + drop)
    if e != d:
        w.body.append("  " + call("linear", "embeddings_project", e, d))
    w.body += w.stack(["encoder_layer"])
    return w
