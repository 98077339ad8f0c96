"""``symmem check``: build the model in PyTorch at small sizes and measure it.

Three comparisons, each formula vs measurement:

* parameters, layer by layer (must be exact);
* bytes saved for backward by one training forward pass (model + loss):
  ``torch.autograd.graph.saved_tensors_hooks`` sees every tensor autograd
  keeps; each is counted by its *whole storage* (``untyped_storage().nbytes()``,
  since a saved view keeps its storage alive: GPT-2's q, k, v are views of one
  c_attn output), once per storage (``data_ptr``), parameters excluded;
* the peak of live tensor bytes over one whole training step (forward, loss,
  backward, Adam step), in steady state (the second step: Adam's state exists,
  gradients were set to None by ``zero_grad``).  On CPU it is exact from the
  allocator: ``torch.profiler`` with ``profile_memory=True`` records every
  allocation and free of the CPU allocator with its size; their running sum
  plus the bytes live when profiling starts (parameters, buffers, optimizer
  state, inputs: counted by storage) is the live-tensor curve, whose maximum
  is the peak.  On CUDA, ``torch.cuda.max_memory_allocated``.

The formula side is :func:`symmem.activations.saved_tensors` and
:func:`symmem.activations.transient` resolved with
:func:`symmem.activations.dtype_bytes`, and for the peak
:func:`peak_formula`.  Nothing here prints; the CLI renders the report.
"""

from __future__ import annotations

import gc
import os
import sys
import warnings
from collections.abc import Iterable, Iterator, Mapping
from contextlib import AbstractContextManager, ExitStack, contextmanager, nullcontext
from dataclasses import field
from typing import TYPE_CHECKING, Any

import sympy

from symmem import dtypes
from symmem.activations import (
    ActPolicy,
    SavedEntry,
    dtype_bytes,
    entries_bytes,
    saved_tensors,
    transient,
)
from symmem.errors import OptionError, SymmemError
from symmem.graph import GroupNode
from symmem.grids import available_memory
from symmem.records import record
from symmem.units import format_bytes

if TYPE_CHECKING:
    from symmem.layers.base import Layer
    from symmem.model import Model


class MissingTorch(SymmemError):
    """torch is an optional extra."""


@record
class Comparison:
    what: str
    formula: int
    measured: int

    @property
    def rel_error(self) -> float:
        if self.measured == 0:
            return 0.0 if self.formula == 0 else float("inf")
        return (self.formula - self.measured) / self.measured


@record
class LayerParamRow:
    path: str
    kind: str
    formula: int
    measured: int

    @property
    def exact(self) -> bool:
        return self.formula == self.measured


@record
class LayerSavedRow:
    path: str
    formula: int
    measured: int


@record
class CheckReport:
    model: str
    policy: ActPolicy
    values: dict[str, int]
    params: tuple[LayerParamRow, ...]
    params_total: Comparison
    saved: Comparison
    peak: Comparison
    #: measured saved bytes by dtype, for diagnosis
    saved_by_dtype: dict[str, int] = field(default_factory=dict)
    #: saved bytes per layer path (all repeat copies together, and "loss"), formula vs measured;
    #: a tensor saved by two layers belongs to the first one that saves it
    saved_by_layer: tuple[LayerSavedRow, ...] = ()
    notes: tuple[str, ...] = ()

    @property
    def params_exact(self) -> bool:
        return (
            all(r.exact for r in self.params)
            and self.params_total.formula == self.params_total.measured
        )

    @property
    def accepted(self) -> bool:
        """The acceptance rule of docs/validation.md: parameters exact, saved bytes within
        2 %, the step's peak within 5 %."""
        return (
            self.params_exact
            and abs(self.saved.rel_error) <= SAVED_TOLERANCE
            and abs(self.peak.rel_error) <= PEAK_TOLERANCE
        )


#: acceptance (issue 3): saved activations within 2 % of measured, the step's peak within 5 %
SAVED_TOLERANCE = 0.02
PEAK_TOLERANCE = 0.05


def default_device() -> str:
    """cuda when PyTorch sees a GPU (users plan GPU memory), else cpu."""
    return "cuda" if _torch().cuda.is_available() else "cpu"


def _torch() -> Any:
    try:
        import torch
    except ImportError:  # pragma: no cover - depends on the install
        raise MissingTorch("symmem check needs PyTorch: pip install 'symmem[validate]'") from None
    return torch


def measure_saved(
    fn: Any, exclude: Any = (), where: Any = None
) -> tuple[Any, dict[int, tuple[int, str]]]:
    """Run ``fn()`` under saved_tensors_hooks; return its result and {storage ptr: (bytes, dtype)}.

    With ``where`` (a function returning the current layer's path), the value is
    (bytes, dtype, path): the layer that first saved the storage.
    """
    torch = _torch()
    skip = {t.untyped_storage().data_ptr() for t in exclude}
    seen: dict[int, Any] = {}

    def pack(t: Any) -> Any:
        st = t.untyped_storage()
        ptr = st.data_ptr()
        if ptr not in skip and ptr not in seen:
            dt = str(t.dtype).removeprefix("torch.")
            seen[ptr] = (st.nbytes(), dt) if where is None else (st.nbytes(), dt, where())
        return t

    with torch.autograd.graph.saved_tensors_hooks(pack, lambda t: t):
        out = fn()
    return out, seen


@contextmanager
def native_kernels(layers: Iterable[Layer], policy: ActPolicy) -> Iterator[tuple[str, ...]]:
    """Run the CPU's vendor kernels off where they keep memory the formulas do not model.

    Yields notes saying what was switched off (none on CUDA with no recurrent layer):

    * a recurrent layer (``Layer.recurrent``): oneDNN and cuDNN off, so that ATen's
      native cell path runs, which the formulas follow (CPU LSTM otherwise runs
      oneDNN's fused kernel, CUDA cuDNN, with opaque workspaces);
    * bf16 / fp16 on the CPU: oneDNN off.  On a CPU with native bf16 instructions
      (AVX512-BF16, AMX) half-precision ``mm`` dispatches to oneDNN, which allocates
      scratch buffers in backward (under ``MmBackward0``): not tensors of the model,
      absent on CUDA (cuBLAS keeps its workspace, part of ``overhead``), and of a
      size that depends on the CPU (measured on an AMD EPYC with AVX512-BF16, torch
      2.13: +73 KB, 5.7 %, on the peak of the tiny GPT-2 in bf16; with oneDNN off,
      within 0.04 %).  Saved tensors do not change.
    """
    torch = _torch()
    notes: list[str] = []
    with ExitStack() as stack:
        stack.enter_context(warnings.catch_warnings())
        # torch.backends.mkldnn.flags warns about TF32 on Intel GPUs on every entry and exit
        warnings.filterwarnings("ignore", message="TF32 acceleration on top of oneDNN")
        recurrent = any(layer.recurrent for layer in layers)
        half_cpu = policy.device == "cpu" and policy.low_precision
        if recurrent:
            stack.enter_context(torch.backends.cudnn.flags(enabled=False))
            notes.append(
                "recurrent layers: oneDNN and cuDNN off (ATen's native cell path, as the formulas)"
            )
        if recurrent or half_cpu:
            stack.enter_context(torch.backends.mkldnn.flags(enabled=False))
        if half_cpu:
            notes.append(
                f"{policy.dtype} on the CPU: oneDNN off (its GEMM scratch buffers are no tensors "
                "of the model)"
            )
        yield tuple(notes)


def _storage_bytes(tensors: Any) -> int:
    seen: dict[int, int] = {}
    for t in tensors:
        st = t.untyped_storage()
        seen[st.data_ptr()] = st.nbytes()
    return sum(seen.values())


@contextmanager
def _quiet_stderr() -> Iterator[None]:
    """Silence the profiler's C++ log lines (kineto writes to file descriptor 2)."""
    sys.stderr.flush()
    try:
        saved = os.dup(2)
    except OSError:  # pragma: no cover
        yield
        return
    devnull = os.open(os.devnull, os.O_WRONLY)
    os.dup2(devnull, 2)
    try:
        yield
    finally:
        os.dup2(saved, 2)
        os.close(saved)
        os.close(devnull)


def measure_peak_cpu(fn: Any) -> int:
    """Peak (above the bytes live at the start) of CPU-allocator bytes while ``fn()`` runs.

    Uses the profiler's allocation events (``profile_memory=True``): exact
    sizes of every allocation and free of the CPU allocator.
    """
    torch = _torch()
    from torch._C._profiler import _EventType
    from torch.profiler import ProfilerActivity, profile

    with _quiet_stderr(), profile(activities=[ProfilerActivity.CPU], profile_memory=True) as prof:
        fn()
    allocs: list[tuple[int, int]] = []
    stack = list(prof.profiler.kineto_results.experimental_event_tree())
    while stack:
        node = stack.pop()
        if node.tag == _EventType.Allocation:
            allocs.append((node.start_time_ns, node.extra_fields.alloc_size))
        stack.extend(node.children)
    allocs.sort()
    cur = peak = 0
    for _, size in allocs:
        cur += size
        peak = max(peak, cur)
    del torch
    return peak


def peak_formula(
    model: Model, policy: ActPolicy, entries: list[SavedEntry] | None = None
) -> sympy.Expr:
    """The step's peak as one expression: always-live bytes + Max(moments), see
    :func:`peak_moments`."""
    base, moments = peak_moments(model, policy, entries)
    return base + sympy.Max(*moments)


def peak_moments(
    model: Model, policy: ActPolicy, entries: list[SavedEntry] | None = None
) -> tuple[sympy.Expr, list[sympy.Expr]]:
    """Bytes live at the worst moment of a steady-state training step with Adam
    (weights, Adam's two moments and step counters, inputs always live):

    * right after the loss, in backward: saved activations + :func:`transient`;
    * during backward, before segment k runs its backward: the activations
      saved by segments 1..k, the gradients of the parameters of segments
      k+1.. (already computed), the logits, and the gradients flowing through
      segment k (its output's and its input's).  Segments are the layers in
      execution order, with each ``repeat`` one segment: over identical
      iterations the live bytes change linearly, so the maximum is at an end.
      This is where CNNs peak (ResNet: early feature maps still saved while
      the late layers' large gradients exist);
    * or in ``optimizer.step()``: all gradients + the logits (still held by
      the caller) + two temporaries the size of the largest parameter
      (single-tensor Adam on CPU: ``exp_avg_sq.sqrt()`` and its division by
      the bias correction).

    Weights, gradients and Adam's moments are in the activation dtype (the
    whole model is cast, as ``symmem check`` does); this is the check's model
    of a plain PyTorch step, the memory model (symmem.memory) has the general one.
    """
    graph = model.graph
    entries = saved_tensors(graph, policy) if entries is None else entries
    act_b = dtype_bytes("act", policy)
    params = model.params()
    p_total = params.total.expr
    n_tensors = sympy.Integer(0)
    largest: list[sympy.Expr] = []
    for node, mult in graph.walk_weights():
        ts = [
            t
            for t in node.layer.tensors()
            if not t.buffer and not (node.tie and t.name == "weight")
        ]
        n_tensors += mult * sum((t.copies for t in ts), sympy.Integer(0))
        largest += [sympy.Mul(*t.shape) for t in ts]
    buffers = params.buffers.expr
    weights = act_b * (p_total + buffers)
    adam = 2 * act_b * p_total + 4 * n_tensors
    in_bytes = sympy.Integer(0)
    for group in graph.input_groups():  # one input per part (token ids, an image...)
        first = group.first_layer()
        ids = first is not None and first.layer.reads_token_ids
        in_bytes += sympy.Mul(*group.in_shape) * (dtype_bytes("int64", policy) if ids else act_b)
    out_shape = graph.root.out_shape
    labels = 8 * sympy.Mul(*out_shape[:-1]) if policy.loss == "cross_entropy" else 0
    saved = entries_bytes(entries, policy)
    trans = entries_bytes(transient(graph, policy), policy)
    logits = act_b * sympy.Mul(*out_shape)
    # the optimizer moment, for each parameter size (the largest one wins; no sympy Max here)
    opt_phase = [
        act_b * p_total + logits + 2 * act_b * size
        for size in dict.fromkeys(largest or [sympy.Integer(0)])
    ]
    segs = _segments(graph.root)
    seg_a = [sympy.Integer(0)] * len(segs)
    for e in entries:
        k = _seg_index(e.path, segs)
        if k is not None:
            seg_a[k] += e.numel * dtype_bytes(e.saved.dtype, policy)
    seg_g = [sympy.Integer(0)] * len(segs)
    for node, mult in graph.walk_weights():
        k = _seg_index(node.path, segs)
        if k is None:
            continue
        seg_g[k] += (
            act_b * mult * sympy.Add(*[t.numel for t in node.layer.tensors() if not t.buffer])
        )
        if node.tie:  # a tied weight's gradient appears at the later user (this one)
            kt = _seg_index(node.tie, segs)
            target = graph.layer(node.tie)
            w = sympy.Add(*[t.numel for t in target.layer.tensors() if t.name == "weight"])
            seg_g[k] -= act_b * w  # this layer's own "weight" is the shared one...
            if kt is not None:
                seg_g[kt] -= act_b * w  # ...and the target's is counted here instead
            seg_g[k] += act_b * w
    moments = [saved + trans, *opt_phase]
    for k, seg in enumerate(segs[:-1] if len(segs) > 1 else []):
        flowing = act_b * (sympy.Mul(*seg.out_shape) + sympy.Mul(*seg.in_shape))
        moments.append(sympy.Add(*seg_a[: k + 1]) + sympy.Add(*seg_g[k + 1 :]) + logits + flowing)
    return weights + adam + in_bytes + labels, moments


def _segments(group: Any) -> list[Any]:
    """Layers in execution order, each ``repeat`` kept whole (see peak_formula)."""
    out: list[Any] = []
    for child in group.body:
        if isinstance(child, GroupNode) and child.kind != "repeat":
            out += _segments(child)
        else:
            out.append(child)
    return out


def _seg_index(path: str, segs: list[Any]) -> int | None:
    for k, seg in enumerate(segs):
        if path == seg.path or path.startswith(seg.path + "."):
            return k
    return None


def _int(model: Model, expr: sympy.Expr) -> int:
    value = model.quantity(expr).evaluate()
    if not isinstance(value, int):
        raise SymmemError(f"cannot evaluate {expr}: give every symbol a value with --set")
    return value


def available_bytes(device: str) -> int:
    """Memory this process may still use: free GPU memory for cuda; for cpu the smaller of
    MemAvailable and the address-space limit (``ulimit -v``) less what is mapped already."""
    if device == "cuda":
        free, _total = _torch().cuda.mem_get_info()
        return int(free)
    return available_memory()


#: the estimate must leave this share of the available memory free (allocator slack,
#: PyTorch's own buffers, the measuring hooks)
CHECK_MARGIN = 0.8


def step_estimate(model: Model, policy: ActPolicy) -> int | None:
    """One training step's bytes by symmem's own formula (Adam, the check's dtype, no
    framework overhead); None when it cannot be evaluated (a symbol without a value)."""
    precision = policy.dtype if policy.dtype in ("fp32", "fp16", "bf16") else "fp32"
    try:
        total = model.memory(
            "train", precision=precision, optimizer="adam", device=policy.device, overhead=0
        ).total.evaluate()
    except SymmemError:
        return None
    return total if isinstance(total, int) else None


def check_fits(model: Model, policy: ActPolicy, available: int) -> None:
    """OptionError before anything is allocated when symmem's own formula says one training
    step would not fit in the memory available (``--set`` smaller sizes to check)."""
    total = step_estimate(model, policy)
    if total is None or total <= available * CHECK_MARGIN:
        return
    raise OptionError(
        f"one training step of this model needs about {format_bytes(total)} by symmem's own "
        f"formula ({total:,} bytes), but only {format_bytes(available)} is available on "
        f"{policy.device}; shrink it with --set (fewer layers, a smaller d_model, batch or "
        "seq_len) and check that"
    )


def check(
    model: Model,
    policy: ActPolicy | None = None,
    *,
    set_values: Mapping[str, Any] | None = None,
    seed: int = 0,
    steps_before: int = 1,
    native: bool = True,
) -> CheckReport:
    """Build ``model`` (with ``set_values``) in PyTorch, run a training step, compare.

    ``policy.device`` chooses where it runs (``cpu``; ``cuda`` needs a GPU);
    ``policy.dtype`` the dtype the whole model is cast to.  ``native``: measure
    ATen's native kernels where the formulas follow them (:func:`native_kernels`;
    the report's ``notes`` say what was switched).  Raises NotImplementedError
    when a layer kind has no PyTorch equivalent.
    """
    torch = _torch()
    from symmem import torch_build

    policy = policy or ActPolicy(device="cpu")
    if policy.device == "cuda" and not torch.cuda.is_available():
        raise OptionError("--device cuda: no CUDA device here; use --device cpu")
    if policy.loss != "cross_entropy":
        raise OptionError(
            "symmem check trains with a cross-entropy loss on the output's last dimension"
        )
    model = model.with_values(set_values) if set_values else model
    values = model.values
    check_fits(model, policy, available_bytes(policy.device))
    torch.manual_seed(seed)
    dtype = getattr(torch, dtypes.torch_name(policy.dtype))
    built = torch_build.build(model.graph, values, policy.attention, policy.dropout)
    net = built.module.to(device=policy.device, dtype=dtype)
    net.train()
    x, labels = torch_build.make_inputs(model.graph, values, dtype, policy.device, seed)
    if labels is None:
        raise OptionError("symmem check needs a model output with a class dimension for its loss")

    # ---------------------------------------------------------- parameters
    rows = []
    params = model.params()
    for row in params.rows:
        mods = built.instances.get(row.path, [])
        measured = 0
        for m in mods:
            own = [p for name, p in m.named_parameters() if not (row.tied_to and name == "weight")]
            measured += sum(p.numel() for p in own)
        rows.append(LayerParamRow(row.path, row.kind, _int(model, row.count), measured))
    unique = {id(p): p.numel() for p in net.parameters()}
    total = Comparison("parameters", _int(model, params.total.expr), sum(unique.values()))

    # ---------------------------------------------------------- one step
    opt = torch.optim.Adam(net.parameters(), lr=1e-3)
    param_list = list(net.parameters())

    def loss_of(out: Any) -> Any:
        logits = out.float() if policy.loss_fp32 else out
        return torch.nn.functional.cross_entropy(
            logits.reshape(-1, logits.shape[-1]), labels.reshape(-1)
        )

    layers = [node.layer for node, _ in model.graph.walk()]
    kernels: AbstractContextManager[tuple[str, ...]] = (
        native_kernels(layers, policy) if native else nullcontext(())
    )
    with kernels as notes:
        for _ in range(steps_before):
            out = net(x)
            loss_of(out).backward()
            opt.step()
            opt.zero_grad(set_to_none=True)
            del out  # freed by reference counting: nothing of step 1 is left

        measured_saved: dict[int, Any] = {}
        current = ["(model)"]
        hooks = []
        for path, mods in built.instances.items():
            for mod in mods:
                hooks.append(
                    mod.register_forward_pre_hook(lambda _m, _i, path=path: current.append(path))
                )
                hooks.append(mod.register_forward_hook(lambda _m, _i, _o: current.pop() and None))

        def step() -> None:
            nonlocal measured_saved
            out, measured_saved = measure_saved(
                lambda: _forward(), [*param_list, *net.buffers()], lambda: current[-1]
            )
            out[1].backward()
            opt.step()

        def _forward() -> tuple[Any, Any]:
            out = net(x)
            current.append("loss")
            try:
                return out, loss_of(out)
            finally:
                current.pop()

        state = [t for st in opt.state.values() for t in st.values() if torch.is_tensor(t)]
        buffers = list(net.buffers())
        inputs = list(x) if isinstance(x, tuple) else [x]
        start = _storage_bytes([*param_list, *buffers, *state, *inputs, labels])
        if policy.device == "cpu":
            gc_was = gc.isenabled()
            gc.disable()  # no collection of unrelated garbage inside the measured window
            try:
                peak = start + measure_peak_cpu(step)
            finally:
                if gc_was:
                    gc.enable()
        else:  # pragma: no cover - needs a GPU
            torch.cuda.synchronize()
            torch.cuda.reset_peak_memory_stats()
            step()
            torch.cuda.synchronize()
            peak = torch.cuda.max_memory_allocated()
    opt.zero_grad(set_to_none=True)

    entries = saved_tensors(model.graph, policy)
    saved_formula = _int(model, entries_bytes(entries, policy))
    for hook in hooks:
        hook.remove()
    saved_measured = sum(v[0] for v in measured_saved.values())
    by_dtype: dict[str, int] = {}
    by_layer_m: dict[str, int] = {}
    for b, dt, where in measured_saved.values():
        by_dtype[dt] = by_dtype.get(dt, 0) + b
        by_layer_m[where] = by_layer_m.get(where, 0) + b
    by_layer_f: dict[str, sympy.Expr] = {}
    for e in entries:
        by_layer_f[e.path] = by_layer_f.get(e.path, sympy.Integer(0)) + e.numel * dtype_bytes(
            e.saved.dtype, policy
        )
    paths = [*dict.fromkeys([*(r.path for r in rows), "loss", *by_layer_m])]
    layer_rows = tuple(
        LayerSavedRow(p, _int(model, by_layer_f.get(p, sympy.Integer(0))), by_layer_m.get(p, 0))
        for p in paths
        if p in by_layer_f or p in by_layer_m
    )
    base, moments = peak_moments(model, policy, entries)
    peak_f = _int(model, base) + max(_int(model, mo) for mo in moments)
    shown = {str(s): int(v) for s, v in values.items() if sympy.sympify(v).is_Integer}
    return CheckReport(
        model.name,
        policy,
        shown,
        tuple(rows),
        total,
        Comparison("saved for backward", saved_formula, saved_measured),
        Comparison("peak of the step", peak_f, peak),
        by_dtype,
        layer_rows,
        tuple(notes),
    )
