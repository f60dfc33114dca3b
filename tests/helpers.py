"""Small builders shared by the tests (importable as ``helpers``: see pyproject's pythonpath)."""

from __future__ import annotations

import torch


def clouds(sizes, c, device, dtype=torch.float32, seed=0):
    """Random features ``x [M, c]``, positions ``pos [M, 3]`` and ``batch [M]`` of clouds of
    the given sizes, on ``device``."""
    g = torch.Generator().manual_seed(seed)
    pos = torch.rand(sum(sizes), 3, generator=g, dtype=dtype)
    x = torch.randn(sum(sizes), c, generator=g, dtype=dtype)
    batch = torch.repeat_interleave(torch.arange(len(sizes)), torch.tensor(sizes))
    return x.to(device), pos.to(device), batch.to(device)


def renumber(idx, perm):
    """Neighbourhoods of the permuted cloud (new node a is old node perm[a])."""
    inv = torch.empty_like(perm)
    inv[perm] = torch.arange(perm.numel(), device=perm.device)
    new = idx[perm]
    return torch.where(new >= 0, inv[new.clamp(min=0)], new)


def features(sizes, c, device, dtype=torch.float32, seed=0):
    """Random features ``x [M, c]`` and ``batch [M]`` of clouds of the given sizes."""
    g = torch.Generator().manual_seed(seed)
    x = torch.randn(sum(sizes), c, generator=g, dtype=dtype)
    batch = torch.repeat_interleave(torch.arange(len(sizes)), torch.tensor(sizes))
    return x.to(device), batch.to(device)


def points(sizes, seed=0):
    """Random positions ``pos [M, 3]`` in the unit cube and ``batch [M]`` (CPU, float32)."""
    g = torch.Generator().manual_seed(seed)
    pos = torch.rand(sum(sizes), 3, generator=g)
    batch = torch.repeat_interleave(torch.arange(len(sizes)), torch.tensor(sizes))
    return pos, batch
