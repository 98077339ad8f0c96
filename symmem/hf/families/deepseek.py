"""DeepSeek-V2 / V3 (``DeepseekV2ForCausalLM`` / ``DeepseekV3ForCausalLM``): MLA and MoE.

Dense layers first (``first_k_dense_replace``), then MoE layers with routed and
shared experts; V3 adds multi-token-prediction modules (counted on request).
"""

from __future__ import annotations

from symmem.hf.config import HFConfig
from symmem.hf.decoder import Layout, build_decoder, layer_lines
from symmem.hf.fields import core_sizes, rope_note, tie_word_embeddings
from symmem.hf.registry import register
from symmem.hf.writer import MemWriter, call

LAYOUT = Layout()


def _deepseek(c: HFConfig, version: int) -> MemWriter:
    w = MemWriter(c, f"deepseek_v{version}", f"DeepseekV{version}ForCausalLM")
    core_sizes(c, w)
    n = c.int("num_hidden_layers")
    d = "hidden_size"
    v3 = version == 3
    w.sym("intermediate_size", c.int("intermediate_size"), "dense layers")
    w.sym(
        "moe_intermediate_size",
        c.int("moe_intermediate_size"),
        "width of each routed and shared expert",
    )
    e = w.sym("n_routed_experts", c.int("n_routed_experts", 256 if v3 else 64))
    k = w.sym("num_experts_per_tok", c.int("num_experts_per_tok", 8 if v3 else None))
    shared = c.int("n_shared_experts", 1 if v3 else 2, minimum=0)
    w.sym("n_shared_experts", shared)
    first_k = c.int("first_k_dense_replace", 3 if v3 else 0, minimum=0)
    if first_k > n:
        # transformers: layer i is MoE when i >= first_k_dense_replace (and i % freq == 0), so
        # a value above the layer count makes every layer dense; the stack has n layers
        w.note(
            f"first_k_dense_replace = {first_k} is more than num_hidden_layers = {n}: every layer "
            "is dense (transformers builds an MoE layer only at index >= first_k_dense_replace)."
        )
        first_k = n
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
    rope_note(c, w)
    method = c.str("topk_method", "noaux_tc" if v3 else "greedy")
    groups = [f"{key} = {c.data[key]}" for key in ("n_group", "topk_group") if c.has(key)]
    w.note(
        f"Routing: topk_method = {method}"
        + (f", {', '.join(groups)}" if groups else "")
        + " (group-limited routing has no parameters)."
    )
    if freq != 1:
        w.note(
            f"moe_layer_freq = {freq}: MoE in layers i >= first_k_dense_replace with i % "
            "moe_layer_freq == 0 (DeepSeek's reference code; transformers ignores "
            "moe_layer_freq)."
        )
    kinds = ["moe" if (i >= first_k and i % freq == 0) else "dense" for i in range(n)]
    if q_lora is None:
        w.note("q_lora_rank = null: queries are projected directly (q_proj), without a latent.")
    mla = call(
        "mla",
        "self_attn",
        d,
        "num_attention_heads",
        "kv_lora_rank",
        "qk_nope_head_dim",
        "qk_rope_head_dim",
        "v_head_dim",
        q_lora_rank="q_lora_rank" if q_lora is not None else None,
        bias=bias or None,
    )
    ffns = {
        "dense": call("gated_mlp", "mlp", d, "intermediate_size", act=act, bias=mlp_bias or None),
        "moe": call(
            "moe",
            "mlp",
            d,
            "moe_intermediate_size",
            e,
            k,
            n_shared="n_shared_experts" if shared else None,
            d_shared="moe_intermediate_size" if shared else None,
            act=act,
            score_bias=True if v3 else None,
        ),
    }
    if mlp_bias and shared:
        # DeepseekV2MLP (the shared experts, one MLP of width n_shared * f) takes config.mlp_bias;
        # the fused routed experts have no biases.  The moe kind has no shared-expert bias: a param.
        ffns["moe"] += "; " + call(
            "param",
            "shared_experts_bias",
            "2 * n_shared_experts * moe_intermediate_size + hidden_size",
        )
        w.note(
            "mlp_bias: shared_experts_bias holds the gate, up and down biases of the shared "
            "experts."
        )
    extra: list[str] = []
    if v3:
        mtp = c.int("num_nextn_predict_layers", 1, minimum=0)
        w.sym(
            "mtp_layers",
            0,
            f"multi-token-prediction modules: the checkpoint has num_nextn_predict_layers = {mtp}",
        )
        w.note(
            "MTP (DeepSeek-V3 section 2.2): set mtp_layers = num_nextn_predict_layers to count "
            "them; transformers does not build them.  Each adds two RMSNorms, a 2d -> d "
            "projection, one MoE decoder layer and a final RMSNorm; its embedding and output "
            "head are shared with the main model (the released checkpoint stores copies of "
            "both)."
        )
        w.header_options.append("active_embeddings = exclude")
        if mtp >= 1:  # the memory model counts them in training (the memory option mtp)
            w.header_options.append(f"mtp = {mtp}")
        w.block(
            "mtp_module",
            [
                call("rmsnorm", "enorm", d),
                call("rmsnorm", "hnorm", d),
                call("param", "eh_proj", d, f"2 * {d}") + "  # Linear(2d, d, bias=false)",
                "moe_layer" if "moe" in kinds else "dense_layer",
                call("rmsnorm", "shared_head_norm", d),
            ],
        )
        extra.append("  repeat mtp_layers mtp { mtp_module }")
    else:
        w.header_options.append("active_embeddings = count")
    prefix_ok = freq == 1 and all(kk == "dense" for kk in kinds[:first_k])
    build_decoder(
        c,
        w,
        LAYOUT,
        attention=lambda _window: mla,
        ffns=ffns,
        layer_ffn=kinds,
        windows=[False] * n,
        tied=tie_word_embeddings(c, False),
        extra_body=extra,
        prefix=("first_k_dense_replace", first_k) if prefix_ok else None,
        named=True,
    )
    if "dense_layer" not in w.blocks:  # so that first_k_dense_replace can be set above 0
        w.block("dense_layer", layer_lines(LAYOUT, mla, ffns["dense"]))
    if "mtp_module" in w.blocks:  # MTP refers to the layer blocks: render it after them
        w.blocks["mtp_module"] = w.blocks.pop("mtp_module")
    return w


@register("deepseek_v2")
def deepseek_v2(c: HFConfig) -> MemWriter:
    return _deepseek(c, 2)


@register("deepseek_v3")
def deepseek_v3(c: HFConfig) -> MemWriter:
    return _deepseek(c, 3)
