"""The activation policy: what decides which tensors PyTorch keeps for backward.

A plain value on a low floor (it imports only :mod:`symmem.errors` and
:mod:`symmem.dtypes`), so that every layer kind can type its ``policy``
argument and read its fields directly; :mod:`symmem.activations` (the walk over
a whole graph) and :mod:`symmem.memory` pass it down.
"""

from __future__ import annotations

from typing import Literal, get_args

from symmem import dtypes
from symmem.errors import OptionError
from symmem.records import record

Attention = Literal["eager", "sdpa", "flash"]
Device = Literal["cuda", "cpu"]
Loss = Literal["cross_entropy", "chunked_cross_entropy", "fused_linear_cross_entropy", "none"]
NormStyle = Literal["torch", "hf"]
RnnBackend = Literal["native", "onednn", "cudnn"]

#: activation dtype names the policy accepts (from the dtype registry)
ACT_DTYPES: tuple[str, ...] = dtypes.names("activations")


@record
class ActPolicy:
    """What decides which tensors PyTorch keeps for backward.

    ``attention``: the attention implementation when a layer does not name its
    own ``impl`` (the layer wins).  ``eager`` keeps the b*h*s^2 probabilities;
    ``sdpa`` / ``flash`` keep q, k, v, the output and the log-sum-exp.
    ``device``: CUDA keeps 1-byte dropout masks and fp32 layer-norm statistics;
    CPU keeps dropout noise in the activation dtype, layer-norm statistics in
    the activation dtype, and runs sdpa with dropout on the math path.
    ``dropout``: training dropout active (False: eval, or every p = 0).
    ``dtype``: the activation dtype (a name or alias from :mod:`symmem.dtypes`
    allowed for activations, stored by its short name); in bf16/fp16 some ops
    keep fp32 copies.
    ``loss``: the training loss on the model's output (cross-entropy over the
    last dimension, as an LM head's logits), or ``"none"``.
    ``chunked_cross_entropy``: torchtune's ``CEWithChunkedOutputLoss`` (the output projection
    and the loss run per chunk of positions); ``fused_linear_cross_entropy``: Liger-Kernel's
    ``LigerFusedLinearCrossEntropyLoss`` (the output head and the loss fused, chunk by chunk,
    so that the full logits never exist).  ``loss_chunks``: their number of chunks (None:
    torchtune's default 8; Liger's own chunk size rule).
    ``loss_fp32``: the loss upcasts the logits to fp32 first (Hugging Face's
    ``ForCausalLMLoss``: ``logits = logits.float()``).
    ``softmax_fp32``: eager attention's softmax is computed in fp32 and cast
    back (Hugging Face Llama: ``softmax(..., dtype=torch.float32).to(dtype)``),
    so an fp32 copy of the probabilities is kept besides the cast one.
    ``norm_style``: ``"torch"`` (``torch.nn.RMSNorm``: y = x * rstd multiplied
    by the weight in fp32) or ``"hf"`` (``LlamaRMSNorm``: ``weight * y.to(dtype)``).
    ``small_buffers``: count O(b*s) / O(s^2) buffers (norm statistics,
    log-sum-exp, token ids, causal masks); Korthikanti et al. 2022 do not.
    ``causal_mask``: eager causal attention keeps a boolean s x s mask
    (``masked_fill``, symmem's and PyTorch's eager path); False where the mask is
    added as floats (transformers: add keeps nothing) or fused into the softmax
    kernel (Megatron-LM's ``scaled_upper_triang_masked_softmax``).
    ``position_ids``: learned absolute positions are looked up by an int64 id
    tensor made per forward (transformers' GPT-2 ``wpe(position_ids)``), which the
    embedding backward keeps; False where the table is sliced (nothing kept).
    ``rnn``: the recurrent kernel: ``native`` (ATen's cell loop), ``onednn`` (CPU
    LSTM's fused kernel, PyTorch's default on the CPU) or ``cudnn`` (CUDA).
    ``impl``: the name of the implementation these rules were taken from
    (:data:`IMPLS`), for reports.
    """

    attention: Attention = "sdpa"
    device: Device = "cuda"
    dropout: bool = True
    dtype: str = "fp32"
    loss: Loss = "cross_entropy"
    loss_chunks: int | None = None
    loss_fp32: bool = True
    softmax_fp32: bool = False
    norm_style: NormStyle = "torch"
    small_buffers: bool = True
    causal_mask: bool = True
    position_ids: bool = False
    rnn: RnnBackend = "native"
    impl: str = "torch"

    def __post_init__(self) -> None:
        _choice("attention", self.attention, get_args(Attention))
        _choice("rnn", self.rnn, get_args(RnnBackend))
        _choice("impl", self.impl, tuple(IMPLS))
        _choice("device", self.device, get_args(Device))
        _choice("loss", self.loss, get_args(Loss))
        _choice("norm_style", self.norm_style, get_args(NormStyle))
        act = dtypes.get(self.dtype, "activations", "activation dtype")
        object.__setattr__(self, "dtype", act.name)  # "float32" -> "fp32"

    @property
    def low_precision(self) -> bool:
        """Activations narrower than fp32 (bf16, fp16): norms and the loss keep fp32 copies."""
        return bool(dtypes.nbytes(self.dtype) < dtypes.nbytes("fp32"))

    @classmethod
    def for_impl(cls, impl: str, **kw: object) -> ActPolicy:
        """The rules of the implementation ``impl`` (:data:`IMPLS`), with ``kw`` on top."""
        if impl not in IMPLS:
            raise OptionError(f"impl must be one of {', '.join(IMPLS)}, not '{impl}'")
        base: dict[str, object] = {**IMPLS[impl].rules, "impl": impl}
        base.update(kw)
        return cls(**base)  # type: ignore[arg-type]

    @classmethod
    def huggingface(cls, **kw: object) -> ActPolicy:
        """The choices transformers makes (``for_impl("transformers")``)."""
        return cls.for_impl("transformers", **kw)


@record
class Impl:
    """An implementation of the layer kinds: which of :class:`ActPolicy`'s rules it follows.

    ``rules``: the policy fields it sets (the others keep their defaults, which are
    PyTorch's); ``sources``: for each field, where the rule is read in the
    implementation's code (docs/activations.md lists them)."""

    name: str
    summary: str
    rules: dict[str, object]
    sources: dict[str, str]


#: The implementations a model can be built with (``--impl``; a .mem header's ``impl = ...``).
IMPLS: dict[str, Impl] = {
    "torch": Impl(
        "torch",
        "plain PyTorch: torch.nn modules and functional ops, as symmem's own to_torch builds them",
        {"softmax_fp32": False, "norm_style": "torch", "causal_mask": True, "position_ids": False},
        {
            "softmax_fp32": "torch.softmax in the activation dtype",
            "norm_style": "torch.nn.RMSNorm (torch/nn/modules/normalization.py): "
            "weight * y in fp32",
            "causal_mask": "eager: scores.masked_fill(bool mask) keeps the mask",
            "position_ids": "learned positions added by slicing the table: nothing kept",
            "loss_fp32": "torch.autocast runs log_softmax / nll_loss in fp32 (autocast op list)",
        },
    ),
    "transformers": Impl(
        "transformers",
        "Hugging Face transformers' modeling_<family>.py",
        {
            "softmax_fp32": True,
            "norm_style": "hf",
            "loss_fp32": True,
            "causal_mask": False,
            "position_ids": True,
        },
        {
            "softmax_fp32": "models/llama/modeling_llama.py eager_attention_forward: "
            "softmax(..., dtype=torch.float32).to(query.dtype) (Llama, Mistral, Mixtral, Qwen2/3, "
            "Gemma, Phi-3, DeepSeek-V3, GPT-NeoX, OPT); GPT-2, BERT, T5 and Falcon keep the "
            "activation dtype (their attention layers say softmax_fp32 = false)",
            "norm_style": "LlamaRMSNorm.forward: weight * hidden_states.to(input_dtype)",
            "loss_fp32": "loss/loss_utils.py ForCausalLMLoss: logits = logits.float()",
            "causal_mask": "masking_utils.create_causal_mask: an additive float mask "
            "(attn_weights + attention_mask keeps nothing)",
            "position_ids": "GPT2Model.forward: position_ids = cache_position.unsqueeze(0); "
            "wpe(position_ids) keeps the ids",
        },
    ),
    "megatron": Impl(
        "megatron",
        "NVIDIA Megatron-LM (megatron/core/transformer), as Korthikanti et al. 2022 count it",
        {
            "softmax_fp32": False,
            "norm_style": "torch",
            "loss_fp32": True,
            "causal_mask": False,
        },
        {
            "softmax_fp32": "fusions/fused_softmax.py FusedScaleMaskSoftmax: fp32 inside the "
            "kernel, result stored in 16 bits (attention_softmax_in_fp32 off by default)",
            "loss_fp32": "tensor_parallel/cross_entropy.py vocab_parallel_cross_entropy on "
            "logits.float() (fp16_lm_cross_entropy off by default)",
            "causal_mask": "scaled_upper_triang_masked_softmax: the causal mask is in the kernel",
            "norm_style": "Megatron's models use LayerNorm (Apex FusedLayerNorm / TE); its "
            "RMSNorm (TE) keeps the torch rule's tensors, not measured here",
        },
    ),
}


def _choice(what: str, value: str, valid: tuple[str, ...]) -> None:
    if value not in valid:
        raise OptionError(f"{what} must be one of {', '.join(valid)}, not '{value}'")
