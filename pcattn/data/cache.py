"""Crash-safe caches: a key from the options that change the content, atomic writes
(:func:`pcattn.fileio.atomic_save`)."""

from __future__ import annotations

import hashlib
import json
import os
import warnings
from pathlib import Path
from typing import Any, Callable

import torch

from pcattn.fileio import atomic_save


def cache_key(options: dict[str, Any]) -> str:
    """A short stable hash of the options that determine a cache's content."""
    text = json.dumps(options, sort_keys=True, default=str)
    return hashlib.sha1(text.encode()).hexdigest()[:12]


def _safe_load(path: Path) -> Any:
    """``torch.load`` of tensors, plain data and PyG ``Data`` only: a cache cannot run code."""
    from torch_geometric.data.data import Data, DataEdgeAttr, DataTensorAttr
    from torch_geometric.data.storage import GlobalStorage

    with torch.serialization.safe_globals([Data, DataEdgeAttr, DataTensorAttr, GlobalStorage]):
        return torch.load(path, weights_only=True)


def load_or_build(path: str | os.PathLike, build: Callable[[], Any], *,
                  options: dict[str, Any]) -> Any:
    """Load ``path`` if it was built with ``options``, else ``build()`` it and save it
    atomically together with the options.

    A cache whose recorded options differ (another option under a colliding name, a
    hand-copied file) or that cannot be read (a truncated copy) is rebuilt with a warning,
    never returned.
    """
    path = Path(path)
    wanted = json.loads(json.dumps(options, sort_keys=True, default=str))
    if path.exists():
        try:
            obj = _safe_load(path)
        except Exception as err:  # noqa: BLE001 - any unreadable cache is rebuilt
            warnings.warn(f"cache {path} is unreadable ({type(err).__name__}); rebuilding it")
        else:
            if isinstance(obj, dict) and obj.get("options") == wanted and "content" in obj:
                return obj["content"]
            warnings.warn(f"cache {path} was built with other options; rebuilding it")
    obj = build()
    atomic_save({"options": wanted, "content": obj}, path)
    return obj
