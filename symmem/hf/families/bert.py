"""BERT and RoBERTa (``BertModel`` / ``RobertaModel``): post-LayerNorm encoders with a pooler."""

from __future__ import annotations

from symmem.hf.config import HFConfig, model_name_for
from symmem.hf.decoder import Layout, layer_lines
from symmem.hf.fields import dropout
from symmem.hf.registry import register
from symmem.hf.writer import MemWriter, call

LAYOUT = Layout(
    norm="layernorm",
    arrangement="post_norm",
    attn_norm="attention_norm",
    mlp_norm="output_norm",
)


def _bert_like(c: HFConfig, hf_class: str) -> MemWriter:
    w = MemWriter(c, model_name_for(c), hf_class)
    if c.bool("add_cross_attention", False) or c.bool("is_decoder", False):
        raise c.unsupported(
            "add_cross_attention" if c.has("add_cross_attention") else "is_decoder",
            "BERT as a decoder with cross-attention is not modelled",
        )
    pet = c.str("position_embedding_type", "absolute")
    if pet != "absolute":
        raise c.unsupported(
            "position_embedding_type",
            "relative position embeddings add per-layer tables symmem does not model",
        )
    w.sym("vocab_size", c.int("vocab_size"))
    d = w.sym("hidden_size", c.int("hidden_size"))
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
    w.note(
        "The base model with its pooler (no MLM / NSP / classifier head); "
        "post-LayerNorm encoder layers."
    )
    attn = call(
        "attention",
        "attention",
        d,
        heads=h,
        causal=False,
        dropout="attention_probs_dropout_prob" if attn_p else None,
        softmax_fp32=False,  # BERT's eager_attention_forward: softmax in the activation dtype
    )
    mlp = call("mlp", "mlp", d, "intermediate_size", act=act)
    w.block("encoder_layer", layer_lines(LAYOUT, attn, mlp, drop))
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
    pooler = call("linear", "pooler", d, d)
    w.body.append(f"  {pooler}  # BertPooler: dense + tanh on the first token")
    return w


@register("bert")
def bert(c: HFConfig) -> MemWriter:
    return _bert_like(c, "BertModel")


@register("roberta")
def roberta(c: HFConfig) -> MemWriter:
    return _roberta_like(c, "RobertaModel")


@register("xlm-roberta")
def xlm_roberta(c: HFConfig) -> MemWriter:
    return _roberta_like(c, "XLMRobertaModel")


def _roberta_like(c: HFConfig, hf_class: str) -> MemWriter:
    w = _bert_like(c, hf_class)
    w.note(
        "RoBERTa's max_position_embeddings includes its padding offset "
        "(positions start at pad_token_id + 1)."
    )
    return w
