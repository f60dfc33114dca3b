"""Checkpoints: model weights with the run config that built them, written atomically."""

from __future__ import annotations

import pickle
import re
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
    try:  # weights_only: tensors and plain data only, so a checkpoint cannot run code
        ckpt = torch.load(path, map_location=map_location, weights_only=True)
    except pickle.UnpicklingError as err:
        found = re.search(r"GLOBAL (\S+)", str(err))
        if found:
            raise ValueError(f"{path} holds objects other than tensors and plain data "
                             f"({found.group(1)}); pcattn does not load it (unpickling such "
                             "objects can run code)") from None
        raise ValueError(f"{path} is not a pcattn checkpoint (not a torch.save file)") from None
    except Exception as err:  # noqa: BLE001 - not a zip, truncated, empty, text...
        raise ValueError(f"{path} is not a pcattn checkpoint, or a truncated one "
                         f"({type(err).__name__}: {_first(err)})") from None
    if not isinstance(ckpt, dict) or "model" not in ckpt or "config" not in ckpt:
        raise ValueError(f"{path} is not a pcattn checkpoint (needs 'model' and 'config' keys)")
    return ckpt


def _first(err: BaseException) -> str:
    """The first sentence of an error message."""
    return str(err).split(". ")[0].splitlines()[0] if str(err) else "no message"
