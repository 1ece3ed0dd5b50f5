"""Which device a run or a recognizer uses, and its mixed-precision type: one place for training,
inference and DDP."""

from __future__ import annotations

import torch

from crnn.errors import CrnnError


def resolve_device(name: str | torch.device) -> torch.device:
    """``auto`` picks CUDA when present, else the CPU; a device this machine lacks is a one-line error."""
    if isinstance(name, torch.device):
        dev = name
    elif name == "auto":
        return torch.device("cuda" if torch.cuda.is_available() else "cpu")
    else:
        try:
            dev = torch.device(name)
        except (RuntimeError, ValueError, TypeError):
            raise CrnnError(f"device {name!r} is not a device name (use auto, cpu, cuda or cuda:N)") from None
    if dev.type == "cuda":
        if not torch.cuda.is_available():
            raise CrnnError(f"device {str(name)!r} asked for, but CUDA is not available on this machine")
        if dev.index is not None and dev.index >= torch.cuda.device_count():
            raise CrnnError(f"device {str(name)!r} asked for, but this machine has {torch.cuda.device_count()} "
                            "CUDA device(s)")
    elif dev.type not in ("cpu", "mps"):
        raise CrnnError(f"device {str(name)!r} is not supported here (use auto, cpu, cuda or cuda:N)")
    elif dev.type == "mps" and not torch.backends.mps.is_available():
        raise CrnnError(f"device {str(name)!r} asked for, but MPS is not available on this machine")
    return dev


def amp_dtype(device: torch.device) -> torch.dtype:
    """bf16 where the hardware supports it (CPU, recent GPUs), else fp16."""
    if device.type == "cuda" and not torch.cuda.is_bf16_supported():
        return torch.float16
    return torch.bfloat16
