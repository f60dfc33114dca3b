"""Builders for the viz tests: small LayerAttention lists with known weights."""

from __future__ import annotations

import torch

from pcattn.nn.attention_map import AttentionMap, LayerAttention


def local_layer(name, weight, idx, nodes, residual=True):
    """A local map ``weight [M, K, H]`` on ``idx [M, K]`` whose nodes are input ``nodes``."""
    return LayerAttention(name, AttentionMap("local", weight, idx=idx), nodes, nodes, residual)


def random_local(n, k, heads, nodes=None, seed=0):
    """Softmax weights over each node's ``k`` nearest nodes (itself included)."""
    g = torch.Generator().manual_seed(seed)
    nodes = torch.arange(n) if nodes is None else nodes
    m = nodes.numel()
    idx = torch.stack([torch.randperm(m, generator=g)[:k] for _ in range(m)])  # [M, K]
    idx[:, 0] = torch.arange(m)
    weight = torch.softmax(torch.randn(m, k, heads, generator=g), dim=1)  # [M, K, H]
    return idx, weight, nodes


def two_stage(n=8, seed=0):
    """Stage 1: local attention over all ``n`` points; stage 2: global attention over the
    points 0, 3, 5, 6 (a down-sampling). Returns (layers, pos)."""
    g = torch.Generator().manual_seed(seed)
    pos = torch.rand(n, 3, generator=g)
    idx, w, nodes = random_local(n, 3, 2, seed=seed)
    sampled = torch.tensor([0, 3, 5, 6])
    wg = torch.softmax(torch.randn(1, 2, 4, 4, generator=g), dim=-1)  # [B, H, N, N]
    glob = LayerAttention("stage2.global", AttentionMap("global", wg), sampled, sampled, True)
    return [local_layer("stage1.local", w, idx, nodes), glob], pos

