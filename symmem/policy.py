"""The activation policy: what decides which tensors PyTorch keeps for backward.

A plain value on a low floor (it imports only :mod:`symmem.errors` and
:mod:`symmem.dtypes`), so that every layer kind can type its ``policy``
argument and read its fields directly; :mod:`symmem.activations` (the walk over
a whole graph) and :mod:`symmem.memory` pass it down.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Literal, get_args

from symmem import dtypes
from symmem.errors import OptionError

Attention = Literal["eager", "sdpa", "flash"]
Device = Literal["cuda", "cpu"]
Loss = Literal["cross_entropy", "none"]
NormStyle = Literal["torch", "hf"]

#: activation dtype names the policy accepts (from the dtype registry)
ACT_DTYPES: tuple[str, ...] = dtypes.names("activations")


@dataclass(frozen=True)
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
    ``loss_fp32``: the loss upcasts the logits to fp32 first (Hugging Face's
    ``ForCausalLMLoss``: ``logits = logits.float()``).
    ``softmax_fp32``: eager attention's softmax is computed in fp32 and cast
    back (Hugging Face Llama: ``softmax(..., dtype=torch.float32).to(dtype)``),
    so an fp32 copy of the probabilities is kept besides the cast one.
    ``norm_style``: ``"torch"`` (``torch.nn.RMSNorm``: y = x * rstd multiplied
    by the weight in fp32) or ``"hf"`` (``LlamaRMSNorm``: ``weight * y.to(dtype)``).
    ``small_buffers``: count O(b*s) / O(s^2) buffers (norm statistics,
    log-sum-exp, token ids, causal masks); Korthikanti et al. 2022 do not.
    """

    attention: Attention = "sdpa"
    device: Device = "cuda"
    dropout: bool = True
    dtype: str = "fp32"
    loss: Loss = "cross_entropy"
    loss_fp32: bool = True
    softmax_fp32: bool = False
    norm_style: NormStyle = "torch"
    small_buffers: bool = True

    def __post_init__(self) -> None:
        _choice("attention", self.attention, get_args(Attention))
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
    def huggingface(cls, **kw: object) -> ActPolicy:
        """The choices transformers' Llama-style models make (fp32 softmax, LlamaRMSNorm, fp32
        loss)."""
        base: dict[str, object] = {"softmax_fp32": True, "norm_style": "hf", "loss_fp32": True}
        base.update(kw)
        return cls(**base)  # type: ignore[arg-type]


def _choice(what: str, value: str, valid: tuple[str, ...]) -> None:
    if value not in valid:
        raise OptionError(f"{what} must be one of {', '.join(valid)}, not '{value}'")
