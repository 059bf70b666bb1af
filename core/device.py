"""Where a worker runs, in one place: its rank in the run, and what its hardware decides
(device, DDP backend, AMP, DALI decoding, the hardware's name). Everything else asks
`plan_device` instead of probing CUDA itself."""

from __future__ import annotations

import platform
from contextlib import AbstractContextManager, nullcontext
from dataclasses import dataclass
from pathlib import Path

import torch


@dataclass(frozen=True)
class Worker:
    """Where this process sits in a run: rank 0 of 1 in-process, or one DDP worker under Ray."""

    rank: int = 0
    local_rank: int = 0
    world_size: int = 1

    @property
    def is_chief(self) -> bool:
        return self.rank == 0


@dataclass(frozen=True)
class DevicePlan:
    device: torch.device
    backend: str  # torch.distributed backend: "nccl" on GPUs, "gloo" on CPUs
    amp_dtype: torch.dtype | None  # autocast dtype, None when mixed precision is off
    use_grad_scaler: bool  # fp16 needs loss scaling; bf16 does not
    dali_decoder: str  # "mixed" (nvJPEG on the GPU) or "cpu"
    dali_device_id: int | None  # None runs DALI without a GPU

    def describe(self) -> str:
        amp = str(self.amp_dtype).replace("torch.", "") if self.amp_dtype else "off"
        return f"{self.device} ({self.backend}, amp {amp}, dali {self.dali_decoder})"

    def autocast(self) -> AbstractContextManager:
        """Mixed precision as the plan says, or nothing."""
        if self.amp_dtype is None:
            return nullcontext()
        return torch.autocast(self.device.type, dtype=self.amp_dtype)

    def hardware(self) -> str:
        """What a speed was measured on: the GPU's or the CPU's model name, with the device type."""
        if self.device.type == "cuda":
            return f"cuda {torch.cuda.get_device_name(self.device)}"
        return f"cpu {cpu_model()}"


def cpu_model() -> str:
    """The CPU's model name (Linux /proc/cpuinfo), else what the platform module knows."""
    cpuinfo = Path("/proc/cpuinfo")
    if cpuinfo.is_file():
        for line in cpuinfo.read_text().splitlines():
            if line.startswith("model name"):
                return line.split(":", 1)[1].strip()
    return platform.processor() or platform.machine()


def plan_device(
    amp: str = "auto",
    local_rank: int = 0,
    cuda_available: bool | None = None,
    bf16_supported: bool | None = None,
) -> DevicePlan:
    """Pick the device for this worker. `cuda_available` / `bf16_supported` default to probing
    the machine; tests pass them to check the GPU branch on a CPU-only machine."""
    if cuda_available is None:
        cuda_available = torch.cuda.is_available()
    if cuda_available:
        if bf16_supported is None:
            bf16_supported = torch.cuda.is_bf16_supported()
        amp_on = amp in ("auto", "on")
        amp_dtype = (torch.bfloat16 if bf16_supported else torch.float16) if amp_on else None
        return DevicePlan(
            device=torch.device("cuda", local_rank),
            backend="nccl",
            amp_dtype=amp_dtype,
            use_grad_scaler=amp_dtype == torch.float16,
            dali_decoder="mixed",
            dali_device_id=local_rank,
        )
    return DevicePlan(
        device=torch.device("cpu"),
        backend="gloo",
        amp_dtype=torch.bfloat16 if amp == "on" else None,
        use_grad_scaler=False,
        dali_decoder="cpu",
        dali_device_id=None,
    )
