"""The PyTorch modules of issue 12: per-dimension conv / pool arguments, padding = same,
transposed convolutions, group / instance / multi-dimension layer norm, lstm proj_size,
prelu, bilinear, embedding_bag, relu in place.

Parameters and saved bytes are held equal to torch for every example by
tests/layers/test_examples.py; here: counts derived by hand, output sizes swept against
torch, the symbolic forms, and each user error its own case."""

from __future__ import annotations

import itertools

import pytest
import sympy

import symmem
from symmem.activations import ActPolicy, entries_bytes, saved_tensors
from symmem.errors import SemanticError, ShapeError


def one(text: str, input_shape: str) -> symmem.Model:
    return symmem.parse(f"model m(input = {input_shape}) {{\n{text}\n}}\n")


def count(text: str, input_shape: str) -> int:
    return int(one(text, input_shape).params().total.evaluate())


def out_shape(text: str, input_shape: str) -> tuple[int, ...]:
    m = one(text, input_shape)
    return tuple(int(sympy.sympify(d).xreplace(m.values)) for d in m.graph.root.out_shape)


def saved_fp32(text: str, input_shape: str) -> int:
    m = one(text, input_shape)
    policy = ActPolicy(device="cpu", dtype="fp32", loss="none")
    return int(
        sympy.sympify(entries_bytes(saved_tensors(m.graph, policy), policy)).xreplace(m.values)
    )


# ------------------------------------------------------------ counts by hand


def test_counts_by_hand() -> None:
    # nn.Conv2d weight (out, in/groups, kH, kW) + bias
    assert count("conv2d(3, 4, [3, 5])", "[1, 3, 9, 9]") == 4 * 3 * 3 * 5 + 4
    # nn.ConvTranspose2d weight (in, out/groups, kH, kW) + bias
    assert count("conv_transpose2d(4, 6, [3, 2], groups = 2)", "[1, 4, 5, 5]") == 4 * 3 * 6 + 6
    # GroupNorm / InstanceNorm(affine): 2C; running statistics are buffers, not parameters
    assert count("groupnorm(2, 4)", "[1, 4, 3]") == 8
    assert count("instancenorm2d(4, track_running_stats = true)", "[1, 4, 3, 3]") == 0
    m = one("instancenorm2d(4, affine = true, track_running_stats = true)", "[1, 4, 3, 3]")
    assert m.params(include_buffers=True).total.evaluate() == 8 + 2 * 4 + 1
    # LayerNorm([5, 6]): 30 weights + 30 biases
    assert count("layernorm([5, 6])", "[2, 4, 5, 6]") == 60
    # LSTM proj_size p: 4h n + 4h p + 2 * 4h + p h per layer and direction; later layers
    # read p * dirs
    h, p, n = 12, 5, 16
    layer0 = 4 * h * n + 4 * h * p + 8 * h + p * h
    layer1 = 4 * h * (2 * p) + 4 * h * p + 8 * h + p * h
    assert count(
        f"lstm({n}, {h}, num_layers = 2, bidirectional = true, proj_size = {p})", "[2, 3, 16]"
    ) == 2 * (layer0 + layer1)
    assert count("prelu", "[2, 3]") == 1 and count("prelu(3)", "[2, 3, 4]") == 3
    assert count("bilinear(5, 5, 3)", "[2, 5]") == 3 * 5 * 5 + 3
    assert count("embedding_bag(100, 16, mode = max)", "[3, 4]") == 1600


def test_saved_by_hand() -> None:
    # same, kernel [4, 3], dilation [1, 2]: totals 3 (odd: one more row) and 4 (even)
    assert saved_fp32(
        "conv2d(3, 4, [4, 3], padding = same, dilation = [1, 2])", "[2, 3, 9, 10]"
    ) == (4 * 2 * 3 * 10 * 10)
    assert saved_fp32("conv2d(3, 4, [3, 5], padding = same)", "[2, 3, 9, 10]") == 4 * 2 * 3 * 9 * 10
    # groupnorm: input + mean and rstd per (sample, group)
    assert saved_fp32("groupnorm(2, 4)", "[2, 4, 5, 6]") == 4 * (240 + 2 * 4)
    # instancenorm, affine and tracked: input + 5 tensors of batch * C
    assert saved_fp32(
        "instancenorm1d(4, affine = true, track_running_stats = true)", "[2, 4, 7]"
    ) == 4 * (56 + 5 * 8)
    # embedding_bag max, 3 bags of 4: ids 12, offsets 3, bag_size 3, offset2bag 13, argmax 3*16
    assert saved_fp32("embedding_bag(100, 16, mode = max)", "[3, 4]") == 8 * (12 + 3 + 3 + 13 + 48)
    # relu in place keeps what relu keeps: linear's input and relu's result
    assert saved_fp32("linear(16, 16); relu(inplace = true)", "[2, 8, 16]") == saved_fp32(
        "linear(16, 16); relu", "[2, 8, 16]"
    )


# ------------------------------------------------------------ sizes swept against torch


def test_per_dimension_sizes_against_torch() -> None:
    torch = pytest.importorskip("torch")
    for (kh, kw), (sh, sw), (ph, pw), (dh, dw) in itertools.product(
        [(3, 5), (1, 2)], [(1, 2), (3, 1)], [(1, 0), (0, 1)], [(1, 2), (2, 1)]
    ):
        args = f"[{kh}, {kw}], stride = [{sh}, {sw}], padding = [{ph}, {pw}]"
        conv = f"conv2d(2, 3, {args}, dilation = [{dh}, {dw}])"
        got = out_shape(conv, "[1, 2, 13, 14]")
        ref = torch.nn.Conv2d(2, 3, (kh, kw), (sh, sw), (ph, pw), (dh, dw))(
            torch.zeros(1, 2, 13, 14)
        )
        assert got == tuple(ref.shape), conv
        if 2 * ph <= kh and 2 * pw <= kw:
            pool = f"maxpool2d({args}, dilation = [{dh}, {dw}], ceil_mode = true)"
            ref = torch.nn.MaxPool2d((kh, kw), (sh, sw), (ph, pw), (dh, dw), ceil_mode=True)(
                torch.zeros(1, 2, 13, 14)
            )
            assert out_shape(pool, "[1, 2, 13, 14]") == tuple(ref.shape), pool


def test_conv_transpose_sizes_against_torch() -> None:
    torch = pytest.importorskip("torch")
    for k, s, p, op, d in itertools.product([1, 3], [1, 2, 3], [0, 1], [0, 1], [1, 2]):
        if op >= max(s, d):
            continue
        layer = f"conv_transpose1d(2, 4, {k}, stride = {s}, padding = {p}, output_padding = {op}"
        layer += f", dilation = {d})"
        ref = torch.nn.ConvTranspose1d(2, 4, k, s, p, op, dilation=d)(torch.zeros(1, 2, 6))
        if ref.shape[-1] > 0:
            assert out_shape(layer, "[1, 2, 6]") == tuple(ref.shape), layer


def test_same_padding_keeps_the_size_symbolically() -> None:
    m = symmem.parse(
        "b, c, h, w\nmodel m(input = [b, c, h, w]) { conv2d(c, 8, [4, 3], padding = same) }\n"
    )
    b, c, h, w = (m.symbols[n] for n in "bchw")
    assert tuple(m.graph.root.out_shape) == (b, 8, h, w)


# ------------------------------------------------------------ user errors


def test_list_of_the_wrong_length() -> None:
    with pytest.raises(SemanticError, match="stride has 3 values, but the layer has 2"):
        one("conv2d(3, 4, 3, stride = [1, 2, 3])", "[1, 3, 9, 9]")


def test_list_item_not_positive() -> None:
    with pytest.raises(SemanticError, match=r"kernel_size\[1\] must be positive"):
        one("conv2d(3, 4, [3, 0])", "[1, 3, 9, 9]")


def test_same_with_a_stride() -> None:
    with pytest.raises(SemanticError, match="padding = same needs stride 1"):
        one("conv2d(3, 4, 3, stride = [1, 2], padding = same)", "[1, 3, 9, 9]")


def test_padding_word_misspelt() -> None:
    with pytest.raises(SemanticError, match="padding must be one of same, valid"):
        one("conv2d(3, 4, 3, padding = sme)", "[1, 3, 9, 9]")


def test_pool_padding_over_half_the_kernel_in_one_dimension() -> None:
    with pytest.raises(SemanticError, match="padding = 2 is more than half of kernel_size = 2"):
        one("maxpool2d([3, 2], padding = [1, 2])", "[1, 3, 9, 9]")


def test_output_padding_too_large() -> None:
    with pytest.raises(SemanticError, match="output_padding = 2 must be smaller than"):
        one("conv_transpose1d(2, 4, 3, stride = 2, output_padding = 2)", "[1, 2, 6]")


def test_groups_must_divide_channels() -> None:
    with pytest.raises(SemanticError, match="num_groups = 3 does not divide num_channels = 4"):
        one("groupnorm(3, 4)", "[1, 4, 5]")


def test_layernorm_trailing_dimensions_differ() -> None:
    with pytest.raises(ShapeError, match=r"expects an input \[\.\.\., 5, 6\]"):
        one("layernorm([5, 6])", "[2, 4, 6, 5]")


def test_instancenorm_rank() -> None:
    with pytest.raises(ShapeError, match=r"expects an input \[batch, C, H, W\]"):
        one("instancenorm2d(4)", "[2, 4, 5]")


def test_proj_size_not_below_hidden() -> None:
    with pytest.raises(SemanticError, match="proj_size = 12 must be smaller than hidden_size"):
        one("lstm(16, 12, proj_size = 12)", "[2, 3, 16]")


def test_proj_size_on_a_gru() -> None:
    with pytest.raises(SemanticError, match="proj_size applies to lstm only"):
        one("gru(16, 12, proj_size = 4)", "[2, 3, 16]")


def test_prelu_slopes_and_channels_differ() -> None:
    with pytest.raises(ShapeError, match="num_parameters = 4 slopes"):
        one("prelu(4)", "[2, 3, 5]")


def test_bilinear_second_width_differs() -> None:
    with pytest.raises(ShapeError, match="in2_features = 6 must equal in1_features = 5"):
        one("bilinear(5, 6, 3)", "[2, 5]")


def test_embedding_bag_needs_bags() -> None:
    with pytest.raises(ShapeError, match=r"expects token ids \[batch, bag\]"):
        one("embedding_bag(10, 4)", "[2, 3, 4]")


def test_per_dimension_list_through_a_block_parameter() -> None:
    m = symmem.parse(
        "block c(k) { conv2d(3, 4, k) }\nmodel m(input = [1, 3, 9, 9]) { c(k = [3, 5]) }\n"
    )
    assert m.params().total.evaluate() == 4 * 3 * 15 + 4


def test_attention_counts_by_hand() -> None:
    d = 16
    mha = 4 * d * d + 4 * d  # in_proj (3d, d) + 3d, out_proj (d, d) + d
    assert count("mha(16, 4)", "[2, 8, 16]") == mha
    # kdim 12, vdim 10: q (d, d), k (d, 12), v (d, 10), in_proj_bias 3d, out_proj
    assert count("mha(16, 4, kdim = 12, vdim = 10, memory_len = 6)", "[2, 8, 16]") == (
        d * d + d * 12 + d * 10 + 3 * d + d * d + d
    )
    assert count("mha(16, 4, add_bias_kv = true)", "[2, 8, 16]") == mha + 2 * d
    # decoder layer: two attentions, linear1 (32, d) + 32, linear2 (d, 32) + d, three norms
    f = 32
    assert count("transformer_decoder_layer(16, 4, 32, memory_len = 6)", "[2, 8, 16]") == (
        2 * mha + 2 * d * f + f + d + 3 * 2 * d
    )
    assert (
        count("transformer_decoder_layer(16, 4, 32, bias = false, memory_len = 6)", "[2, 8, 16]")
        == 8 * d * d + 2 * d * f + 3 * d
    )


def test_cross_attention_cache_does_not_grow_with_tokens() -> None:
    policy = ActPolicy(device="cpu", dtype="fp32", loss="none")
    for layer, per_token, fixed in (
        ("mha(16, 4, memory_len = 6)", 0, 2 * 6 * 16),
        ("mha(16, 4, causal = true)", 2 * 16, 0),
        ("transformer_decoder_layer(16, 4, 32, memory_len = 6)", 2 * 16, 2 * 6 * 16),
    ):
        for s in (8, 9):
            m = one(layer, f"[1, {s}, 16]")
            node = next(iter(m.graph.walk()))[0]
            assert node.layer.kv_cache(node.in_shape, policy) == per_token * s + fixed, layer


def test_kdim_without_a_memory() -> None:
    with pytest.raises(SemanticError, match="kdim / vdim other than embed_dim need a memory"):
        one("mha(16, 4, kdim = 12)", "[2, 8, 16]")


def test_causal_over_a_memory() -> None:
    with pytest.raises(SemanticError, match="causal applies to self-attention"):
        one("mha(16, 4, memory_len = 6, causal = true)", "[2, 8, 16]")


def test_decoder_layer_needs_its_memory_length() -> None:
    with pytest.raises(SemanticError, match="needs memory_len"):
        one("transformer_decoder_layer(16, 4, 32)", "[2, 8, 16]")


def test_per_dimension_decided_field_takes_its_values() -> None:
    # adaptive_avgpool2d([o, o]) at o = 1 is a mean (keeps nothing), decided on the value
    m = symmem.parse("o = 1\nmodel m(input = [2, 3, 8, 8]) { adaptive_avgpool2d([o, o]) }\n")
    node = next(iter(m.graph.walk()))[0]
    policy = ActPolicy(device="cpu", dtype="fp32", loss="none")
    assert node.layer.activations(node.in_shape, policy) != []  # o free: taken as not 1
    assert node.layer.at_values(m.values).activations(node.in_shape, policy) == []
