"""The memory model (symmem.memory): published figures reproduced symbolically or to the printed
digits.

Sources are cited beside each test; hand derivations are written out.
"""

from __future__ import annotations

from typing import Any

import pytest
import sympy
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

import symmem
from symmem.activations import ActPolicy
from symmem.errors import OptionError
from symmem.memory import COMPONENTS, DEFAULT_CUDA_OVERHEAD, MemoryResult
from symmem.solve import solve

MiB = 2**20

# One GPT-style layer as Korthikanti et al. 2022 (Section 4.1) assume it: pre-LN, multi-head
# attention with dropout on the probabilities, dropout after the attention projection and
# after the MLP, f = 4h, GeLU; no embeddings and no loss (per-layer activations only).
GPT_LAYERS = """
d
heads
n_layers
p = 0.1
model gpt(input = [batch, seq_len, d]) {
  repeat n_layers layers {
    residual {
      layernorm ln_1(d)
      attention attn(d, heads = heads, dropout = p)
      dropout(p)
    }
    residual {
      layernorm ln_2(d)
      mlp(d, 4 * d, act = gelu, dropout = p)
    }
  }
}
"""

# The paper's accounting: 16-bit activations, 1-byte dropout masks (CUDA), eager attention,
# and none of the O(sb) buffers (layer-norm statistics, log-sum-exp, causal mask).
PAPER_POLICY = ActPolicy(
    attention="eager", device="cuda", dropout=True, dtype="bf16", loss="none", small_buffers=False
)


@pytest.fixture(scope="module")
def gpt() -> symmem.Model:
    return symmem.parse(GPT_LAYERS)


def _syms(m: symmem.Model) -> tuple[sympy.Symbol, ...]:
    return tuple(m.symbol(x) for x in ("seq_len", "batch", "d", "heads", "n_layers"))


T = sympy.Symbol("t", positive=True, integer=True)


def _table2() -> list[tuple[str, dict, object]]:
    """Korthikanti et al. 2022, Table 2: activation bytes per transformer layer
    (s sequence, b micro-batch, h hidden, a heads, t tensor-parallel size)."""
    return [
        ("no parallelism", {}, lambda s, b, h, a: s * b * h * (34 + 5 * a * s / h)),
        (
            "tensor parallel",
            {"tp": T},
            lambda s, b, h, a: s * b * h * (10 + 24 / T + 5 * a * s / (h * T)),
        ),
        (
            "tensor + sequence parallel",
            {"tp": T, "sp": True},
            lambda s, b, h, a: s * b * h * (34 / T + 5 * a * s / (h * T)),
        ),
        (
            "tensor parallel + selective recompute",
            {"tp": T, "checkpointing": "selective"},
            lambda s, b, h, a: s * b * h * (10 + 24 / T),
        ),
        (
            "tensor + sequence parallel + selective recompute",
            {"tp": T, "sp": True, "checkpointing": "selective"},
            lambda s, b, h, a: s * b * h * (34 / T),
        ),
    ]


@pytest.mark.parametrize("row", _table2(), ids=lambda r: r[0])
def test_korthikanti_table2(gpt: symmem.Model, row: tuple) -> None:
    _, options, per_layer = row
    s, b, h, a, L = _syms(gpt)
    got = gpt.memory("train", precision="bf16", policy=PAPER_POLICY, **options).activations.expr
    assert sympy.simplify(got - L * per_layer(s, b, h, a)) == 0


def test_korthikanti_table2_full_recompute(gpt: symmem.Model) -> None:
    """Table 2, last row: full recompute keeps 2sbh per layer (its 16-bit input).  During the
    backward one layer is recomputed, so one layer's set, sbh(34 + 5as/h), is alive too, less
    its input (2sbh, ln_1's input), which is the stored checkpoint itself (Table 2 leaves the
    recomputed layer out)."""
    s, b, h, a, L = _syms(gpt)
    got = gpt.memory(
        "train", precision="bf16", policy=PAPER_POLICY, checkpointing="full"
    ).activations.expr
    assert sympy.simplify(got - (L * 2 * s * b * h + s * b * h * (32 + 5 * a * s / h))) == 0


def test_gpt3_as_megatron_trains_it_matches_korthikanti() -> None:
    """The bundled GPT-3 175B in Korthikanti et al.'s setup (Section 6: tp 8, pp 8, sequence
    parallel, selective recompute, 16-bit, micro-batch 1, s 2048) as Megatron-LM builds it.

    By hand: the first pipeline stage holds 12 layers for each of its pp = 8 micro-batches in
    flight (1F1B), 96 layers' worth.  Table 2's last row gives 34 sbh/t per layer; the .mem has
    no dropout, so less the two 1-byte residual dropout masks (sbh/t each): 32 sbh/t.  Besides,
    what the paper leaves out (Section 4.1) and Megatron keeps: each layer's two layer norms'
    mean and rstd (fp32 on CUDA: 2 x 2 x 4 sb/t bytes), and the token ids (int64, 8 sb).
    Megatron's fused GeLU keeps its input only; with transformers' gelu_new (four tensors of
    4h) the same setup comes out 1.7x higher."""
    m = symmem.load("gpt3-175b")
    s, b, h, L, t = 2048, 1, 12288, 96, 8
    expected = L * 32 * s * b * h // t + L * 2 * 2 * 4 * s * b // t + 8 * s * b
    kw: dict[str, Any] = {
        "precision": "mixed-bf16",
        "tp": t,
        "pp": 8,
        "sp": True,
        "checkpointing": "selective",
    }
    got = m.memory("train", impl="megatron", attention="eager", **kw).activations.evaluate()
    assert got == expected
    paper = L * 34 * s * b * h / t  # Table 2 with its dropout masks: within 6 %
    assert abs(got / paper - 1) < 0.06
    assert m.source is not None and "act = gelu)" in m.source
    new = symmem.parse(m.source.replace("act = gelu)", "act = gelu_new)"))
    high = new.memory("train", impl="megatron", attention="eager", **kw).activations.evaluate()
    assert 1.6 < high / got < 1.8


def test_full_recompute_with_sequence_parallel_splits_the_checkpoints(gpt: symmem.Model) -> None:
    """With sequence parallelism the stored layer inputs are sequence-split: 2sbh/t per layer."""
    s, b, h, a, L = _syms(gpt)
    got = gpt.memory(
        "train", precision="bf16", policy=PAPER_POLICY, checkpointing="full", tp=T, sp=True
    ).activations.expr
    assert (
        sympy.simplify(got - (L * 2 * s * b * h / T + s * b * h * (32 / T + 5 * a * s / (h * T))))
        == 0
    )


def test_full_recompute_keeps_the_last_output_the_next_layer_needs() -> None:
    """repeat 4 { linear; tanh } then a linear head, fp32, no loss: without recompute the saved
    tensors are x0 (the first linear's input), t1..t3 (tanh outputs = next inputs) and t4 (tanh's
    output, also the head's input): 5 x 4bd.  With full recompute: the 4 iteration inputs
    x0, t1, t2, t3 and t4 for the head (5 x 4bd), plus, while one iteration is recomputed, its
    tanh output (4bd): 24bd."""
    m = symmem.parse("""
d
model m(input = [batch, d]) {
  repeat 4 blk { linear l(d, d); tanh }
  linear head(d, d)
}
""")
    pol = ActPolicy(loss="none", small_buffers=False)
    b, d = m.symbol("batch"), m.symbol("d")
    assert sympy.expand(m.memory(policy=pol).activations.expr - 20 * b * d) == 0
    assert (
        sympy.expand(m.memory(policy=pol, checkpointing="full").activations.expr - 24 * b * d) == 0
    )


def test_full_recompute_without_repeat_is_a_note() -> None:
    r = symmem.parse(ONE_TENSOR).memory("train", checkpointing="full")
    assert any("no repeat" in n for n in r.notes)
    assert r.activations.expr == symmem.parse(ONE_TENSOR).memory("train").activations.expr


# ---------------------------------------------------------------- the breakdown itself


def test_total_is_the_symbolic_sum(gpt: symmem.Model) -> None:
    r = symmem.load("gpt2").memory(
        "train", precision="mixed", optimizer="adam", checkpointing="selective"
    )
    assert isinstance(r, MemoryResult)
    assert sympy.expand(r.total.expr - sum(getattr(r, c).expr for c in COMPONENTS)) == 0
    values = r.bytes()
    assert values["total"] == sum(values[c] for c in COMPONENTS)
    assert all(isinstance(v, int) for v in values.values())


def test_expressions_stay_symbolic_in_batch_and_seq_len() -> None:
    m = symmem.load("gpt2", free=["batch", "seq_len"])
    r = m.memory("train")
    free = {s.name for s in r.activations.expr.free_symbols}
    assert {"batch", "seq_len"} <= free
    assert not isinstance(r.activations.evaluate(), int)
    assert isinstance(r.activations.evaluate(batch=2, seq_len=128), int)
    # weights do not depend on the batch
    assert {"batch", "seq_len"}.isdisjoint(s.name for s in r.weights.expr.free_symbols)


def test_components_that_do_not_apply_are_zero() -> None:
    m = symmem.load("gpt2")
    train = m.memory("train")
    infer = m.memory("infer")
    assert train.kv_cache.evaluate() == 0
    assert (
        infer.gradients.evaluate()
        == infer.optimizer.evaluate()
        == infer.activations.evaluate()
        == 0
    )
    assert infer.kv_cache.evaluate() > 0


def test_overhead_default_and_cpu() -> None:
    m = symmem.load("gpt2")
    assert m.memory().overhead.evaluate() == DEFAULT_CUDA_OVERHEAD == 2**30
    assert m.memory(device="cpu").overhead.evaluate() == 0
    assert m.memory(overhead=123).overhead.evaluate() == 123


def test_json_document() -> None:
    doc = symmem.load("gpt2").memory("infer", precision="bf16").to_json()
    keys = {
        "weights",
        "gradients",
        "optimizer",
        "activations",
        "transient",
        "kv_cache",
        "overhead",
        "total",
    }
    assert doc["mode"] == "infer"
    assert set(doc["bytes"]) == keys and set(doc["formulas"]) == keys
    assert doc["bytes"]["total"] == sum(doc["bytes"][k] for k in keys - {"total"})
    assert all(isinstance(v, str) for v in doc["formulas"].values())


def test_json_fractional_bytes_are_exact_strings() -> None:
    """3 bf16 gradients (6 bytes) over ZeRO-2 with dp = 4: 6/4 = 3/2 bytes per GPU, shown exactly
    (docs/memory.md), never rounded; whole counts stay ints (weights: 3 x 2 bytes, replicated)."""
    doc = (
        symmem.parse("model m(input = [batch, 1]) { param w(3) }")
        .memory("train", precision="mixed", zero=2, dp=4, overhead=0)
        .to_json()
    )
    assert doc["bytes"]["gradients"] == "3/2"
    assert doc["bytes"]["weights"] == 6


# ---------------------------------------------------------------- the seed's numbers

ONE_TENSOR = """
n = 100000000
model m(input = [batch, 1]) { param w(n) }
"""


def test_seed_100m_parameters_fp32_and_fp16() -> None:
    """The seed: 100M parameters take 381.47 MiB in fp32 and 190.73 MiB in fp16
    (10^8 x 4 / 2^20 = 381.4697..., x 2 / 2^20 = 190.7348...)."""
    m = symmem.parse(ONE_TENSOR)
    assert round(m.memory("infer", precision="fp32").weights.evaluate() / MiB, 2) == 381.47
    assert round(m.memory("infer", precision="fp16").weights.evaluate() / MiB, 2) == 190.73


def test_seed_fp32_adam_is_four_times_the_parameters() -> None:
    """The seed: fp32 Adam training = params + grads + 2 states = 4 x parameter memory, before
    activations."""
    m = symmem.parse(ONE_TENSOR)
    r = m.memory("train", precision="fp32", optimizer="adam")
    w = r.weights.evaluate()
    assert w == 4 * 10**8
    assert w + r.gradients.evaluate() + r.optimizer.evaluate() == 4 * w


def test_seed_bert_base_training() -> None:
    """The seed: BERT-base, fp32, batch 32, seq 512: weights 440 MB, gradients 440 MB, Adam 880 MB.
    MB = 10^6 bytes: 109,482,240 parameters x 4 bytes = 437,928,960 B = 437.9 MB, which the seed
    rounds to 440; Adam's two states 875.9 MB -> 880."""
    m = symmem.load("bert-base", set_values={"batch": 32, "seq_len": 512})
    r = m.memory("train", precision="fp32", optimizer="adam")
    assert r.weights.evaluate() == r.gradients.evaluate() == 109_482_240 * 4
    assert r.optimizer.evaluate() == 109_482_240 * 8
    assert round(r.weights.evaluate() / 1e6, -1) == 440
    assert round(r.optimizer.evaluate() / 1e6, -1) == 880
    assert r.activations.evaluate() > r.weights.evaluate()


# ---------------------------------------------------------------- inference


def _per_token(name: str, **options: Any) -> int:
    m = symmem.load(name, set_values={"batch": 1, "seq_len": 1})
    return m.memory("infer", **options).kv_cache.evaluate()


def test_llama31_8b_kv_cache_per_token() -> None:
    """32 layers x 8 kv heads x 128 head dim x 2 (k and v) x 2 bytes (bf16) = 131,072 bytes per
    token."""
    assert _per_token("llama3.1-8b", precision="bf16") == 131_072
    assert _per_token("llama3.1-8b", precision="bf16", kv_dtype="fp8") == 65_536
    assert _per_token("llama3.1-8b", precision="bf16", kv_dtype="int8") == 65_536


def test_deepseek_v3_mla_kv_cache_per_token() -> None:
    """DeepSeek-V3 caches kv_lora_rank + qk_rope_head_dim = 512 + 64 values per token and
    layer: (512 + 64) x 61 layers x 2 bytes = 70,272 bytes per token in bf16."""
    assert _per_token("deepseek-v3", precision="bf16") == 70_272


def test_kv_cache_scales_with_batch_and_context() -> None:
    m = symmem.load("llama3.1-8b", free=["batch", "seq_len"])
    kv = m.memory("infer", precision="bf16").kv_cache
    assert kv.evaluate(batch=4, seq_len=8192) == 4 * 8192 * 131_072


def test_sliding_window_caps_the_cache() -> None:
    """Mistral-7B-v0.1 (sliding window 4096): 32 layers x 8 kv heads x 128 x 2 x 2 bytes x 4096
    tokens = 536,870,912 bytes at any context >= 4096; the full context below it."""
    text = """
window = 4096
model mistral_like(input = [batch, seq_len, 4096]) {
  repeat 32 layers { attention self_attn(4096, heads = 32, kv_heads = 8, window = window) }
}
"""
    m = symmem.parse(text, free=["seq_len"])
    kv = m.memory("infer", precision="bf16").kv_cache
    assert kv.evaluate(batch=1, seq_len=32768) == 536_870_912
    assert kv.evaluate(batch=1, seq_len=2048) == 536_870_912 // 2


ONE_ATTENTION = "model m(input = [batch, seq_len, 16]) {{ attention attn(16, heads = 2{}) }}"


def test_encoder_keeps_no_kv_cache_and_returns_its_whole_output() -> None:
    """A bidirectional model (BERT: every attention causal = false) is not generated token by
    token: no KV cache, and its output is every position's, b x s x 16 x 4 bytes (fp32), where a
    causal model caches k and v (2 x b x s x 16 x 4) and computes the last position's (b x 16 x 4).
    The layer's own intermediates are the same in both (sdpa saves no mask)."""
    # fp32 said explicitly: a model that declares no dtype now infers in fp16 by default;
    # prefill_chunk=None: one forward over the whole batch, as the encoder runs (a decoder's
    # default chunk of 8192 tokens caps its working set: issue 11, docs/memory.md)
    enc = symmem.parse(ONE_ATTENTION.format(", causal = false")).memory(
        "infer", device="cpu", precision="fp32"
    )
    dec = symmem.parse(ONE_ATTENTION.format("")).memory(
        "infer", device="cpu", precision="fp32", prefill_chunk=None
    )
    b, s = enc.total.symbols["batch"], enc.total.symbols["seq_len"]
    assert enc.kv_cache.expr == 0 and any("no KV cache" in n for n in enc.notes)
    assert sympy.expand(dec.kv_cache.expr - 2 * b * s * 16 * 4) == 0
    assert (
        sympy.expand(enc.transient.expr - dec.transient.expr - (b * s * 16 * 4 - b * 16 * 4)) == 0
    )
    assert symmem.load("bert-base").memory("infer").kv_cache.evaluate() == 0


def test_kv_cache_with_tensor_parallel() -> None:
    """k / v heads split over tp ranks; with more ranks than kv heads they are replicated."""
    base = _per_token("llama3.1-8b", precision="bf16")
    assert _per_token("llama3.1-8b", precision="bf16", tp=4) == base // 4
    assert _per_token("llama3.1-8b", precision="bf16", tp=16) == base // 8


def test_inference_transient_last_position_logits() -> None:
    """Generation computes the logits of the last position only (transformers' generate:
    logits_to_keep=1): batch x vocab = 128,256 x 2 bytes; plus the largest layer's
    intermediates, Llama's gated MLP: its input (tokens x 4096), gate_proj's output (SiLU's
    input), SiLU's output, up_proj's output and their product (down_proj's input), each
    tokens x 14,336 (derivatives.yaml: silu keeps self, mul keeps both factors, linear its
    input), bf16."""
    m = symmem.load("llama3.1-8b", free=["seq_len"], set_values={"batch": 1})
    r = m.memory("infer", precision="bf16")
    for s in (1, 4096):
        assert r.transient.evaluate(seq_len=s) == 128_256 * 2 + s * (4096 + 4 * 14_336) * 2


# ---------------------------------------------------------------- fine-tuning


def test_lora_llama2_7b_trainable_parameters() -> None:
    """PEFT's print_trainable_parameters for Llama-2-7B,
    LoraConfig(r=8, target_modules=[q_proj, v_proj]):
    "trainable params: 4,194,304 || all params: 6,742,609,920"
    (= 32 layers x 2 matrices x 8 x (4096 + 4096))."""
    m = symmem.load("llama2-7b")
    r = m.memory(
        "train", precision="fp32", optimizer="adamw", lora_rank=8, lora_targets="q_proj,v_proj"
    )
    assert r.gradients.evaluate() == 4_194_304 * 4
    assert r.optimizer.evaluate() == 4_194_304 * 8
    assert r.weights.evaluate() == 6_742_609_920 * 4


def test_qlora_llama2_7b_weights() -> None:
    """QLoRA (Dettmers et al. 2023): the nn.Linear matrices of the decoder layers in nf4 with one
    fp32 absmax per 64 weights (or, double-quantized, 1 byte + 4/256 bytes per block); the
    embedding, the norms and the output head stay in bf16 (transformers keeps the output
    embedding unquantized).  Hand count for Llama-2-7B: 32 x (4 x 4096^2 + 3 x 4096 x 11008)
    = 6,476,005,376 quantized; 2 x 32000 x 4096 + 65 x 4096 = 262,410,240 in bf16; adapters
    (r = 64 on q_proj, v_proj: 32 x 2 x 64 x 8192 = 33,554,432) in fp32, as PEFT casts them
    (get_peft_model's autocast_adapter_dtype=True)."""
    m = symmem.load("llama2-7b")
    quantized, high, adapters = 6_476_005_376, 262_410_240, 33_554_432
    r = m.memory("train", precision="bf16", quant="nf4", lora_rank=64)
    assert r.weights.evaluate() == quantized // 2 + quantized // 64 * 4 + 2 * high + 4 * adapters
    r2 = m.memory("train", precision="bf16", quant="nf4", double_quant=True, lora_rank=64)
    assert (
        r2.weights.evaluate()
        == quantized // 2 + quantized // 64 + quantized // (64 * 256) * 4 + 2 * high + 4 * adapters
    )
    # frozen base: gradients and optimizer state only for the adapters (fp32 grads, fp32 Adam
    # states)
    assert r.gradients.evaluate() == 4 * adapters
    assert r.optimizer.evaluate() == 8 * adapters


def test_lora_adapters_in_16_bits() -> None:
    """lora_dtype = bf16: adapters and their gradients in bf16; with mixed precision an fp32
    master copy and fp32 states (4 + 8 bytes); with pure bf16 the states follow the adapters
    (torch.optim's zeros_like: 2 x 2 bytes)."""
    m = symmem.load("llama2-7b")
    adapters = 4_194_304  # r = 8 on q_proj, v_proj
    mixed = m.memory("train", precision="mixed", lora_rank=8, lora_dtype="bf16")
    assert mixed.gradients.evaluate() == 2 * adapters
    assert mixed.optimizer.evaluate() == 12 * adapters
    pure = m.memory("train", precision="bf16", lora_rank=8, lora_dtype="bf16")
    assert pure.optimizer.evaluate() == 4 * adapters


def test_lora_adapters_keep_their_intermediate() -> None:
    """B's backward needs A x: tokens x r per targeted matrix, in the adapter's dtype.  With
    fp32 adapters on bf16 activations (PEFT's default) each adapter also keeps its own fp32
    cast of its input (``_cast_input_dtype``) and the bf16 input itself is kept by no one (the
    base is frozen); with bf16 adapters A reads the attention's bf16 input, one tensor for q
    and v.  Per layer (T = 16 tokens, d = 4096, r = 8, q and v adapted): fp32 adapters keep
    2 T d x 4 + 2 T r x 4, bf16 adapters T d x 2 + 2 T r x 2; the difference T (6 d + 4 r)
    per layer, 32 layers (measured exact on tiny Llamas: tests/test_lora_saved.py)."""
    m = symmem.load("llama2-7b", set_values={"batch": 1, "seq_len": 16})
    kw: dict[str, Any] = {"precision": "bf16", "lora_rank": 8}
    fp32 = m.memory("train", lora_dtype="fp32", **kw).activations.evaluate()
    bf16 = m.memory("train", lora_dtype="bf16", **kw).activations.evaluate()
    assert fp32 - bf16 == 32 * 16 * (6 * 4096 + 4 * 8)


LORA_TINY = """
model m(input = [batch, 64]) {
  linear q_proj(64, 64, bias = false)
  rmsnorm norm(64)
}
"""


def test_symbolic_lora_rank_solves_for_the_largest_rank() -> None:
    """The rank as a symbol: per unit of r, q_proj's adapters A (r x 64) and B (64 x r) add
    128 parameters: fp32 weights 4 + gradients 4 + Adam's two fp32 states 8 = 16 bytes each,
    2,048 bytes, plus B's saved input A x (batch x r x 4 bytes, batch = 1): 2,052 bytes per rank.
    The symbolic result equals the integer-rank result at every rank, and solving for the rank
    with a budget of exactly the memory at r = 10 gives 10."""
    from symmem.symbols import sym

    m = symmem.parse(LORA_TINY, set_values={"batch": 1})
    opts: dict[str, Any] = {"optimizer": "adam", "device": "cpu"}
    total = m.memory("train", lora_rank=sym("lora_rank"), **opts).total
    at = {r: m.memory("train", lora_rank=r, **opts).total.evaluate() for r in (1, 10, 11)}
    assert total.evaluate(lora_rank=10) == at[10]
    assert at[10] - at[1] == 9 * 2052 and at[11] - at[10] == 2052
    result = solve(total, at[10], for_="lora_rank")
    assert (result.value, result.bytes_at_value, result.bytes_at_next) == (10, at[10], at[11])


def test_lora_rank_must_be_a_positive_integer() -> None:
    with pytest.raises(OptionError, match="lora_rank"):
        symmem.parse(LORA_TINY).memory("train", lora_rank=0)
    with pytest.raises(OptionError, match="lora_rank"):
        symmem.parse(LORA_TINY).memory("train", lora_rank=sympy.Symbol("r"))


def test_lora_unknown_target() -> None:
    with pytest.raises(OptionError, match="q_proj"):
        symmem.load("llama2-7b").memory("train", lora_rank=8, lora_targets="query")


def test_quantized_training_needs_lora() -> None:
    with pytest.raises(OptionError, match="LoRA"):
        symmem.load("llama2-7b").memory("train", quant="nf4")


# ---------------------------------------------------------------- pipeline parallel


def test_pipeline_first_stage_holds_pp_micro_batches(gpt: symmem.Model) -> None:
    """1F1B (Narayanan et al. 2021): the first stage keeps the activations of pp micro-batches,
    each of L/pp layers: as much as the whole model without pipelining (Korthikanti et al. 2022,
    Section 4.2.3); with fewer micro-batches in flight, less."""
    one = gpt.memory("train", precision="bf16", policy=PAPER_POLICY).activations.expr
    four = gpt.memory("train", precision="bf16", policy=PAPER_POLICY, pp=4).activations.expr
    assert sympy.simplify(one - four) == 0
    single = gpt.memory(
        "train", precision="bf16", policy=PAPER_POLICY, pp=4, micro_batches=1
    ).activations.expr
    assert sympy.simplify(one / 4 - single) == 0


def test_pipeline_weights_gpt2() -> None:
    """GPT-2, pp = 2, fp32: each stage holds 6 of the 12 layers (12d^2 + 13d each); the first
    stage the token and position embeddings (Vd + n_ctx d), the last ln_f and its own copy of
    the tied head (2d + Vd, Megatron-LM): the first stage is the larger."""
    m = symmem.load("gpt2")
    d, V, n_ctx = 768, 50257, 1024
    expected = 4 * (6 * (12 * d * d + 13 * d) + V * d + n_ctx * d)
    assert m.memory("train", pp=2).weights.evaluate() == expected


def test_pipeline_needs_a_repeat() -> None:
    with pytest.raises(OptionError, match="repeat"):
        symmem.parse(ONE_TENSOR).memory("train", pp=2)


# ---------------------------------------------------------------- options


@pytest.mark.parametrize(
    ("option", "value", "needle"),
    [
        ("optimizer", "adamx", "adamw"),
        ("precision", "fp64", "bf16"),
        ("kv_dtype", "int4", "int8"),
        ("quant", "int3", "nf4"),
        ("checkpointing", "some", "selective"),
        ("attention", "fast", "flash"),
        ("device", "tpu", "cuda"),
        ("zero", 4, "ZeRO"),
        ("tp", 0, "tp"),
        ("state_dtype", "fp8", "fp32"),
    ],
)
def test_invalid_options_name_the_valid_ones(option: str, value: Any, needle: str) -> None:
    m = symmem.load("gpt2")
    mode = "infer" if option in ("kv_dtype", "quant") else "train"
    with pytest.raises(OptionError, match=needle):
        m.memory(mode, **{option: value})


def test_unknown_option_name() -> None:
    with pytest.raises(OptionError, match="optimizer"):
        symmem.load("gpt2").memory("train", optimiser="adam")


def test_unknown_mode() -> None:
    with pytest.raises(OptionError, match="infer"):
        symmem.load("gpt2").memory("training")


def test_per_layer_rows() -> None:
    r = symmem.load("gpt2").memory("train")
    paths = [row.path for row in r.rows]
    assert "h.decoder.residual.attn" in paths
    # without pipeline stages or full recompute, the rows add up to the components
    m = symmem.load("gpt2")
    total_w = sum(m.quantity(row.weights).evaluate() for row in r.rows)
    assert total_w == r.weights.evaluate()


def test_dtype_classes_become_bytes() -> None:
    """A dropout and the loss, bf16: dropout's mask is 1 byte on CUDA (native_dropout's bool
    mask) and the activation dtype (2 bytes) on CPU; the loss keeps fp32 log-probabilities
    (4 bytes; the logits are upcast), int64 targets (8 bytes) and an fp32 scalar total weight."""
    m = symmem.parse("d = 16\nmodel m(input = [batch, seq_len, d]) { dropout(0.1) }")
    b, s, d = m.symbol("batch"), m.symbol("seq_len"), m.symbol("d")
    cuda = m.memory("train", precision="bf16").activations.expr
    cpu = m.memory("train", precision="bf16", device="cpu").activations.expr
    assert sympy.expand(cuda - (b * s * d * 1 + b * s * d * 4 + b * s * 8 + 4)) == 0
    assert sympy.expand(cpu - (b * s * d * 2 + b * s * d * 4 + b * s * 8 + 4)) == 0
    off = m.memory("train", precision="bf16", dropout=False).activations.expr
    assert sympy.expand(off - (b * s * d * 4 + b * s * 8 + 4)) == 0


def test_amp_keeps_fp32_weights_and_16_bit_activations() -> None:
    """torch.autocast: fp32 weights and gradients, no master copy (16 bytes per parameter with
    Adam), activations in bf16: half of the fp32 activations for a model that saves only 'act'
    tensors (a linear layer's input, no loss)."""
    m = symmem.parse("d = 64\nmodel m(input = [batch, d]) { linear l(d, d) }")
    pol32 = ActPolicy(dtype="fp32", loss="none")
    pol16 = ActPolicy(dtype="bf16", loss="none")
    fp32 = m.memory("train", precision="fp32", optimizer="adam", policy=pol32)
    amp = m.memory("train", precision="amp-bf16", optimizer="adam", policy=pol16)
    for c in ("weights", "gradients", "optimizer"):
        assert getattr(amp, c).evaluate() == getattr(fp32, c).evaluate()
    assert 2 * amp.activations.evaluate() == fp32.activations.evaluate()


@pytest.mark.parametrize(("precision", "dtype"), [("fp32", "float32"), ("bf16", "bfloat16")])
@pytest.mark.parametrize("optimizer", ["adamw", "sgd-momentum"])
def test_weights_gradients_optimizer_match_pytorch(
    precision: str, dtype: str, optimizer: str
) -> None:
    """A tiny transformers GPT2LMHeadModel (tied head) in fp32 or pure bf16, one training step:
    the bytes of its parameters, their .grad and the optimizer's state tensors (torch's scalar
    'step' per tensor excluded: 4 bytes per parameter tensor, not modelled)."""
    torch = pytest.importorskip("torch")
    transformers = pytest.importorskip("transformers")
    cfg = transformers.GPT2Config(n_embd=32, n_layer=2, n_head=2, vocab_size=100, n_positions=64)
    model = transformers.GPT2LMHeadModel(cfg).to(getattr(torch, dtype))
    params = list(model.parameters())
    opt = (
        torch.optim.AdamW(params)
        if optimizer == "adamw"
        else torch.optim.SGD(params, lr=0.1, momentum=0.9)
    )
    ids = torch.randint(0, 100, (2, 8))
    model(input_ids=ids, labels=ids).loss.backward()
    opt.step()
    weights = sum(p.numel() * p.element_size() for p in params)
    grads = sum(p.grad.numel() * p.grad.element_size() for p in params)
    states = sum(
        v.numel() * v.element_size()
        for st in opt.state.values()
        for k, v in st.items()
        if torch.is_tensor(v) and k != "step"
    )
    m = symmem.load(
        "gpt2", set_values={"d_model": 32, "n_layers": 2, "n_heads": 2, "vocab": 100, "n_ctx": 64}
    )
    r = m.memory("train", precision=precision, optimizer=optimizer)
    assert (r.weights.evaluate(), r.gradients.evaluate(), r.optimizer.evaluate()) == (
        weights,
        grads,
        states,
    )


# ---------------------------------------------------------------- any combination of options

_GPT2 = symmem.load("gpt2")


@settings(max_examples=25, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(
    precision=st.sampled_from(["fp32", "bf16", "mixed-fp16", "mixed-bf16", "amp-bf16", "fp8"]),
    optimizer=st.sampled_from(["sgd", "sgd-momentum", "adam", "adafactor", "adam8bit", "lion"]),
    checkpointing=st.sampled_from(["none", "selective", "full"]),
    attention=st.sampled_from(["eager", "sdpa", "flash"]),
    tp=st.sampled_from([1, 2, 4]),
    sp=st.booleans(),
    pp=st.sampled_from([1, 2, 3]),
    dp=st.sampled_from([1, 8]),
    zero=st.integers(0, 3),
    mode=st.sampled_from(["train", "infer"]),
)
def test_any_options_total_is_the_sum(**options: Any) -> None:
    """For any combination: every component is a non-negative number of bytes at the model's
    values, and total is exactly their sum, symbolically and evaluated."""
    mode = options.pop("mode")
    if options["tp"] == 1:
        options["sp"] = False
    r = _GPT2.memory(mode, **options)
    values = r.bytes()
    assert all(v >= 0 for v in values.values())
    assert values["total"] == sum(values[c] for c in COMPONENTS)
    assert sympy.expand(r.total.expr - sum(getattr(r, c).expr for c in COMPONENTS)) == 0
