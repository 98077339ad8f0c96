"""Weight quantization formats as data: what a quantized checkpoint stores per matrix.

Each :class:`Quant` says, for one ``nn.Linear`` weight of ``out x in`` values, the bits
of each stored value and the scales (and zero points, group indices, tensor scales) the
format adds, read from the code that writes or loads the format (each entry's
``source``).  :meth:`Quant.matrix_bytes` is the one formula; the memory model
(:mod:`symmem.memory.context`) applies it to the matrices a format replaces: every
``nn.Linear`` weight but the model's output head (and, for the formats that say so, MoE
routers).  Embedding tables, norms and biases stay in the model's 16-bit dtype, as every
format here keeps them.  docs/memory.md has the table; tests/test_quant.py checks each
entry against a hand count of the tensors the format's code allocates.

This module imports only sympy (it sits on the lowest floor with :mod:`symmem.dtypes`).
"""

from __future__ import annotations

from functools import lru_cache

import sympy

from symmem.errors import OptionError
from symmem.records import record

R = sympy.Rational
ONE = sympy.Integer(1)


@record
class Quant:
    """One weight-only quantization format.

    ``bits``: bits per stored weight value.  Scales come per group of ``group_size``
    consecutive weights of one output row (``group_size = None``: one group per output
    row), ``group_bytes`` each (scale and zero point); or, with ``block = (bo, bi)``, one
    per ``bo x bi`` tile of the matrix (edges rounded up: DeepSeek's
    ``weight_scale_inv``).  ``input_bytes`` per input feature (GPTQ's ``g_idx``) and
    ``tensor_bytes`` per matrix (a global scale, a stored shape) come on top.
    ``double_quant_group_bytes``: bytes per group with double quantization (QLoRA), or
    None when it does not apply.  ``routers``: whether the format replaces MoE routers
    (bitsandbytes replaces every ``nn.Linear`` but the head; the others keep routers).
    ``experts_only``: the format replaces only MoE expert matrices (MXFP4: gpt-oss's
    ``modules_to_not_convert`` keeps attention, routers, embeddings and head in bf16, and
    vLLM's ``Mxfp4Config`` gives every ``LinearBase`` the unquantized method and only
    ``FusedMoE`` the MXFP4 one: vllm/model_executor/layers/quantization/mxfp4.py).
    """

    name: str
    bits: int
    group_size: int | None
    group_bytes: sympy.Rational
    double_quant_group_bytes: sympy.Rational | None
    source: str
    block: tuple[int, int] | None = None
    input_bytes: sympy.Rational = sympy.Integer(0)
    tensor_bytes: sympy.Rational = sympy.Integer(0)
    routers: bool = True
    experts_only: bool = False
    #: one line for listings
    summary: str = ""
    #: under LoRA (the quantized base frozen) the format's matmul keeps its input whenever that
    #: input needs a gradient: bitsandbytes' ``MatMul8bitLt`` (LLM.int8) saves ``ctx.tensors =
    #: (CAt, subA, A)`` when ``any(ctx.needs_input_grad[:2])``
    #: (bitsandbytes/autograd/_functions.py); False for the 4-bit ``MatMul4Bit``, which saves
    #: ``(None, B)`` (bitsandbytes main; releases that saved ``(A, B)`` kept it).  Formats whose
    #: training kernels symmem does not model keep it too (an upper bound)
    keeps_input: bool = True

    @property
    def bytes_per_weight(self) -> sympy.Rational:
        return sympy.Rational(self.bits, 8)

    def matrix_bytes(
        self,
        out_f: sympy.Expr,
        in_f: sympy.Expr,
        copies: sympy.Expr = ONE,
        group_size: int | None = None,
        double_quant: bool = False,
    ) -> sympy.Expr:
        """Bytes of ``copies`` matrices of ``out_f x in_f`` weights in this format.

        ``group_size`` overrides the format's (``None``: the format's own).  Groups along a
        row are assumed to divide it (``in_f / group_size``: a fraction shows when not);
        2-D blocks round up at the edges, as DeepSeek's ``weight_scale_inv`` does.
        """
        return _matrix_bytes(self, out_f, in_f, copies, group_size, double_quant)

    def bits_per_weight(self, out_f: int, in_f: int) -> sympy.Rational:
        """Average bits per weight of one ``out_f x in_f`` matrix (for tables)."""
        return sympy.Rational(self.matrix_bytes(sympy.Integer(out_f), sympy.Integer(in_f)) * 8) / (
            out_f * in_f
        )


@lru_cache(maxsize=4096)
def _matrix_bytes(
    q: Quant,
    out_f: sympy.Expr,
    in_f: sympy.Expr,
    copies: sympy.Expr,
    group_size: int | None,
    double_quant: bool,
) -> sympy.Expr:
    """:meth:`Quant.matrix_bytes`, remembered: a model's matrices repeat their shapes, and a
    2-D block's ``ceiling`` over symbols costs sympy about a millisecond to build (DeepSeek-V3's
    fp8 blocks: 32 such calls per memory build, three builds in a cold ``solve``)."""
    per_group = q.double_quant_group_bytes if double_quant else q.group_bytes
    if per_group is None:
        raise OptionError(f"double_quant does not apply to {q.name}")
    n = out_f * in_f
    if q.block is not None and group_size is None:
        bo, bi = q.block
        groups = _ceiling(out_f / bo) * _ceiling(in_f / bi)
    else:
        g = group_size if group_size is not None else q.group_size
        groups = out_f if g is None else n / g
    per_matrix = n * q.bytes_per_weight + groups * per_group + in_f * q.input_bytes + q.tensor_bytes
    return copies * per_matrix


def _ceiling(x: sympy.Expr) -> sympy.Expr:
    """``sympy.ceiling(x)`` as sympy evaluates it for a real quotient of sizes, built without
    its evaluation: the terms known to be whole come out (``ceiling(n + d/128) = n +
    ceiling(d/128)``), the rest is held as it is.  sympy's own evaluation of a symbolic
    quotient asks the assumption system about a dozen questions (4-6 ms a call: half of a
    DeepSeek-V3 inference build went there); a number is evaluated as usual, and values put
    in later evaluate the held ceiling (tests/test_quant.py compares both ways)."""
    if x.is_Number:
        return sympy.ceiling(x)
    whole = sympy.Add(*(t for t in sympy.Add.make_args(x) if t.is_integer))
    rest = x - whole
    return whole + (sympy.ceiling(rest, evaluate=False) if rest != 0 else sympy.Integer(0))


#: every format, in the order listings show them
REGISTRY: tuple[Quant, ...] = (
    Quant(
        "int8",
        8,
        None,
        sympy.Integer(4),
        None,
        "LLM.int8() (Dettmers et al. 2022, Section 3.2, vector-wise quantization): int8 weights, "
        "one fp32 absmax scale per output row (bitsandbytes Int8Params.SCB); a group size gives "
        "one fp32 scale per group",
        summary="bitsandbytes 8-bit (load_in_8bit)",
    ),
    Quant(
        "int4",
        4,
        128,
        R(5, 2),
        None,
        "GPTQ (Frantar et al. 2023) / AWQ (Lin et al. 2024) as AutoGPTQ packs them: 4-bit "
        "weights, per group of 128 an fp16 scale (2 bytes) and a 4-bit zero point packed into "
        "int32 qzeros (0.5 byte)",
        routers=False,
        summary="4-bit groups of 128, fp16 scale + 4-bit zero (no g_idx)",
    ),
    Quant(
        "nf4",
        4,
        64,
        sympy.Integer(4),
        1 + R(4, 256),
        "QLoRA (Dettmers et al. 2023, Section 3): NormalFloat4 weights, one fp32 absmax per "
        "block of 64 (0.5 bit/parameter); double quantization stores the absmax in 8 bits with "
        "one fp32 constant per 256 blocks: 8/64 + 32/(64*256) = 0.127 bit/parameter",
        summary="bitsandbytes 4-bit (load_in_4bit; nf4 or fp4: same storage)",
        keeps_input=False,
    ),
    Quant(
        "awq",
        4,
        128,
        R(5, 2),
        None,
        "AutoAWQ WQLinear_GEMM (awq/modules/linear/gemm.py): qweight int32 [in, out/8] (4 bits "
        "a weight), qzeros int32 [in/g, out/8] (4 bits a group), scales fp16 [in/g, out] "
        "(2 bytes a group); MoE routers are in modules_to_not_convert",
        routers=False,
        summary="AutoAWQ GEMM (quant_method awq): 4 + 20/g bits",
    ),
    Quant(
        "gptq",
        4,
        128,
        R(5, 2),
        None,
        "AutoGPTQ / GPTQModel QuantLinear: qweight int32 [in/8, out], qzeros int32 "
        "[in/g, out/8], scales fp16 [in/g, out], and g_idx int32 [in] (registered always, "
        "desc_act or not: 4 bytes per input feature)",
        input_bytes=sympy.Integer(4),
        routers=False,
        summary="GPTQ 4-bit (quant_method gptq): as awq + g_idx",
    ),
    Quant(
        "gptq-int8",
        8,
        128,
        sympy.Integer(3),
        None,
        "AutoGPTQ / GPTQModel QuantLinear with bits = 8: int8 values packed in int32 qweight, "
        "per group an fp16 scale and an 8-bit zero point in qzeros (3 bytes), g_idx int32 [in]",
        input_bytes=sympy.Integer(4),
        routers=False,
        summary="GPTQ 8-bit (quant_method gptq, bits 8)",
    ),
    Quant(
        "w4a16",
        4,
        128,
        sympy.Integer(2),
        None,
        "compressed-tensors pack-quantized (llm-compressor W4A16, symmetric): weight_packed "
        "int32 [out, in/8], weight_scale [out, in/g] in the model's 16-bit dtype "
        "(initialize.py: scale_dtype = module.weight.dtype), no zero point, weight_shape int64 "
        "[2] (16 bytes a matrix)",
        tensor_bytes=sympy.Integer(16),
        routers=False,
        summary="compressed-tensors W4A16 (pack-quantized, symmetric)",
    ),
    Quant(
        "int8-channel",
        8,
        None,
        sympy.Integer(2),
        None,
        "compressed-tensors int-quantized W8A8 (llm-compressor): int8 weight, weight_scale "
        "[out, 1] in the model's 16-bit dtype (channel strategy)",
        routers=False,
        summary="compressed-tensors W8A8 int8, one 16-bit scale per output channel",
    ),
    Quant(
        "fp8-channel",
        8,
        None,
        sympy.Integer(2),
        None,
        "compressed-tensors float-quantized FP8 / FP8_DYNAMIC (llm-compressor): float8_e4m3fn "
        "weight, weight_scale [out, 1] in the model's 16-bit dtype (channel strategy); the "
        "dynamic activation scales are not stored",
        routers=False,
        summary="compressed-tensors FP8 (dynamic), one 16-bit scale per output channel",
    ),
    Quant(
        "int8-channel-fp32",
        8,
        None,
        sympy.Integer(4),
        None,
        "compressed-tensors W8A8 int8 as vLLM loads it (model_executor/layers/quantization/"
        "compressed_tensors/schemes/compressed_tensors_w8a8_int8.py: ChannelQuantScaleParameter "
        "of dtype float32, one per output channel): the checkpoint's 16-bit scales held in fp32",
        routers=False,
        summary="W8A8 int8 as vLLM holds it: one fp32 scale per output channel",
    ),
    Quant(
        "fp8-channel-fp32",
        8,
        None,
        sympy.Integer(4),
        None,
        "compressed-tensors FP8 as vLLM loads it (compressed_tensors_w8a8_fp8.py: "
        "ChannelQuantScaleParameter of dtype float32): e4m3 weights, one fp32 scale per output "
        "channel",
        routers=False,
        summary="FP8 as vLLM holds it: one fp32 scale per output channel",
    ),
    Quant(
        "fbgemm-fp8",
        8,
        None,
        sympy.Integer(4),
        None,
        "transformers FbgemmFp8Linear (integrations/fbgemm_fp8.py): float8_e4m3fn weight, "
        "weight_scale fp32 [out, 1], input_scale_ub fp32 [1] (4 bytes a matrix)",
        tensor_bytes=sympy.Integer(4),
        routers=False,
        summary="fbgemm FP8 (quant_method fbgemm_fp8), one fp32 scale per output channel",
    ),
    Quant(
        "fp8-block",
        8,
        None,
        sympy.Integer(4),
        None,
        "DeepSeek-V3 FP8 checkpoint (config.json quantization_config: quant_method fp8, "
        "weight_block_size [128, 128]; inference/model.py Linear: weight_scale_inv fp32 "
        "[ceil(out/128), ceil(in/128)]); embeddings, output head, norms and routers stay bf16",
        block=(128, 128),
        routers=False,
        summary="FP8 with one fp32 scale per 128 x 128 block (DeepSeek-V3, quant_method fp8)",
    ),
    Quant(
        "mxfp4",
        4,
        32,
        sympy.Integer(1),
        None,
        "OCP Microscaling Formats (MX) v1.0: FP4 E2M1 values, one 8-bit E8M0 scale per block of "
        "32; gpt-oss checkpoints store *_blocks uint8 [..., in/32, 16] and *_scales uint8 "
        "[..., in/32] (transformers integrations/mxfp4.py); only the MoE experts (gpt-oss "
        "modules_to_not_convert: self_attn, router, embed_tokens, lm_head; vLLM Mxfp4Config "
        "quantizes FusedMoE only)",
        routers=False,
        experts_only=True,
        summary="MXFP4 (gpt-oss): 4-bit values, one 8-bit scale per 32",
    ),
    Quant(
        "nvfp4",
        4,
        16,
        sympy.Integer(1),
        None,
        "NVFP4 (NVIDIA TensorRT Model Optimizer; compressed-tensors nvfp4-pack-quantized): FP4 "
        "E2M1 values, one FP8 E4M3 scale per block of 16, one fp32 global scale per matrix "
        "(weight_scale_2 / weight_global_scale); a W4A4 checkpoint's fp32 input scale "
        "(4 bytes a matrix) is not counted",
        tensor_bytes=sympy.Integer(4),
        routers=False,
        summary="NVFP4: 4-bit values, one fp8 scale per 16 + an fp32 scale per matrix",
    ),
)

QUANTS: dict[str, Quant] = {q.name: q for q in REGISTRY}
#: what turns a model's declared quantization off (``--quant none``)
NO_QUANT = "none"


def quant(name: str) -> Quant:
    if name not in QUANTS:
        raise OptionError(f"unknown quantization '{name}': valid names are {', '.join(QUANTS)}")
    return QUANTS[name]
