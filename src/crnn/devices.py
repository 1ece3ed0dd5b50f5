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


def fast_bf16(device: torch.device) -> bool:
    """Whether ``device`` runs bf16 faster than fp32: a CUDA GPU with bf16, or a CPU with AMX tiles (oneDNN's
    bf16 kernels; AVX-512 BF16 alone converts, it does not multiply faster)."""
    if device.type == "cuda":
        return bool(torch.cuda.is_bf16_supported())
    if device.type == "cpu":
        probe = getattr(torch.cpu, "_is_amx_tile_supported", None)  # private, present since 2.3; absent = no
        return bool(probe()) if probe is not None else False
    return False


def use_amp(setting: bool | str, device: torch.device) -> tuple[bool, str]:
    """``train.amp`` resolved for ``device``: whether to train in mixed precision, and why, for the run's log."""
    if setting == "auto":
        on = fast_bf16(device)
        where = "this CPU has AMX" if device.type == "cpu" else f"{device.type} with bf16"
        return on, (f"{amp_dtype(device)} mixed precision (train.amp=auto: {where})".replace("torch.", "") if on
                    else "fp32 (train.amp=auto: no fast bf16 on this device)")
    if setting:
        return True, f"{amp_dtype(device)} mixed precision (train.amp=true)".replace("torch.", "")
    return False, "fp32 (train.amp=false)"
