"""Optimizers as data: how much state each keeps per parameter tensor.

The state of one tensor is ``full_states`` tensors of its own size, plus
Adafactor's factored second moment (row and column statistics of every
matrix), plus block scales for 8-bit states.  Master weights and fp32
gradient copies are not the optimizer's choice but the precision's: see
:mod:`symmem.memory`.
"""

from __future__ import annotations

import sympy

from symmem.errors import OptionError
from symmem.layers.base import Shape, prod
from symmem.records import record


@record
class Optimizer:
    name: str
    #: state tensors of the parameter's own size (Adam: exp_avg and exp_avg_sq)
    full_states: int
    #: Adafactor: the second moment of a tensor with >= 2 dimensions is factored
    #: into row and column statistics over its last two dimensions; vectors keep a full one
    factored_second_moment: bool = False
    #: dtype of the full states (None: the memory model's state_dtype, fp32 by default)
    state_dtype: str | None = None
    #: 8-bit blockwise states: one fp32 absmax per this many values of each state
    quant_block: int | None = None
    #: the absmax count per tensor is rounded up (bitsandbytes: ``blocks = n // 256``, plus one
    #: for a partial block); False: the paper's n / B
    whole_blocks: bool = False
    #: the states live in CUDA unified memory (bitsandbytes ``is_paged``): on the GPU until it
    #: runs short, when the driver pages them out to host memory
    paged: bool = False
    source: str = ""

    def state_numel(
        self, shape: Shape, copies: sympy.Expr | int = 1
    ) -> tuple[sympy.Expr, sympy.Expr]:
        """(elements kept in the state dtype, bytes of fp32 block scales) for one tensor."""
        copies = sympy.sympify(copies)
        n = copies * prod(shape)
        full = self.full_states * n
        if self.factored_second_moment:
            if len(shape) >= 2:
                full += copies * prod(shape[:-2]) * (shape[-2] + shape[-1])
            else:
                full += n
        scales = sympy.Integer(0)
        if self.quant_block is not None:
            blocks = (
                copies * sympy.ceiling(prod(shape) / self.quant_block)
                if self.whole_blocks
                else n / self.quant_block
            )
            scales = self.full_states * blocks * 4
        return full, scales


OPTIMIZERS: dict[str, Optimizer] = {
    o.name: o
    for o in (
        Optimizer("sgd", 0, source="torch.optim.SGD(momentum=0): no state"),
        Optimizer(
            "sgd-momentum",
            1,
            source="torch.optim.SGD(momentum>0): one momentum_buffer per parameter",
        ),
        Optimizer("adam", 2, source="Kingma & Ba 2015; torch.optim.Adam: exp_avg and exp_avg_sq"),
        Optimizer(
            "adamw", 2, source="Loshchilov & Hutter 2019; torch.optim.AdamW: exp_avg and exp_avg_sq"
        ),
        Optimizer(
            "adafactor",
            0,
            factored_second_moment=True,
            source="Shazeer & Stern 2018, Algorithm 4 and Section 7 (beta1 = 0: no first moment); "
            "transformers.Adafactor: exp_avg_sq_row + exp_avg_sq_col for tensors of >= 2 "
            "dims, exp_avg_sq for vectors",
        ),
        Optimizer(
            "adafactor-momentum",
            1,
            factored_second_moment=True,
            source="Adafactor with beta1 > 0 (transformers.Adafactor(beta1=0.9)): a full first "
            "moment exp_avg besides",
        ),
        Optimizer(
            "adam8bit",
            2,
            state_dtype="int8",
            quant_block=2048,
            source="Dettmers et al. 2022, 8-bit Optimizers via Block-wise Quantization, Section "
            "2: both Adam states in 8 bits, blocks of 2048 values with one fp32 absmax "
            "each (bitsandbytes Adam8bit)",
        ),
        Optimizer(
            "paged-adamw8bit",
            2,
            state_dtype="int8",
            quant_block=256,
            whole_blocks=True,
            paged=True,
            source="bitsandbytes PagedAdamW8bit (bitsandbytes.optim.PagedAdamW8bit; "
            "transformers optim='paged_adamw_8bit'): Optimizer2State.init_state keeps state1 "
            "and state2 in uint8 and, block-wise, absmax1 and absmax2 in fp32, one per "
            "ceil(n / 256) values; get_state_buffer allocates them paged (CUDA unified memory, "
            "bitsandbytes docs 'Paged optimizers')",
        ),
        Optimizer(
            "paged-adamw",
            2,
            paged=True,
            source="bitsandbytes PagedAdamW (32-bit states, paged; transformers "
            "optim='paged_adamw_32bit')",
        ),
        Optimizer(
            "lion",
            1,
            source="Chen et al. 2023, Symbolic Discovery of Optimization Algorithms: one momentum",
        ),
    )
}
OPTIMIZER_ALIASES = {
    "sgd_momentum": "sgd-momentum",
    "momentum": "sgd-momentum",
    "adam-8bit": "adam8bit",
    "adamw8bit": "adam8bit",
    "paged_adamw_8bit": "paged-adamw8bit",
    "paged_adamw_32bit": "paged-adamw",
}


def optimizer(name: str) -> Optimizer:
    key = OPTIMIZER_ALIASES.get(name, name)
    if key not in OPTIMIZERS:
        raise OptionError(
            f"unknown optimizer '{name}': valid names are "
            f"{', '.join([*OPTIMIZERS, *OPTIMIZER_ALIASES])}"
        )
    return OPTIMIZERS[key]
