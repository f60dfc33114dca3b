"""Crash-safe caches: a key from the options that change the content, atomic writes."""

from __future__ import annotations

import hashlib
import json
import os
import tempfile
import warnings
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
    remove_stale_temp_files(path)
    fd, tmp = tempfile.mkstemp(prefix=f".{path.name}.pcattn-{os.getpid()}-", suffix=".tmp",
                               dir=path.parent)
    try:
        with os.fdopen(fd, "wb") as f:
            torch.save(obj, f)
            f.flush()
            os.fsync(f.fileno())
        os.chmod(tmp, 0o644)  # mkstemp makes it private; a cache is as readable as its data
        os.replace(tmp, path)
    except BaseException:
        if os.path.exists(tmp):
            os.unlink(tmp)
        raise


def remove_stale_temp_files(path: str | os.PathLike) -> list[Path]:
    """Remove the temporary files that :func:`atomic_save` left beside ``path`` when its
    process was killed (``.<name>.pcattn-<pid>-*.tmp`` of a process that no longer runs).

    Files of a running process (another writer of the same file) are kept. Returns the
    removed paths.
    """
    path = Path(path)
    removed = []
    for tmp in path.parent.glob(f".{path.name}.pcattn-*-*.tmp"):
        pid = tmp.name[len(path.name) + 9:].split("-", 1)[0]
        if pid.isdigit() and not _running(int(pid)):
            tmp.unlink(missing_ok=True)
            removed.append(tmp)
    return removed


def _running(pid: int) -> bool:
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    except PermissionError:  # another user's process
        return True
    return True


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
