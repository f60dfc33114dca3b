"""How many CPU threads a training process computes with (``train.threads``).

``"auto"`` is ``OMP_NUM_THREADS`` when the environment sets it (the user's or torchrun's
choice); else the cores this process may run on (its CPU affinity, so ``taskset`` and
container limits count) shared among the trainings that run on them: every ``"auto"``
training registers itself in a per-user folder (:class:`SharedCores`) and computes on
``cores // trainings`` threads, at least ``cores // LOCAL_WORLD_SIZE`` under torchrun. The
count is rechecked every few seconds, so a training that started alone gives a core back
when a second one starts and takes it again when that one ends. Two PyTorch processes that
each spin a thread per core run many times slower than half speed; split, each runs at
about half speed. DataLoader workers compute on one thread each
(:func:`pcattn.engine.rng.seed_worker`).
"""

from __future__ import annotations

import contextlib
import getpass
import os
import tempfile
import time
from pathlib import Path

import torch


def usable_cores() -> int:
    """The cores this process may run on (the CPU count where there is no affinity)."""
    return len(_cpu_set())


def _cpu_set() -> set[int]:
    try:
        return set(os.sched_getaffinity(0))
    except AttributeError:  # macOS, Windows
        return set(range(os.cpu_count() or 1))


def _fixed_threads(setting: int | str) -> int | None:
    """The count ``setting`` fixes (a number, or ``OMP_NUM_THREADS``); None: share the cores."""
    if setting != "auto":
        return int(setting)
    env = os.environ.get("OMP_NUM_THREADS", "")
    return int(env) if env.isdigit() and int(env) > 0 else None


def thread_count(setting: int | str, trainings: int = 1) -> int:
    """The threads ``setting`` (an int, or ``"auto"``) means in this process when
    ``trainings`` processes (this one included) share its cores."""
    fixed = _fixed_threads(setting)
    if fixed is not None:
        return fixed
    local = int(os.environ.get("LOCAL_WORLD_SIZE", "1") or 1)
    return max(1, usable_cores() // max(1, local, trainings))


def registry_folder() -> Path:
    """Where ``"auto"`` trainings of this user register (one file per process)."""
    uid = os.getuid() if hasattr(os, "getuid") else getpass.getuser()
    return Path(tempfile.gettempdir()) / f"pcattn-{uid}" / "trainings"


class SharedCores(contextlib.AbstractContextManager):
    """Registers this process as a training on its cores and keeps ``torch``'s thread count at
    :func:`thread_count` for the live registered trainings whose CPU sets overlap ours.

    ``with SharedCores(setting) as cores: ... cores.poll()`` (each step; it recounts at most
    every ``interval`` seconds). With a fixed setting (a number or ``OMP_NUM_THREADS``) it
    registers nothing and keeps that count, whatever else starts or sets another. The file of
    a process that died without removing it is removed by the next count.
    """

    def __init__(self, setting: int | str, *, folder: str | Path | None = None,
                 interval: float = 2.0) -> None:
        self.setting, self.interval = setting, interval
        self.shared = _fixed_threads(setting) is None
        self.folder = Path(folder) if folder is not None else registry_folder()
        self.path = self.folder / str(os.getpid())
        self.threads = 0
        self._next = 0.0

    def __enter__(self) -> SharedCores:
        if self.shared:
            try:
                self.folder.mkdir(parents=True, exist_ok=True)
                self.path.write_text(" ".join(map(str, sorted(_cpu_set())))
                                     + f"\n{_start_time(os.getpid())}")
            except OSError:  # a read-only temp dir: share nothing, run as if alone
                self.shared = False
        self.poll(force=True)
        return self

    def __exit__(self, *exc) -> None:
        if self.shared:
            self.path.unlink(missing_ok=True)

    def trainings(self) -> int:
        """Live registered trainings (this one included) that share a core with this one."""
        if not self.shared:
            return 1
        mine, count = _cpu_set(), 0
        try:
            entries = list(self.folder.iterdir())
        except OSError:  # the folder was removed (a temp-dir clean-up): count only this one
            return 1
        for entry in entries:
            if not entry.name.isdigit():
                continue
            try:
                cpus, _, started = entry.read_text().partition("\n")
                cpus = {int(c) for c in cpus.split()}
            except (OSError, ValueError):  # removed meanwhile, or half written
                continue
            pid = int(entry.name)
            if pid != os.getpid() and not _alive(pid, started.strip()):
                with contextlib.suppress(OSError):
                    entry.unlink(missing_ok=True)
                continue
            count += bool(cpus & mine)
        return max(1, count)

    def poll(self, force: bool = False) -> int:
        """Recount (at most every ``interval`` seconds unless ``force``) and set the threads;
        returns the count in use."""
        now = time.monotonic()
        if force or now >= self._next:
            self._next = now + self.interval
            n = thread_count(self.setting, self.trainings())
            if n != self.threads or torch.get_num_threads() != n:  # also if set elsewhere
                torch.set_num_threads(n)
                self.threads = n
        return self.threads


def _start_time(pid: int) -> str:
    """When process ``pid`` started (clock ticks since boot, from ``/proc``), or ``""``
    where there is no ``/proc``: tells a live training from a later process that reuses
    the number of a dead one."""
    try:
        with open(f"/proc/{pid}/stat") as f:
            return f.read().rpartition(")")[2].split()[19]
    except (OSError, IndexError):
        return ""


def _alive(pid: int, started: str = "") -> bool:
    """Whether process ``pid`` runs and, if ``started`` is known, is the one that started
    then."""
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    except PermissionError:  # another user's process of that number
        return True
    except OSError:
        return False
    return not started or _start_time(pid) in ("", started)


class ThreadRecord:
    """The thread counts one epoch computed with, for ``metrics.csv`` and the checkpoint:
    ``threads`` (the count of its last step) and ``thread_changes`` (how often the count
    changed within it; 0 for an epoch that ran on one count throughout, which bit-exact
    reruns need: a float sum split over another number of threads rounds differently)."""

    def __init__(self) -> None:
        self.last: int | None = None
        self.changes = 0

    def step(self, threads: int) -> None:
        """Note the count a step computes with."""
        if self.last is not None and threads != self.last:
            self.changes += 1
        self.last = threads

    def row(self) -> dict[str, int]:
        """``{"threads", "thread_changes"}`` of the epoch so far (empty before a step)."""
        if self.last is None:
            return {}
        return {"threads": self.last, "thread_changes": self.changes}


def recorded_threads(ckpt: dict) -> int | None:
    """The thread count a checkpoint's run last computed with (None for a checkpoint
    written before counts were recorded)."""
    if isinstance(ckpt.get("threads"), int):
        return ckpt["threads"]
    for row in reversed(ckpt.get("history") or []):
        if "threads" in row:
            return int(row["threads"])
    return None
