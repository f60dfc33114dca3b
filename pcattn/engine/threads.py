"""How many CPU threads a training process computes with (``train.threads``).

``"auto"`` is ``OMP_NUM_THREADS`` when the environment sets it (the user's or torchrun's
choice), else the cores this process may run on (its CPU affinity, so ``taskset`` and
container limits count) divided by the processes torchrun starts on this machine
(``LOCAL_WORLD_SIZE``). DataLoader workers compute on one thread each
(:func:`pcattn.engine.rng.seed_worker`).
"""

from __future__ import annotations

import os

import torch


def usable_cores() -> int:
    """The cores this process may run on (the CPU count where there is no affinity)."""
    try:
        return len(os.sched_getaffinity(0))
    except AttributeError:  # macOS, Windows
        return os.cpu_count() or 1


def thread_count(setting: int | str) -> int:
    """The threads ``setting`` (an int, or ``"auto"``) means in this process."""
    if setting != "auto":
        return int(setting)
    env = os.environ.get("OMP_NUM_THREADS", "")
    if env.isdigit() and int(env) > 0:
        return int(env)
    local = int(os.environ.get("LOCAL_WORLD_SIZE", "1") or 1)
    return max(1, usable_cores() // max(1, local))


def set_threads(setting: int | str) -> int:
    """``torch.set_num_threads`` to :func:`thread_count`; returns the count."""
    n = thread_count(setting)
    torch.set_num_threads(n)
    return n
