"""Models of several parts (``part encoder(...) { }``): an encoder-decoder is one graph whose
decoder's cross-attention reads the encoder's output, and whose KV cache is the decoder's
(self-attention: the generated tokens; cross-attention: the encoder's keys and values once),
measured against transformers' ``EncoderDecoderCache``."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import pytest

import symmem
from symmem.errors import SemanticError
from symmem.hf.importer import config_text_to_mem, config_to_writer
from symmem.layers.cross_attention import CrossAttention

DATA = Path(__file__).parent / "data" / "hf"

SEQ2SEQ = """
vocab = 100; d = 16; src_len = 7
model s2s {
  part encoder(input = [batch, src_len]) {
    embedding tok(vocab, d)
    repeat 2 { residual { attention(d, heads = 4, causal = false) } }
  }
  part decoder(input = [batch, seq_len]) {
    embedding dec_tok(vocab, d, tie = tok)
    repeat 3 {
      residual { attention(d, heads = 4) }
      residual { cross_attention(d, memory = encoder, heads = 4) }
    }
    linear head(d, vocab, bias = false)
  }
}
"""


def test_parts_read_their_own_inputs_and_the_encoder_output() -> None:
    m = symmem.parse(SEQ2SEQ, set_values={"seq_len": 5, "batch": 2})
    g = m.graph
    assert g.parts == ("encoder", "decoder")
    assert g.input_shape == (g.symbols["batch"], g.symbols["src_len"])
    cross = g.layer("decoder.repeat.residual_1.cross_attention").layer
    assert isinstance(cross, CrossAttention)
    assert cross.memory == (g.symbols["batch"], g.symbols["src_len"], g.symbols["d"])
    assert not g.keeps_cache("encoder.repeat.residual.attention")
    assert g.keeps_cache("decoder.repeat.residual.attention")
    # hand count: embedding 1600 (tied, once); attention 4*16*16+4*16 = 1088 each (5 of
    # them); cross-attention the same (3); head 1600
    assert m.params().total.evaluate() == 1600 + 5 * 1088 + 3 * 1088 + 1600


def test_the_encoder_keeps_no_cache_and_the_cross_attention_keeps_the_memory_once() -> None:
    m = symmem.parse(SEQ2SEQ, set_values={"seq_len": 5, "batch": 2})
    kv = m.memory("infer", precision="fp32").kv_cache.evaluate()
    # decoder self-attention: 2 (k, v) x batch 2 x 5 tokens x 16 x 4 bytes x 3 layers;
    # cross-attention: 2 x 2 x src_len 7 x 16 x 4 x 3; the encoder: none
    assert kv == 2 * 2 * 5 * 16 * 4 * 3 + 2 * 2 * 7 * 16 * 4 * 3


def test_a_memory_that_names_no_part_is_refused() -> None:
    text = SEQ2SEQ.replace("memory = encoder", "memory = encodr")
    with pytest.raises(SemanticError, match="no part named 'encodr'") as exc:
        symmem.parse(text)
    assert exc.value.hint is not None and "encoder" in exc.value.hint


def test_a_part_inside_a_block_is_refused() -> None:
    text = "block b { part p(input = [batch, seq_len]) { linear(4, 4) } }\nmodel m { b }"
    with pytest.raises(SemanticError, match="a part is a statement of the model itself"):
        symmem.parse(text)


def test_two_parts_of_one_name_are_refused() -> None:
    text = "model m { part p(input = [2, 4]) { linear(4, 4) }\n part p { embedding(9, 4) } }"
    with pytest.raises(SemanticError, match="two parts are named 'p'"):
        symmem.parse(text)


def _shrunk(stem: str) -> dict[str, Any]:
    cfg = json.loads((DATA / f"{stem}.json").read_text())
    cfg = {k: v for k, v in cfg.items() if not k.startswith("_")}
    if cfg["model_type"] == "t5":
        cfg.update(d_model=64, d_kv=16, d_ff=96, num_layers=2, num_decoder_layers=3)
    elif cfg["model_type"] == "whisper":  # 8 mel bins, 16 frames: 8 audio tokens
        cfg.update(d_model=64, encoder_layers=2, decoder_layers=3, encoder_ffn_dim=96)
        cfg.update(decoder_ffn_dim=96, encoder_attention_heads=4, decoder_attention_heads=4)
        cfg.update(num_mel_bins=8, max_source_positions=8, max_target_positions=16)
        cfg.update(pad_token_id=1, bos_token_id=0, eos_token_id=2, decoder_start_token_id=2)
    else:  # bart, mbart: 4 heads of 16
        cfg.update(d_model=64, encoder_layers=2, decoder_layers=3, encoder_ffn_dim=96)
        cfg.update(decoder_ffn_dim=96, encoder_attention_heads=4, decoder_attention_heads=4)
    cfg["vocab_size"] = 128
    return cfg


@pytest.mark.parametrize("stem", ["t5-small", "bart-base", "mbart-large-cc25", "whisper-tiny"])
def test_cache_equals_transformers_encoder_decoder_cache(stem: str) -> None:
    """transformers' T5 / BART / mBART return an ``EncoderDecoderCache``: a self-attention
    cache of the decoder's tokens and a cross-attention cache of the encoder's length,
    nothing for the encoder.  Measured after one forward pass of 7 encoder and 5 decoder
    tokens, batch 2."""
    torch = pytest.importorskip("torch")
    transformers = pytest.importorskip("transformers")
    from transformers import AutoConfig

    transformers.logging.set_verbosity_error()
    cfg = _shrunk(stem)
    torch.manual_seed(0)
    cls = config_to_writer(dict(cfg), "config.json").hf_class
    model = getattr(transformers, cls)(AutoConfig.for_model(**cfg)).eval()
    whisper = cfg["model_type"] == "whisper"
    src = 8 if whisper else 7  # encoder tokens (Whisper: 16 frames, halved by conv2)
    inputs = (
        {"input_features": torch.randn(2, 8, 16)}
        if whisper
        else {"input_ids": torch.randint(0, 128, (2, src))}
    )
    with torch.no_grad():
        out = model(**inputs, decoder_input_ids=torch.randint(0, 128, (2, 5)), use_cache=True)
    cache = out.past_key_values
    assert type(cache).__name__ == "EncoderDecoderCache"

    def nbytes(c: Any) -> int:
        return sum(t.numel() * t.element_size() for ly in c.layers for t in (ly.keys, ly.values))

    measured = nbytes(cache.self_attention_cache) + nbytes(cache.cross_attention_cache)
    text = config_text_to_mem(json.dumps(cfg), "config.json")
    given = {"seq_len": 5, "batch": 2} | ({} if whisper else {"src_len": src})
    m = symmem.parse(text, set_values=given)
    assert m.memory("infer", precision="fp32").kv_cache.evaluate() == measured
    # and apart: the cross-attention's share is the encoder length's
    longer = {"max_source_positions": 10} if whisper else {"src_len": src + 2}
    m_long = symmem.parse(text, set_values=given | longer)
    grown = m_long.memory("infer", precision="fp32").kv_cache.evaluate() - measured
    assert grown == nbytes(cache.cross_attention_cache) * 2 // src


def test_params_reports_each_part_and_the_total() -> None:
    m = symmem.parse(SEQ2SEQ)
    parts = dict((name, q.evaluate()) for name, q in m.params().parts)
    # the tied decoder table counts once, in the encoder that owns it
    assert parts == {"encoder": 1600 + 2 * 1088, "decoder": 6 * 1088 + 1600}
    assert sum(parts.values()) == m.params().total.evaluate()


def _llava() -> symmem.Model:
    text = config_text_to_mem((DATA / "llava-1.5-7b-hf.json").read_text(), "config.json")
    return symmem.parse(text, set_values={"seq_len": 1024, "batch": 1})


def test_llava_keeps_the_language_models_cache_only_and_its_part_alone() -> None:
    m = _llava()
    assert m.graph.parts == ("vision", "text") and m.graph.generating == "text"
    whole = m.memory("infer", precision="fp16")
    text = m.memory("infer", precision="fp16", part="text")
    # Llama-7B's cache: 2 (k, v) x 1024 tokens x 32 layers x 4096 x 2 bytes = 512 MiB,
    # the same with the vision tower and without it
    assert whole.kv_cache.evaluate() == text.kv_cache.evaluate() == 2 * 1024 * 32 * 4096 * 2
    parts = dict((name, q.evaluate()) for name, q in m.params().parts)
    assert whole.weights.evaluate() == 2 * (parts["vision"] + parts["text"])
    assert text.weights.evaluate() == 2 * parts["text"]


def test_a_part_the_model_does_not_have_is_refused() -> None:
    with pytest.raises(SemanticError, match="no such part") as exc:
        _llava().memory("infer", part="txt")
    assert exc.value.hint is not None and "text" in exc.value.hint


def test_memory_cli_takes_part(tmp_path: Path) -> None:
    from typer.testing import CliRunner

    from symmem.cli import app

    path = tmp_path / "llava.mem"
    path.write_text(config_text_to_mem((DATA / "llava-1.5-7b-hf.json").read_text(), "c.json"))
    whole = CliRunner().invoke(app, ["memory", str(path), "--mode", "infer"])
    text = CliRunner().invoke(app, ["memory", str(path), "--mode", "infer", "--part", "text"])
    assert whole.exit_code == 0 and text.exit_code == 0, text.output
    assert "part" in text.output and whole.output != text.output
    bad = CliRunner().invoke(app, ["memory", str(path), "--part", "nope"])
    assert bad.exit_code == 1 and "no such part" in bad.output


@pytest.mark.parametrize(
    "stem",
    [
        "qwen2-vl-2b-instruct",
        "qwen2.5-vl-3b-instruct",
        "gemma-3-4b-it",
        "llama-4-scout-17b-16e-instruct",
    ],
)
def test_vision_language_models_cache_only_their_language_model(stem: str) -> None:
    text = config_text_to_mem((DATA / f"{stem}.json").read_text(), "config.json")
    m = symmem.parse(text, set_values={"seq_len": 1024, "batch": 1})
    assert m.graph.parts == ("vision", "text") and m.graph.generating == "text"
    whole = m.memory("infer", precision="bf16")
    alone = m.memory("infer", precision="bf16", part="text")
    assert whole.kv_cache.evaluate() == alone.kv_cache.evaluate() > 0
    assert whole.weights.evaluate() > alone.weights.evaluate()


@pytest.mark.parametrize(
    ("stem", "attn"), [("bart-base", "eager"), ("bart-base", "sdpa"), ("t5-small", "eager")]
)
def test_the_encoder_output_is_saved_once_for_every_cross_attention(stem: str, attn: str) -> None:
    """Each cross-attention layer's k/v projections save the encoder output, one storage in
    PyTorch.  Measured with saved_tensors_hooks (storages deduplicated by data pointer,
    parameters excluded) on shrunk BART / T5 (d_model 32, 2 encoder layers, batch 2, 7
    encoder and 5 decoder tokens, no dropout) at 1 and 3 decoder layers: the two layers
    added save exactly what the formula adds (counting the encoder output per layer would
    add 2 x 2 x 7 x 32 x 4 = 3,584 bytes more)."""
    torch = pytest.importorskip("torch")
    transformers = pytest.importorskip("transformers")
    from transformers import AutoConfig

    from symmem.activations import ActPolicy, entries_bytes, saved_tensors
    from symmem.check import measure_saved

    transformers.logging.set_verbosity_error()
    b, src_len, tgt_len = 2, 7, 5
    measured, formula = [], []
    for layers in (1, 3):
        cfg = json.loads((DATA / f"{stem}.json").read_text())
        cfg = {k: v for k, v in cfg.items() if not k.startswith("_")}
        if cfg["model_type"] == "t5":
            cfg.update(d_model=32, d_kv=8, d_ff=48, num_layers=2, num_decoder_layers=layers)
            cfg.update(num_heads=4, dropout_rate=0.0)
        else:
            cfg.update(d_model=32, encoder_layers=2, decoder_layers=layers, encoder_ffn_dim=48)
            cfg.update(decoder_ffn_dim=48, encoder_attention_heads=4, decoder_attention_heads=4)
            cfg.update(dropout=0.0, attention_dropout=0.0, activation_dropout=0.0)
        cfg["vocab_size"] = 64
        cls = config_to_writer(dict(cfg), "config.json").hf_class
        torch.manual_seed(0)
        config = AutoConfig.for_model(**cfg, attn_implementation=attn)
        model = getattr(transformers, cls)(config).train()
        gen = torch.Generator().manual_seed(0)
        src = torch.randint(3, 64, (b, src_len), generator=gen)
        tgt = torch.randint(3, 64, (b, tgt_len), generator=gen)
        _, seen = measure_saved(
            lambda model=model, src=src, tgt=tgt: model(
                input_ids=src, decoder_input_ids=tgt, use_cache=False
            ).logits.sum(),
            list(model.parameters()),
        )
        measured.append(sum(n for n, _ in seen.values()))
        sets = {"batch": b, "seq_len": tgt_len, "src_len": src_len}
        m = symmem.parse(config_text_to_mem(json.dumps(cfg), "config.json"), set_values=sets)
        policy = ActPolicy.huggingface(device="cpu", attention=attn, dtype="fp32")
        entries = saved_tensors(m.graph, policy)
        formula.append(int(m.quantity(entries_bytes(entries, policy)).evaluate()))
        memory = [e for e in entries if e.saved.ref == "memory"]
        assert len(memory) == 1 and memory[0].multiplicity == 1
    assert measured[1] - measured[0] == formula[1] - formula[0]


@pytest.mark.parametrize("attention", ["eager", "sdpa"])
@pytest.mark.parametrize("dtype", ["fp32", "bf16"])
def test_symmem_check_builds_a_model_of_parts(attention: str, dtype: str) -> None:
    """The PyTorch build of a model of parts takes one input per part; the decoder's
    cross-attention reads the encoder's output tensor (one for its three layers).  A training
    step on CPU: parameters exact, saved bytes exact (measured: 44,479 bytes at eager fp32),
    the step's peak within the 5 % of docs/validation.md."""
    pytest.importorskip("torch")
    from symmem.activations import ActPolicy
    from symmem.check import check

    m = symmem.parse(SEQ2SEQ, set_values={"seq_len": 5, "batch": 2})
    r = check(m, ActPolicy(device="cpu", attention=attention, dtype=dtype))  # type: ignore[arg-type]
    assert r.params_exact
    assert r.saved.formula == r.saved.measured
    assert r.accepted, r.peak


VLM = """
vocab = 50; d = 16; image = 8; patch = 4
model vlm {
  part vision(input = [batch, 3, image, image]) {
    patchify(3, 12, patch)
    repeat 2 { residual { layernorm(12); attention(12, heads = 3, causal = false) } }
    linear projector(12, d)
  }
  part text(input = [batch, seq_len]) {
    embedding tok(vocab, d)
    merge_image(memory = vision)
    repeat 2 { residual { attention(d, heads = 4) } }
    linear head(d, vocab, bias = false)
  }
}
"""


@pytest.mark.parametrize("attention", ["eager", "sdpa"])
def test_image_features_merged_into_the_text_stream_measure_exactly(attention: str) -> None:
    """A vision part's projected features written over the image tokens' rows of the text
    stream (``masked_scatter``, as transformers' vision-language models do), built and
    trained in PyTorch: parameters and saved bytes exact.  4 image tokens per image of 8 x 8
    px with 4 px patches, batch 2, 6 text positions (4 of them image tokens)."""
    pytest.importorskip("torch")
    from symmem.activations import ActPolicy
    from symmem.check import check

    m = symmem.parse(VLM, set_values={"seq_len": 6, "batch": 2})
    layer = m.graph.layer("text.merge_image").layer
    assert layer.reads_stream() == m.graph.layer("vision.projector").out_shape
    r = check(m, ActPolicy(device="cpu", attention=attention))  # type: ignore[arg-type]
    assert r.params_exact and r.saved.formula == r.saved.measured


def test_image_features_that_do_not_fit_the_text_positions_are_refused() -> None:
    # 2 images x 4 features = 8 > batch 2 x seq_len 3 = 6 positions
    with pytest.raises(SemanticError, match="8 image features do not fit in the 6 token"):
        symmem.parse(VLM, set_values={"seq_len": 3, "batch": 2})


@pytest.mark.parametrize(
    ("stem", "tokens"),
    [
        ("llava-1.5-7b-hf", 576),  # (336 / 14)^2 patches; the class token dropped
        ("qwen2-vl-2b-instruct", 256),  # 1024 patches merged 2 x 2
        ("gemma-3-4b-it", 256),  # mm_tokens_per_image
        ("llama-4-scout-17b-16e-instruct", 144),  # (336 / 14)^2 / 4 (pixel shuffle 0.5)
    ],
)
def test_vision_language_families_merge_their_image_tokens(stem: str, tokens: int) -> None:
    """Each family writes its vision part's output over the image tokens after the token
    embedding; the default seq_len holds one image's tokens besides the text tokens (512, or
    4096 where the file gives a longer context: Qwen2-VL), and a seq_len that cannot hold
    them is refused."""
    text = config_text_to_mem((DATA / f"{stem}.json").read_text(), "config.json")
    m = symmem.parse(text)
    merge = next(node for node, _ in m.graph.walk() if node.layer.kind == "merge_image")
    assert merge.path == "text.image_features"
    features = symmem.values.substitute(merge.layer.features, m.values)  # type: ignore[attr-defined]
    assert features == tokens
    assert m.values[m.graph.symbols["seq_len"]] - tokens in (512, 4096)
    with pytest.raises(SemanticError, match="do not fit"):
        symmem.parse(text, set_values={"seq_len": tokens - 1})


def test_images_per_prompt_scale_the_vision_part_and_the_image_tokens() -> None:
    """``images`` (images per prompt, 1 in the imported files) by hand on LLaVA-1.5-7B at
    batch 2, images 3: the vision part reads 2 x 3 = 6 images of 3 x 336 x 336; the default
    seq_len is 512 text tokens + 3 x 576 image tokens = 2,240; the merge writes 6 x 576 =
    3,456 features into 2 x 2,240 positions; the KV cache is 2 (k, v) x 2 x 2,240 tokens x 32
    layers x 4,096 x 2 bytes; every tensor the vision part saves has the images as its leading
    factor, so its saved bytes are 3 x those at images 1, and its weights do not change."""
    from symmem.activations import ActPolicy, entries_bytes, saved_tensors

    text = config_text_to_mem((DATA / "llava-1.5-7b-hf.json").read_text(), "config.json")
    one = symmem.parse(text, set_values={"batch": 2})
    three = symmem.parse(text, set_values={"batch": 2, "images": 3})
    vision = three.graph.only("vision")
    shape = [int(symmem.values.substitute(s, three.values)) for s in vision.input_shape]
    assert shape == [6, 3, 336, 336]
    assert three.values[three.graph.symbols["seq_len"]] == 512 + 3 * 576
    merge = three.graph.layer("text.image_features").layer
    assert symmem.values.substitute(merge.features, three.values) == 6 * 576  # type: ignore[attr-defined]
    kv = three.memory("infer", precision="fp16").kv_cache.evaluate()
    assert kv == 2 * 2 * 2240 * 32 * 4096 * 2
    policy = ActPolicy(device="cpu", dtype="fp32")

    def vision_bytes(m: symmem.Model) -> int:
        entries = [e for e in saved_tensors(m.graph, policy, m.values) if e.path[:7] == "vision."]
        return int(m.quantity(entries_bytes(entries, policy)).evaluate())

    assert vision_bytes(three) == 3 * vision_bytes(one)
    parts1 = dict((name, q.evaluate()) for name, q in one.params().parts)
    parts3 = dict((name, q.evaluate()) for name, q in three.params().parts)
    assert parts1 == parts3
    # a seq_len too short for three images' tokens is refused, naming both numbers
    with pytest.raises(SemanticError, match="3456 image features do not fit in the 3454"):
        symmem.parse(text, set_values={"batch": 2, "images": 3, "seq_len": 1727})


@pytest.mark.parametrize(
    ("stem", "tokens"),
    [
        ("qwen2-vl-2b-instruct", 256),
        ("gemma-3-4b-it", 256),
        ("llama-4-scout-17b-16e-instruct", 144),
    ],
)
def test_every_vision_language_family_takes_images_per_prompt(stem: str, tokens: int) -> None:
    """At images 4, batch 2: 8 images (tiles for Llama 4) in the vision part's first
    dimension, 4 x tokens more positions in the default seq_len than at images 0 would give,
    8 x tokens features merged."""
    text = config_text_to_mem((DATA / f"{stem}.json").read_text(), "config.json")
    m = symmem.parse(text, set_values={"batch": 2, "images": 4})
    first = symmem.values.substitute(m.graph.only("vision").input_shape[0], m.values)
    assert first == 8
    merge = next(node for node, _ in m.graph.walk() if node.layer.kind == "merge_image")
    assert symmem.values.substitute(merge.layer.features, m.values) == 8 * tokens  # type: ignore[attr-defined]
    assert m.values[m.graph.symbols["seq_len"]] - 4 * tokens in (512, 4096)


def test_llava_with_two_images_per_prompt_matches_transformers() -> None:
    """A shrunk LLaVA (CLIP tower 32 px, patch 8: 16 patches + the class token, dropped; a
    2-layer Llama of width 32) run by transformers on 2 prompts of 2 images each: pixel_values
    of batch x images = 4 images, prompts of the file's default seq_len, 512 text + 2 x 16 =
    544 tokens with 2 x 16 image placeholders.  transformers refuses a
    forward whose placeholders and image features differ in number; it runs, and the features
    it merges (its projector's output, less the class token) are the merge's 4 x 16 = 64, the
    vision part's output shape being transformers' with the class token kept."""
    torch = pytest.importorskip("torch")
    transformers = pytest.importorskip("transformers")

    cfg = json.loads((DATA / "llava-1.5-7b-hf.json").read_text())
    cfg = {k: v for k, v in cfg.items() if not k.startswith("_")}
    cfg["vision_config"].update(
        hidden_size=24,
        intermediate_size=48,
        num_attention_heads=4,
        num_hidden_layers=2,
        image_size=32,
        patch_size=8,
        projection_dim=16,
    )
    cfg["text_config"].update(
        hidden_size=32,
        intermediate_size=48,
        num_hidden_layers=2,
        num_attention_heads=4,
        max_position_embeddings=16,
        vocab_size=64,
    )
    cfg.update(vocab_size=64, image_token_index=63, pad_token_id=62)
    cfg.pop("torch_dtype")  # float32 on CPU, for the language model too
    cfg["text_config"].pop("torch_dtype")
    m = symmem.parse(
        config_text_to_mem(json.dumps(cfg), "config.json"), set_values={"batch": 2, "images": 2}
    )
    seq_len = int(m.values[m.graph.symbols["seq_len"]])
    assert seq_len == 512 + 2 * 16
    transformers.logging.set_verbosity_error()
    torch.manual_seed(0)
    ref = transformers.LlavaForConditionalGeneration(transformers.AutoConfig.for_model(**cfg))
    ids = torch.randint(0, 60, (2, seq_len))
    ids[:, 3 : 3 + 2 * 16] = 63  # two images' placeholders in each prompt
    pixels = torch.randn(2 * 2, 3, 32, 32)
    with torch.no_grad():
        feats = ref.model.get_image_features(pixel_values=pixels)
        feats = feats.pooler_output if hasattr(feats, "pooler_output") else feats
        out = ref(input_ids=ids, pixel_values=pixels)
    merged = sum(f.shape[0] * f.shape[1] if f.dim() == 3 else f.shape[0] for f in feats)
    merge = m.graph.layer("text.image_features").layer
    assert symmem.values.substitute(merge.features, m.values) == merged == 64  # type: ignore[attr-defined]
    vision = m.graph.only("vision")
    shape = tuple(int(symmem.values.substitute(s, m.values)) for s in vision.root.out_shape)
    assert shape == (4, 16 + 1, 32)
    assert tuple(out.logits.shape) == (2, seq_len, 64)
