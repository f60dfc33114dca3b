"""Crash-safe caches: a key from the options that change the content, atomic writes."""

from __future__ import annotations

import hashlib
import json
import os
import tempfile
from pathlib import Path
from typing import Any, Callable

import torch


def cache_key(options: dict[str, Any]) -> str:
    """A short stable hash of the options that determine a cache's content."""
    text = json.dumps(options, sort_keys=True, default=str)
    return hashlib.sha1(text.encode()).hexdigest()[:12]


def atomic_save(obj: Any, path: str | os.PathLike) -> None:
    """``torch.save`` to a temporary file in the same folder, then rename over ``path``.

    A crash or Ctrl-C leaves either the old file or none, never a half-written one.
    """
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    fd, tmp = tempfile.mkstemp(prefix=f".{path.name}.", suffix=".tmp", dir=path.parent)
    try:
        with os.fdopen(fd, "wb") as f:
            torch.save(obj, f)
            f.flush()
            os.fsync(f.fileno())
        os.replace(tmp, path)
    except BaseException:
        if os.path.exists(tmp):
            os.unlink(tmp)
        raise


def load_or_build(path: str | os.PathLike, build: Callable[[], Any]) -> Any:
    """Load ``path`` if present, else ``build()`` it and save it atomically."""
    path = Path(path)
    if path.exists():
        return torch.load(path, weights_only=False)
    obj = build()
    atomic_save(obj, path)
    return obj
