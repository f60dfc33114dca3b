"""Every random state a run draws from: seeding, per-worker seeds, capture and restore.

Checkpoints are loaded with ``weights_only=True``, so states are stored as tensors, ints and
tuples only (numpy's state is taken apart).
"""

from __future__ import annotations

import random

import numpy as np
import torch


def seed_everything(seed: int) -> None:
    """Seed Python's, numpy's and torch's global generators (CUDA's too)."""
    random.seed(seed)
    np.random.seed(seed % 2**32)
    torch.manual_seed(seed)


def seed_worker(worker_id: int) -> None:
    """DataLoader ``worker_init_fn``: Python and numpy follow torch's per-worker seed, and
    the worker computes on one thread (workers times threads would oversubscribe the cores)."""
    torch.set_num_threads(1)
    seed = torch.initial_seed() % 2**32
    random.seed(seed)
    np.random.seed(seed)


def capture_rng(generators: dict[str, list[torch.Generator]]) -> dict:
    """The states of the global generators and of the named lists of generators."""
    kind, keys, pos, has_gauss, gauss = np.random.get_state(legacy=True)
    state = {
        "python": random.getstate(),
        "numpy": (kind, torch.from_numpy(keys.astype(np.int64)), int(pos), int(has_gauss),
                  float(gauss)),
        "torch": torch.get_rng_state(),
        "cuda": torch.cuda.get_rng_state_all() if torch.cuda.is_available() else [],
        "generators": {name: [g.get_state() for g in gens] for name, gens in generators.items()},
    }
    return state


def restore_rng(state: dict, generators: dict[str, list[torch.Generator]]) -> None:
    """Put back what :func:`capture_rng` took (the named generators in the same order)."""
    random.setstate(_tuples(state["python"]))
    kind, keys, pos, has_gauss, gauss = state["numpy"]
    np.random.set_state((kind, keys.numpy().astype(np.uint32), pos, has_gauss, gauss))
    torch.set_rng_state(state["torch"])
    if state["cuda"] and torch.cuda.is_available():
        torch.cuda.set_rng_state_all(state["cuda"])
    for name, gens in generators.items():
        saved = state["generators"].get(name, [])
        if len(saved) != len(gens):
            raise ValueError(f"the checkpoint holds {len(saved)} {name} generator states, the "
                             f"run has {len(gens)}: the data config changed since it was saved")
        for g, s in zip(gens, saved):
            g.set_state(s)


def _tuples(value):
    """``random.setstate`` wants tuples; a round trip may hand back lists."""
    return tuple(_tuples(v) for v in value) if isinstance(value, (list, tuple)) else value
