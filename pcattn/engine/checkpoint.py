"""Checkpoints: model weights with the run config that built them, written atomically."""

from __future__ import annotations

from pathlib import Path

import torch
from torch import nn

from pcattn.fileio import atomic_save


def save_checkpoint(path: str | Path, model: nn.Module, config: dict, **extra) -> None:
    """Save ``{"model": state_dict, "config": config, **extra}``; a crash keeps the old file."""
    atomic_save({"model": model.state_dict(), "config": config, **extra}, path)


def load_checkpoint(path: str | Path, map_location="cpu") -> dict:
    path = Path(path)
    if not path.is_file():
        raise FileNotFoundError(f"checkpoint not found: {path}")
    ckpt = torch.load(path, map_location=map_location, weights_only=False)
    if not isinstance(ckpt, dict) or "model" not in ckpt or "config" not in ckpt:
        raise ValueError(f"{path} is not a pcattn checkpoint (needs 'model' and 'config' keys)")
    return ckpt
