"""Checkpoints: everything a run needs to continue bit-exactly, written atomically and read
back with ``torch.load(weights_only=True)`` (no code runs when a checkpoint is opened)."""

from __future__ import annotations

import pickle
import re
from pathlib import Path

import torch

from pcattn.fileio import atomic_save

FORMAT = "pcattn-checkpoint-1"


def save_checkpoint(path: str | Path, state: dict) -> None:
    """Write ``state`` (model, optimizer, scheduler, scaler, epoch, best, rng, config...)
    to a temporary file, fsync it and rename it over ``path``: a kill at any moment leaves the
    previous file intact."""
    atomic_save({"format": FORMAT, **state}, path)


def load_checkpoint(path: str | Path, map_location="cpu") -> dict:
    """Read a checkpoint written by :func:`save_checkpoint`; anything else is a ValueError
    saying what the file is instead."""
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
    if not isinstance(ckpt, dict) or ckpt.get("format") != FORMAT:
        raise ValueError(f"{path} is not a pcattn checkpoint (no {FORMAT!r} format tag); "
                         "give a last.pt or best.pt written by `pcattn train`")
    return ckpt


MODEL_CHECKPOINTS = ("best.pt", "last.pt", "checkpoint.pt")  # a run folder's model, in order


def checkpoint_path(path: str | Path, *names: str) -> Path:
    """A checkpoint file, or the first of ``names`` (default :data:`MODEL_CHECKPOINTS`) in
    the run folder ``path``; a folder without any says what it holds. A model read from
    another file than ``names[0]`` is said with a warning (e.g. no evaluation finished, so
    there is no ``best.pt`` yet and ``last.pt`` is used)."""
    import warnings

    path = Path(path)
    names = names or MODEL_CHECKPOINTS
    if path.is_dir():
        for i, name in enumerate(names):
            if (path / name).is_file():
                if i:
                    warnings.warn(f"{path} has no {names[0]}; using {name}", stacklevel=2)
                return path / name
        held = sorted(p.name for p in path.iterdir()) or ["nothing"]
        raise FileNotFoundError(f"{path} has no {' or '.join(names)} (it holds: "
                                f"{', '.join(held)}); give a run folder written by "
                                "`pcattn train` or a .pt file")
    if not path.exists():
        raise FileNotFoundError(f"no run folder or checkpoint at {path}")
    return path


def _first(err: BaseException) -> str:
    """The first sentence of an error message."""
    return str(err).split(". ")[0].splitlines()[0] if str(err) else "no message"
