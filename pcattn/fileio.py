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


def output_folder(path: str | os.PathLike, option: str) -> Path:
    """The folder ``path`` that the option ``option`` (``--out``, ``train.out_dir``) names,
    created if needed; an existing file there, or a folder that cannot be made, is a
    ValueError naming the option, the path and the fix."""
    path = Path(path)
    if path.exists() and not path.is_dir():
        raise ValueError(f"{option} {path} is a file, not a folder; give a folder (new or "
                         "existing) for the output")
    try:
        path.mkdir(parents=True, exist_ok=True)
    except OSError as err:
        raise ValueError(f"{option} {path}: cannot create this folder "
                         f"({_blocker(path, err)}); give one that can be created") from None
    return path


def output_file(path: str | os.PathLike, option: str, suffix: str) -> Path:
    """The file ``path`` that ``option`` names (its folder created if needed): a folder
    there, another suffix than ``suffix`` or a folder that cannot be made is a ValueError
    naming the option, the path and the fix."""
    path = Path(path)
    if path.is_dir():
        raise ValueError(f"{option} {path} is a folder; give the {suffix} file to write, e.g. "
                         f"{path / ('out' + suffix)}")
    if path.suffix.lower() != suffix:
        raise ValueError(f"{option} {path}: give a {suffix} file (the name must end in "
                         f"{suffix})")
    output_folder(path.parent, f"{option} {path}: its folder")
    return path


def _blocker(path: Path, err: OSError) -> str:
    """Why ``path`` cannot be made: a file on the way, a missing permission, or the OS's
    words."""
    for parent in (path, *path.parents):
        if parent.exists():
            if not parent.is_dir():
                return f"{parent} is a file"
            if not os.access(parent, os.W_OK | os.X_OK):
                return f"no permission to write in {parent}"
            break
    return err.strerror or type(err).__name__
