"""What the hardware runs fast: shared by training, planning and the pixel baseline.

from reverie.hardware import bf16_native
use_bf16 = bf16_native(torch.device("cpu"))   # AVX-512-BF16 / AMX-BF16 CPUs, most GPUs
with torch_threads(1): ...                      # restores the previous count
"""

from __future__ import annotations

import functools
import os
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path

import torch
from torch import nn


@functools.lru_cache(maxsize=8)
def bf16_native(device: torch.device) -> bool:
    """Does this device run bf16 matmuls/convs natively (so autocast speeds the model up)?"""
    if device.type == "cuda":
        return torch.cuda.is_bf16_supported()
    try:
        flags = Path("/proc/cpuinfo").read_text().split()
    except OSError:
        return False
    if "avx512_bf16" not in flags and "amx_bf16" not in flags:
        return False
    # oneDNN capped below its bf16 ISAs (how an AVX2-only machine is emulated on a newer one):
    # bf16 would run in slow reference kernels there.
    isa = os.environ.get("ONEDNN_MAX_CPU_ISA", "ALL").upper()
    bf16_isas = ("ALL", "DEFAULT", "AVX512_CORE_BF16", "AVX512_CORE_FP16")
    if isa not in bf16_isas and not isa.startswith("AVX10") and "AMX" not in isa:
        return False
    try:  # smoke test: the kernels exist in this build
        with torch.autocast("cpu", dtype=torch.bfloat16):
            conv = nn.Conv2d(3, 4, 3).to(memory_format=torch.channels_last)
            conv(torch.ones(1, 3, 8, 8)).sum().float().item()
        return True
    except RuntimeError:
        return False


@contextmanager
def torch_threads(n: int) -> Iterator[None]:
    """Run the block with ``n`` torch CPU threads, then restore the previous count."""
    before = torch.get_num_threads()
    torch.set_num_threads(n)
    try:
        yield
    finally:
        torch.set_num_threads(before)


CPU_FLAGS = ("avx2", "avx512f", "avx512_bf16", "amx_bf16")


def machine() -> dict[str, object]:
    """What a figure was measured on: CPU model, cores, the flags that matter, bf16, GPU."""
    model, flags = "unknown CPU", set()
    try:
        for line in Path("/proc/cpuinfo").read_text().splitlines():
            key, _, value = line.partition(":")
            if key.strip() == "model name" and model == "unknown CPU":
                model = value.strip()
            elif key.strip() == "flags" and not flags:
                flags = set(value.split())
    except OSError:
        pass
    info: dict[str, object] = {
        "cpu": model,
        "cores": len(os.sched_getaffinity(0))
        if hasattr(os, "sched_getaffinity")
        else os.cpu_count(),
        "flags": [f for f in CPU_FLAGS if f in flags],
        "bf16_native": bf16_native(torch.device("cpu")),
        "cpu_class": cpu_class(flags),
        "torch": torch.__version__,
        "onednn_max_isa": os.environ.get("ONEDNN_MAX_CPU_ISA"),
        "threads": torch.get_num_threads(),
    }
    if torch.cuda.is_available():
        info["gpu"] = torch.cuda.get_device_name(0)
    return info


def cpu_class(flags: set[str]) -> str:
    """The machine class BENCHMARKS.md keeps a column for: AMX, AVX-512 + BF16, or AVX2."""
    if "amx_bf16" in flags:
        return "AMX-BF16"
    if "avx512_bf16" in flags:
        return "AVX512-BF16 (no AMX)"
    if "avx512f" in flags:
        return "AVX-512 (no BF16)"
    return "AVX2" if "avx2" in flags else "pre-AVX2"


def machine_line(info: dict[str, object] | None = None) -> str:
    """One line naming the machine, for every benchmark table and ``reverie envs`` / ``demo``."""
    info = info or machine()
    flags = ",".join(info["flags"]) or "none"  # type: ignore[arg-type]
    line = (
        f"machine: {info['cpu']}, {info['cores']} cores, class {info['cpu_class']} "
        f"(flags {flags}); bf16 {'native' if info['bf16_native'] else 'not native: fp32'}; "
        f"torch {info['torch']}"
    )
    if info.get("onednn_max_isa"):
        line += f"; oneDNN capped at {info['onednn_max_isa']} (ISA emulation)"
    return line + (f"; GPU {info['gpu']}" if "gpu" in info else "")
