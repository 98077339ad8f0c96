"""A catalogue of accelerators and their memory capacity in bytes.

What "capacity" means here (see docs/solve.md): the number of bytes of device
memory the driver reports as the total, i.e. ``nvidia-smi --query-gpu=memory.total``
(= ``torch.cuda.mem_get_info()[1]``), where such a report is catalogued; this is
the ceiling a process can allocate from.  A vendor's "80 GB" is 80 GiB of DRAM
(HBM stacks and GDDR chips come in powers of two), of which the driver keeps a
few hundred MiB for itself (H100 80GB: 81,559 MiB of 81,920 MiB).  Where no
report is catalogued, the capacity is the vendor's nominal figure read in
binary units (GiB), which is then an upper bound.  The CUDA context and the
allocator's slack are *not* subtracted here: the memory model counts them in
its ``overhead`` component.

Each entry cites the vendor's datasheet for the nominal figure and, where
used, a public ``nvidia-smi`` printout for the reported total.
"""

from __future__ import annotations

from symmem.errors import OptionError, suggest
from symmem.records import record

GiB = 1024**3
MiB = 1024**2


@record
class GPU:
    """One accelerator (one device as PyTorch sees it)."""

    key: str
    name: str
    #: the vendor's marketed memory, as printed ("80 GB HBM3")
    nominal: str
    #: the nominal figure in bytes, read in binary units (80 GB -> 80 GiB of DRAM)
    nominal_bytes: int
    #: the total the driver reports (nvidia-smi memory.total), when catalogued
    reported_bytes: int | None
    #: where the nominal figure comes from (vendor datasheet or product page)
    source: str
    #: where the reported total comes from (a public nvidia-smi printout)
    reported_source: str | None = None
    note: str = ""
    #: the total CUDA reports to a process (``torch.cuda.mem_get_info()[1]``, what vLLM prints as
    #: ``total_gpu_memory``), when catalogued: a little below nvidia-smi's total (H100 80GB:
    #: 79.19 GiB against 81,559 MiB = 79.65 GiB)
    cuda_bytes: int | None = None
    #: where the CUDA total comes from (a published vLLM start-up log)
    cuda_source: str | None = None
    #: GPUs of a server joined by NVLink / Infinity Fabric (SXM / OAM parts): tensor
    #: parallelism there allocates NCCL NVLS and custom all-reduce buffers (docs/serving.md)
    nvlink: bool = False
    #: CUDA compute capability (major, minor), NVIDIA parts only: which kernels an engine can
    #: use (vLLM's MXFP4 MoE backend: docs/serving.md).  Source: NVIDIA's CUDA GPUs list,
    #: https://developer.nvidia.com/cuda-gpus
    compute_capability: tuple[int, int] | None = None
    #: the host (CPU) memory of the vendor's reference node for this part (NVIDIA DGX), read in
    #: binary units as the GPU's nominal figure is (DIMMs come in powers of two: 2 TB = 32 x 64
    #: GiB): the default second budget of ``symmem solve --gpu`` with ``--offload``.  Nominal,
    #: so an upper bound: the OS keeps some of it.  Other vendors' nodes differ.
    node: str | None = None
    node_host_bytes: int | None = None
    node_host_source: str | None = None

    def __post_init__(self) -> None:
        if self.nominal_bytes <= 0:  # pragma: no cover - catalogue data
            raise ValueError(f"{self.key}: capacity must be positive")
        if self.reported_bytes is not None and not 0 < self.reported_bytes <= self.nominal_bytes:
            raise ValueError(
                f"{self.key}: reported total above the nominal DRAM"
            )  # pragma: no cover

    @property
    def capacity_bytes(self) -> int:
        """The budget ``--gpu`` uses: the reported total when known, else the nominal DRAM."""
        return self.reported_bytes if self.reported_bytes is not None else self.nominal_bytes

    @property
    def cuda_total_bytes(self) -> int:
        """One GPU's total as CUDA reports it (what a serving engine budgets from): the catalogued
        CUDA total, else the driver's total, else the nominal DRAM (an upper bound)."""
        return self.cuda_bytes if self.cuda_bytes is not None else self.capacity_bytes

    @property
    def capacity_kind(self) -> str:
        return "reported" if self.reported_bytes is not None else "nominal"


def _gib(x: float) -> int:
    """A total printed in GiB with two decimals (vLLM's ``total_gpu_memory``), in bytes."""
    return round(x * GiB)


_NV_SMI_H100 = (
    "https://github.com/ModelCloud/GPTQModel/issues/2898 "
    "(nvidia-smi: 'NVIDIA H100 80GB HBM3 ... 81559MiB')"
)

#: host memory of NVIDIA's reference nodes (GPU.node_host_bytes)
_DGX_H100 = (
    "https://docs.nvidia.com/dgx/dgxh100-user-guide/introduction-to-dgxh100.html "
    "(DGX H100/H200 hardware overview: system memory 2 TB)"
)
_DGX_A100 = (
    "https://www.nvidia.com/content/dam/en-zz/Solutions/Data-Center/"
    "nvidia-dgx-a100-datasheet.pdf (DGX A100 640GB: system memory 2TB; 320GB: 1TB)"
)
_DGX1 = (
    "https://images.nvidia.com/content/pdf/dgx1-v100-system-architecture-whitepaper.pdf "
    "(DGX-1 with V100: 512 GB DDR4 system memory)"
)

CATALOGUE: tuple[GPU, ...] = (
    GPU(
        "rtx3090",
        "NVIDIA GeForce RTX 3090",
        "24 GB GDDR6X",
        24 * GiB,
        24576 * MiB,
        "https://www.nvidia.com/en-us/geforce/graphics-cards/30-series/rtx-3090-3090ti/ (specs: "
        "24 GB GDDR6X)",
        reported_source="https://github.com/noonghunna/club-3090/issues/1127 (nvidia-smi: "
        "'NVIDIA GeForce RTX 3090 ... 22591MiB /  24576MiB')",
        cuda_bytes=_gib(23.58),
        cuda_source=(
            "https://github.com/vllm-project/vllm/issues/10517 (vLLM: 'total_gpu_memory=23.58GiB')"
        ),
        compute_capability=(8, 6),
    ),
    GPU(
        "rtx4090",
        "NVIDIA GeForce RTX 4090",
        "24 GB GDDR6X",
        24 * GiB,
        24564 * MiB,
        "https://www.nvidia.com/en-us/geforce/graphics-cards/40-series/rtx-4090/ (specs: 24 GB "
        "GDDR6X)",
        "https://github.com/RLinf/RLinf/issues/255 (nvidia-smi: 'NVIDIA GeForce RTX 4090 ... "
        "507MiB /  24564MiB')",
        compute_capability=(8, 9),
    ),
    GPU(
        "rtx5090",
        "NVIDIA GeForce RTX 5090",
        "32 GB GDDR7",
        32 * GiB,
        32607 * MiB,
        "https://www.nvidia.com/en-us/geforce/graphics-cards/50-series/rtx-5090/ (specs: 32 GB "
        "GDDR7)",
        "public nvidia-smi printouts of an RTX 5090: '32607MiB'",
        compute_capability=(12, 0),
    ),
    GPU(
        "a10g",
        "NVIDIA A10G (AWS g5)",
        "24 GB GDDR6",
        24 * GiB,
        23028 * MiB,
        "https://aws.amazon.com/ec2/instance-types/g5/ (24 GB of memory per A10G GPU)",
        "public nvidia-smi printouts of an A10G: '23028MiB' (ECC on)",
        compute_capability=(8, 6),
    ),
    GPU(
        "a100-40gb",
        "NVIDIA A100 40GB (SXM4)",
        "40 GB HBM2",
        40 * GiB,
        None,
        "https://www.nvidia.com/content/dam/en-zz/Solutions/Data-Center/a100/pdf/"
        "nvidia-a100-datasheet-us-nvidia-1758950-r4-web.pdf (GPU memory: 40GB HBM2)",
        cuda_bytes=_gib(39.38),
        cuda_source="https://github.com/vllm-project/vllm/issues/16570 (vLLM 0.8.3 on 4 x A100 "
        "40GB: 'total_gpu_memory (39.38GiB)')",
        nvlink=True,
        compute_capability=(8, 0),
        node="DGX A100 320GB",
        node_host_bytes=1024 * GiB,
        node_host_source=_DGX_A100,
    ),
    GPU(
        "a100-80gb",
        "NVIDIA A100 80GB (SXM4)",
        "80 GB HBM2e",
        80 * GiB,
        None,
        "https://www.nvidia.com/content/dam/en-zz/Solutions/Data-Center/a100/pdf/"
        "nvidia-a100-datasheet-us-nvidia-1758950-r4-web.pdf (GPU memory: 80GB HBM2e)",
        nvlink=True,
        compute_capability=(8, 0),
        node="DGX A100 640GB",
        node_host_bytes=2 * 1024 * GiB,
        node_host_source=_DGX_A100,
    ),
    GPU(
        "h100-80gb",
        "NVIDIA H100 80GB (SXM5 / PCIe)",
        "80 GB HBM3",
        80 * GiB,
        81559 * MiB,
        "https://www.nvidia.com/en-us/data-center/h100/ (H100 SXM: GPU memory 80GB; 5 HBM3 "
        "stacks of 16 GiB)",
        _NV_SMI_H100,
        cuda_bytes=_gib(79.19),
        cuda_source="https://github.com/vllm-project/vllm/issues/17891 and vLLM V1 logs: "
        "'total_gpu_memory (79.19GiB)' (79.22 GiB under older drivers: vLLM PR #10511)",
        nvlink=True,
        compute_capability=(9, 0),
        node="DGX H100",
        node_host_bytes=2 * 1024 * GiB,
        node_host_source=_DGX_H100,
    ),
    GPU(
        "h200",
        "NVIDIA H200 (SXM / NVL)",
        "141 GB HBM3e",
        141 * GiB,
        143771 * MiB,
        "https://www.nvidia.com/en-us/data-center/h200/ (GPU memory: 141GB HBM3e)",
        "public nvidia-smi printouts of an H200: '143771MiB'",
        note="141 GB is in binary units: the driver reports 143,771 MiB = 140.4 GiB = 150.8 GB",
        cuda_bytes=_gib(139.72),
        cuda_source=(
            "https://github.com/vllm-project/vllm/issues/10702 (vLLM: 'total_gpu_memory=139.72GiB')"
        ),
        nvlink=True,
        compute_capability=(9, 0),
        node="DGX H200",
        node_host_bytes=2 * 1024 * GiB,
        node_host_source=_DGX_H100,
    ),
    GPU(
        "l4",
        "NVIDIA L4",
        "24 GB GDDR6",
        24 * GiB,
        23034 * MiB,
        "https://www.nvidia.com/en-us/data-center/l4/ (GPU memory: 24GB)",
        "public nvidia-smi printouts of an L4: '23034MiB' (ECC on)",
        note="no CUDA total (vLLM's total_gpu_memory) is catalogued: a serving plan budgets "
        "from nvidia-smi's total, which is a few hundred MiB above what CUDA reports",
        compute_capability=(8, 9),
    ),
    GPU(
        "t4",
        "NVIDIA T4",
        "16 GB GDDR6",
        16 * GiB,
        15360 * MiB,
        "https://www.nvidia.com/en-us/data-center/tesla-t4/ (GPU memory: 16 GB GDDR6)",
        "nvidia-smi on a T4 (Colab and cloud printouts): '15360MiB' (ECC on)",
        compute_capability=(7, 5),
    ),
    GPU(
        "v100-16gb",
        "NVIDIA V100 16GB",
        "16 GB HBM2",
        16 * GiB,
        None,
        "https://images.nvidia.com/content/technologies/volta/pdf/"
        "volta-v100-datasheet-update-us-1165301-r5.pdf (memory: 16 GB HBM2)",
        nvlink=True,
        compute_capability=(7, 0),
        node="DGX-1 (V100 16GB)",
        node_host_bytes=512 * GiB,
        node_host_source=_DGX1,
    ),
    GPU(
        "v100-32gb",
        "NVIDIA V100 32GB",
        "32 GB HBM2",
        32 * GiB,
        None,
        "https://images.nvidia.com/content/technologies/volta/pdf/"
        "volta-v100-datasheet-update-us-1165301-r5.pdf (memory: 32 GB HBM2)",
        nvlink=True,
        compute_capability=(7, 0),
        node="DGX-1 (V100 32GB)",
        node_host_bytes=512 * GiB,
        node_host_source=_DGX1,
    ),
    GPU(
        "mi250x",
        "AMD Instinct MI250X (one GCD)",
        "128 GB HBM2e per OAM, 64 GB per GCD",
        64 * GiB,
        None,
        "https://www.amd.com/en/products/accelerators/instinct/mi200/mi250x.html (128 GB HBM2e)",
        note="an MI250X module holds two GCDs; each is a separate device to PyTorch with 64 GB",
        nvlink=True,
    ),
    GPU(
        "mi300x",
        "AMD Instinct MI300X",
        "192 GB HBM3",
        192 * GiB,
        None,
        "https://www.amd.com/en/products/accelerators/instinct/mi300/mi300x.html (192 GB HBM3; 8 "
        "stacks of 24 GiB)",
        nvlink=True,
    ),
    GPU(
        "b200",
        "NVIDIA B200 (HGX)",
        "180 GB HBM3e",
        180 * GiB,
        None,
        "https://www.nvidia.com/en-us/data-center/hgx/ (HGX B200: 1.4 TB of HBM3e for 8 GPUs = "
        "180 GB each)",
        nvlink=True,
        compute_capability=(10, 0),
    ),
    GPU(
        "gb200",
        "NVIDIA GB200 (one Blackwell GPU)",
        "186 GB HBM3e",
        186 * GiB,
        None,
        "https://www.nvidia.com/en-us/data-center/gb200-nvl72/ (GB200 NVL72: 13.4 TB HBM3e for "
        "72 GPUs = 186 GB each)",
        note=(
            "per Blackwell GPU of a Grace Blackwell superchip; the Grace CPU's LPDDR5X is not "
            "counted"
        ),
        nvlink=True,
        compute_capability=(10, 0),
    ),
    GPU(
        "rtx-a6000",
        "NVIDIA RTX A6000",
        "48 GB GDDR6",
        48 * GiB,
        None,
        "https://www.nvidia.com/en-us/design-visualization/rtx-a6000/ (GPU memory: 48 GB GDDR6 "
        "with ECC)",
        note="the reported total (nvidia-smi, CUDA) is not catalogued: no published printout "
        "was found; the capacity is the nominal 48 GiB, an upper bound",
        compute_capability=(8, 6),
    ),
    GPU(
        "rtx6000-ada",
        "NVIDIA RTX 6000 Ada Generation",
        "48 GB GDDR6",
        48 * GiB,
        None,
        "https://www.nvidia.com/en-us/design-visualization/rtx-6000/ (GPU memory: 48 GB GDDR6 "
        "with ECC)",
        note="the reported total (nvidia-smi, CUDA) is not catalogued: no published printout "
        "was found; the capacity is the nominal 48 GiB, an upper bound",
        compute_capability=(8, 9),
    ),
    GPU(
        "l40s",
        "NVIDIA L40S",
        "48 GB GDDR6",
        48 * GiB,
        46068 * MiB,
        "https://www.nvidia.com/en-us/data-center/l40s/ (GPU memory: 48GB GDDR6 with ECC)",
        "https://github.com/akash-network/provider-configs/pull/99 (nvidia-smi "
        "--query-gpu=name,...,memory.total: 'NVIDIA L40S, 595.71.05, 46068 MiB'; ECC on)",
        note="no CUDA total is catalogued: a serving plan budgets from nvidia-smi's total",
        compute_capability=(8, 9),
    ),
    GPU(
        "a40",
        "NVIDIA A40",
        "48 GB GDDR6",
        48 * GiB,
        46068 * MiB,
        "https://www.nvidia.com/en-us/data-center/a40/ (GPU memory: 48 GB GDDR6 with ECC)",
        "https://github.com/guoqingbao/Lvllm/issues/35 ('NVIDIA A40，显存大小46068MiB', with a "
        "vLLM log; ECC on)",
        note="no CUDA total is catalogued: a serving plan budgets from nvidia-smi's total",
        compute_capability=(8, 6),
    ),
    GPU(
        "h100-pcie",
        "NVIDIA H100 PCIe",
        "80 GB HBM2e",
        80 * GiB,
        None,
        "https://www.nvidia.com/en-us/data-center/h100/ (H100 PCIe: GPU memory 80GB)",
        note="the reported total (nvidia-smi, CUDA) is not catalogued: no published printout of "
        "the PCIe card was found (the SXM part's is 81,559 MiB); the capacity is the nominal "
        "80 GiB, an upper bound",
        compute_capability=(9, 0),
    ),
    GPU(
        "h100-nvl",
        "NVIDIA H100 NVL",
        "94 GB HBM3",
        94 * GiB,
        None,
        "https://github.com/akash-network/provider-configs/pull/91 (H100 NVL, device 0x2321: "
        "'94 GiB of HBM3 memory per GPU')",
        note="the nvidia-smi and CUDA totals are not catalogued; fastfetch reads 99,961,274,368 "
        "bytes (93.1 GiB) of dedicated memory from the driver "
        "(https://github.com/fastfetch-cli/fastfetch/issues/1658), below the nominal 94 GiB",
        nvlink=True,
        compute_capability=(9, 0),
    ),
    GPU(
        "h20",
        "NVIDIA H20",
        "96 GB HBM3",
        96 * GiB,
        None,
        "https://github.com/vllm-project/vllm/issues/17852 (a vLLM user's 'H20 (96G)'; NVIDIA "
        "publishes no H20 product page outside China)",
        note="the nominal 96 GB is a user's statement, not a datasheet; no nvidia-smi or CUDA "
        "total is catalogued",
        nvlink=True,
        compute_capability=(9, 0),
    ),
    GPU(
        "mi325x",
        "AMD Instinct MI325X",
        "256 GB HBM3E",
        256 * GiB,
        None,
        "https://tensorwave.com/blog/mi325x-vs-mi300x-whats-new-what-matters-and-why-it-changes-"
        "your-ai-stack ('MI325X features 256 GB of the newer HBM3E memory on each GPU')",
        nvlink=True,
    ),
    GPU(
        "gaudi3",
        "Intel Gaudi 3",
        "128 GB HBM2e",
        128 * GiB,
        None,
        "https://gigazine.net/gsc_news/en/20240423-intel-gaudi-3-photo-report (quoting "
        "ServeTheHome: 'Intel Gaudi 3, the new 128GB HBM2e AI chip')",
        note="an HPU, not a CUDA device: PyTorch sees it through habana_frameworks",
    ),
)

_BY_KEY = {g.key: g for g in CATALOGUE}
#: other spellings users type
_ALIASES = {
    "h100": "h100-80gb",
    "h100-sxm": "h100-80gb",
    "a100": "a100-80gb",
    "a100-40": "a100-40gb",
    "a100-80": "a100-80gb",
    "v100": "v100-32gb",
    "4090": "rtx4090",
    "3090": "rtx3090",
    "5090": "rtx5090",
    "h100-80gb-hbm3": "h100-80gb",
    "a6000": "rtx-a6000",
    "rtx6000": "rtx6000-ada",
    "6000-ada": "rtx6000-ada",
    "gaudi-3": "gaudi3",
    "mi325": "mi325x",
    "mi300": "mi300x",
}


def gpu(name: str) -> GPU:
    """The catalogued accelerator ``name`` (case and ``_``/space do not matter)."""
    key = name.strip().lower().replace("_", "-").replace(" ", "-")
    key = _ALIASES.get(key, key)
    if key in _BY_KEY:
        return _BY_KEY[key]
    hint = suggest(key, [*_BY_KEY, *_ALIASES])
    raise OptionError(
        f"unknown GPU '{name}'"
        + (f": {hint}" if hint else "")
        + "; `symmem gpus` lists the catalogue"
    )
