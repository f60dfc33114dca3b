"""Mixed precision: ``train.amp`` as an autocast context and a gradient scaler."""

from __future__ import annotations

import contextlib

import torch


def check_amp(amp: str, device: torch.device) -> None:
    """fp16 needs CUDA (its GradScaler); bf16 runs on the CPU and on CUDA."""
    if amp == "fp16" and device.type != "cuda":
        raise ValueError(f"train.amp=fp16 needs a CUDA device (the run is on {device}); use "
                         "train.amp=bf16 on the CPU, or train.amp=none")


def autocast(amp: str, device: torch.device):
    """The autocast context of ``amp`` (``none``: a no-op)."""
    if amp == "none":
        return contextlib.nullcontext()
    dtype = torch.bfloat16 if amp == "bf16" else torch.float16
    return torch.autocast(device_type=device.type, dtype=dtype)


def grad_scaler(amp: str, device: torch.device) -> torch.amp.GradScaler:
    """A GradScaler, enabled for fp16 only (a disabled one passes everything through)."""
    return torch.amp.GradScaler(device.type, enabled=amp == "fp16")
