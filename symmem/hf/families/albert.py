"""ALBERT (``AlbertModel``; Lan et al. 2020, "ALBERT: A Lite BERT for Self-supervised Learning
of Language Representations", sections 3.1 "factorized embedding parameterization" and
"cross-layer parameter sharing"): a BERT-like post-LayerNorm encoder whose token, position
and token-type tables are ``embedding_size`` wide, projected to ``hidden_size`` by
``embedding_hidden_mapping_in``, and whose ``num_hidden_layers`` layers run
``num_hidden_groups`` groups of ``inner_group_num`` distinct layers, each group's weights
shared by ``num_hidden_layers / num_hidden_groups`` consecutive iterations
(transformers ``AlbertTransformer.forward``: ``group_idx = int(i / (num_hidden_layers /
num_hidden_groups))``).  Written as ``repeat ... shared { }``: the parameters once per group,
the activations once per iteration."""

from __future__ import annotations

from symmem.hf.config import HFConfig, model_name_for
from symmem.hf.fields import dropout
from symmem.hf.registry import register
from symmem.hf.writer import MemWriter, call, residual


@register("albert")
def albert(c: HFConfig) -> MemWriter:
    w = MemWriter(c, model_name_for(c), "AlbertModel")
    pet = c.str("position_embedding_type", "absolute")
    if pet != "absolute":
        raise c.unsupported(
            "position_embedding_type",
            "relative position embeddings add per-layer tables symmem does not model",
        )
    w.sym("vocab_size", c.int("vocab_size", 30000))
    e = w.sym("embedding_size", c.int("embedding_size", 128))
    d = w.sym("hidden_size", c.int("hidden_size", 4096))
    n = c.int("num_hidden_layers", 12)
    groups = c.int("num_hidden_groups", 1)
    if n % groups:
        raise c.unsupported(
            "num_hidden_groups",
            f"{n} layers do not split evenly into {groups} groups (each group's share of the "
            "iterations would differ)",
        )
    w.sym("num_hidden_layers", n)
    w.sym("num_hidden_groups", groups, "groups of distinct weights")
    inner = w.sym("inner_group_num", c.int("inner_group_num", 1), "distinct layers per group")
    h = w.sym("num_attention_heads", c.int("num_attention_heads", 64))
    w.sym("intermediate_size", c.int("intermediate_size", 16384))
    w.sym("max_position_embeddings", c.int("max_position_embeddings", 512))
    w.sym("type_vocab_size", c.int("type_vocab_size", 2))
    act = c.act("hidden_act", "gelu_new")
    attn_p = c.float("attention_probs_dropout_prob", 0.0)
    drop = dropout(w, c, "hidden_dropout_prob", 0.0)
    if attn_p:
        w.sym("attention_probs_dropout_prob", attn_p)
    w.note(
        "The base model with its pooler (no MLM / SOP head); each group's layers are one set "
        "of weights run num_hidden_layers / num_hidden_groups times (repeat ... shared): "
        "parameters counted once per group, activations once per iteration."
    )
    attn = call(
        "attention",
        "attention",
        d,
        heads=h,
        causal=False,
        dropout="attention_probs_dropout_prob" if attn_p else None,
        softmax_fp32=False,  # eager_attention_forward: softmax in the activation dtype
    )
    mlp = call("mlp", "ffn", d, "intermediate_size", act=act)
    # AlbertAttention: dense, output_dropout, LayerNorm(x + .); AlbertLayer: ffn, act,
    # ffn_output, full_layer_layer_norm(. + x) with no dropout (its self.dropout is unused)
    w.block(
        "albert_layer",
        [
            residual(attn, drop),
            call("layernorm", "attention_norm", d),
            residual(mlp),
            call("layernorm", "full_layer_layer_norm", d),
        ],
    )
    w.body += [
        "  " + call("embedding", "word_embeddings", "vocab_size", e),
        "  " + call("pos_embedding", "position_embeddings", "max_position_embeddings", e),
        "  " + call("param", "token_type_embeddings", "type_vocab_size", e),
        "  " + call("layernorm", "embeddings_norm", e),
    ]
    if drop:
        w.body.append("  " + drop)
    w.body += [
        "  " + call("linear", "embedding_hidden_mapping_in", e, d),
        "  repeat num_hidden_groups albert_layer_groups {",
        "    repeat num_hidden_layers / num_hidden_groups shared iterations {",
        f"      repeat {inner} albert_layers {{ albert_layer }}",
        "    }",
        "  }",
        "  " + call("linear", "pooler", d, d) + "  # pooler + tanh on the first token",
    ]
    return w
