"""Small builders shared by the tests (importable as ``helpers``: see pyproject's pythonpath)."""

from __future__ import annotations

import torch

# registered models without attention layers (an empty "attention" list): the references
WITHOUT_ATTENTION = ("pointnet_cls", "pointnet_seg")


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


def brute_knn(pos, k, batch, query, query_batch):
    """The ``k`` nearest points of ``pos`` (same cloud) of every query, nearest first,
    ``-1`` padded: every distance computed, a reference independent of ``pcattn.ops``."""
    rows = []
    for q, b in zip(query.tolist(), query_batch.tolist()):
        cand = [j for j in range(pos.shape[0]) if int(batch[j]) == b]
        cand.sort(key=lambda j: sum((a - c) ** 2 for a, c in zip(pos[j].tolist(), q)))
        rows.append((cand[:k] + [-1] * k)[:k])
    return torch.tensor(rows, dtype=torch.long, device=pos.device)


def randomize_norms(module):
    """LayerNorms start at weight 1, bias 0; random ones make their use visible."""
    with torch.no_grad():
        for m in module.modules():
            if isinstance(m, torch.nn.LayerNorm):
                m.weight.uniform_(0.5, 1.5)
                m.bias.uniform_(-0.5, 0.5)


def layer_norm(t, norm):
    """(t - mean) / sqrt(var + eps) * gamma + beta over the last dim, written out."""
    mu = t.mean(-1, keepdim=True)
    var = ((t - mu) ** 2).mean(-1, keepdim=True)
    return (t - mu) / torch.sqrt(var + norm.eps) * norm.weight + norm.bias


def linear(t, lin):
    """``t W^T + b`` of an ``nn.Linear``, written out."""
    return t @ lin.weight.T + (0 if lin.bias is None else lin.bias)


def softmax(s, dim=-1):
    """exp(s - max) / sum exp(s - max), written out."""
    e = torch.exp(s - s.max(dim, keepdim=True).values)
    return e / e.sum(dim, keepdim=True)


def record_calls(monkeypatch, module, names):
    """Wrap the module's functions ``names`` so that each call is recorded by name (in the
    returned list); used to check which backend ran."""
    calls = []
    for name in names:
        def wrapper(*args, _orig=getattr(module, name), _name=name, **kwargs):
            calls.append(_name)
            return _orig(*args, **kwargs)
        monkeypatch.setattr(module, name, wrapper)
    return calls
