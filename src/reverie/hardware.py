"""What the hardware runs fast: shared by training, planning and the pixel baseline.

from reverie.hardware import bf16_native
use_bf16 = bf16_native(torch.device("cpu"))   # AVX-512-BF16 / AMX-BF16 CPUs, most GPUs
with torch_threads(1): ...                      # restores the previous count
"""

from __future__ import annotations

import functools
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
