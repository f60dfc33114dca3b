"""Crash-safe file writes, for caches and checkpoints alike: a temporary file in the same
folder, flushed, fsynced, renamed over the target."""

from __future__ import annotations

import os
import tempfile
from pathlib import Path
from typing import Any


def atomic_save(obj: Any, path: str | os.PathLike) -> None:
    """``torch.save`` to a temporary file in the same folder, fsync, then rename over ``path``.

    A crash, ``kill -9`` or Ctrl-C at any moment leaves either the old file or the new one,
    never a half-written one.
    """
    import torch  # here, so that writing a config does not import torch

    _atomic(path, lambda f: torch.save(obj, f))


def atomic_write_text(text: str, path: str | os.PathLike) -> None:
    """Write ``text`` to ``path`` with the same guarantee as :func:`atomic_save`."""
    _atomic(path, lambda f: f.write(text.encode()))


def _atomic(path: str | os.PathLike, write) -> None:
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    remove_stale_temp_files(path)
    fd, tmp = tempfile.mkstemp(prefix=f".{path.name}.pcattn-{os.getpid()}-", suffix=".tmp",
                               dir=path.parent)
    try:
        with os.fdopen(fd, "wb") as f:
            write(f)
            f.flush()
            os.fsync(f.fileno())
        os.chmod(tmp, 0o644)  # mkstemp makes it private; ours are as readable as their folder
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
