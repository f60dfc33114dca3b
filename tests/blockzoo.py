"""A small instance of every public block of ``pcattn.nn`` and how to call it (importable as
``blockzoo``), for the tests that hold every block to the block contract."""

from __future__ import annotations

from dataclasses import dataclass
from typing import Callable

import torch
from torch import Tensor, nn

import pcattn.nn as pnn
from pcattn.ops import knn, neighbors_to_edge_index

C = 8  # channels of every instance
SIZES = (7, 4)  # two clouds; the second is smaller than K, so idx has -1 padding
K = 5


@dataclass
class Problem:
    """A packed batch of two clouds with everything the blocks read."""

    x: Tensor
    pos: Tensor
    batch: Tensor
    idx: Tensor  # [M, K], -1 padded
    edge_index: Tensor  # the kNN graph of idx
    coarse: tuple[Tensor, Tensor, Tensor]  # x, pos, batch of a coarse level (transitions up)

    def permuted(self, perm: Tensor) -> "Problem":
        """The same clouds with their nodes in the order ``perm`` (within each cloud);
        neighbourhoods are searched again, the coarse level keeps its nodes."""
        pos = self.pos[perm]
        idx = knn(pos, K, self.batch)
        return Problem(self.x[perm], pos, self.batch, idx, neighbors_to_edge_index(idx),
                       self.coarse)


def problem(device="cpu", dtype=torch.float32, seed=0) -> Problem:
    g = torch.Generator().manual_seed(seed)
    m = sum(SIZES)
    pos = torch.rand(m, 3, generator=g, dtype=dtype).to(device)
    x = torch.randn(m, C, generator=g, dtype=dtype).to(device)
    batch = torch.repeat_interleave(torch.arange(len(SIZES)), torch.tensor(SIZES)).to(device)
    idx = knn(pos, K, batch)
    c = torch.tensor([0, 2, 4, 7, 9], device=device)
    return Problem(x, pos, batch, idx, neighbors_to_edge_index(idx), (x[c], pos[c], batch[c]))


def within_clouds_permutation(device="cpu", seed=1) -> Tensor:
    g = torch.Generator().manual_seed(seed)
    parts, start = [], 0
    for n in SIZES:
        parts.append(start + torch.randperm(n, generator=g))
        start += n
    return torch.cat(parts).to(device)


@dataclass
class Entry:
    """``kind``: the calling convention (``local``, ``global``, ``graph``, ``pool``,
    ``points`` for ``(x, pos, batch)``, ``pointwise``, ``head``); ``make()`` builds it,
    ``run(block, problem, **kw)`` calls it (``kw``: ``return_attention``); ``output``: how
    its output follows a permutation of the nodes (``nodes``: permuted alike, ``clouds``:
    unchanged, ``sampled``: a tuple (x, pos, ...) of sampled nodes, ``queries``: rows are
    the problem's nodes as queries); ``attention``: it takes ``return_attention``."""

    kind: str
    make: Callable[[], nn.Module]
    run: Callable
    output: str = "nodes"
    attention: bool = True


def _local(b, p, **kw):
    return b(p.x, p.pos, p.idx, **kw)


def _global(b, p, **kw):
    return b(p.x, p.batch, **kw)


def _up(b, p, **kw):
    return b(*p.coarse, x_skip=p.x, query=p.pos, query_batch=p.batch, **kw)


ZOO: dict[str, Entry] = {
    "PointTransformerLayer": Entry("local", lambda: pnn.PointTransformerLayer(C, C), _local),
    "PointTransformerBlock": Entry("local", lambda: pnn.PointTransformerBlock(C), _local),
    "PTv2Block": Entry("local", lambda: pnn.PTv2Block(C, heads=2), _local),
    "NadarayaWatsonBlock": Entry(
        "local", lambda: pnn.NadarayaWatsonBlock(C, sigma=0.3, learn_sigma=True), _local),
    "NadarayaWatsonLayer": Entry(
        "local", lambda: pnn.NadarayaWatsonLayer(sigma=0.3, learn_sigma=True), _local),
    "LocalSelfAttention": Entry("local", lambda: pnn.LocalSelfAttention(C, C, heads=2),
                                _local),
    "GroupedVectorAttention": Entry(
        "local", lambda: pnn.GroupedVectorAttention(C, C, heads=2, pos_multiplier=True),
        _local),
    "GlobalSelfAttention": Entry("global", lambda: pnn.GlobalSelfAttention(C, heads=2),
                                 _global),
    "GlobalSelfAttention(additive)": Entry(
        "global", lambda: pnn.GlobalSelfAttention(C, heads=2, score="additive"), _global),
    "OffsetAttention": Entry("global", lambda: pnn.OffsetAttention(C), _global),
    "LinearAttention": Entry("global", lambda: pnn.LinearAttention(C, heads=2), _global),
    "GlobalTokens": Entry("global", lambda: pnn.GlobalTokens(C, num_tokens=2, heads=2),
                          lambda b, p, **kw: b(p.x, p.batch, idx=p.idx, **kw)),
    "InducedSetAttention": Entry(
        "global", lambda: pnn.InducedSetAttention(C, heads=2, num_inducing=3), _global),
    "AnchorAttention": Entry("global", lambda: pnn.AnchorAttention(C, heads=2, num_anchors=3),
                             lambda b, p, **kw: b(p.x, p.batch, pos=p.pos, **kw)),
    "ClusterAttention": Entry(
        "global", lambda: pnn.ClusterAttention(C, heads=2, num_clusters=2).eval(), _global),
    "SinkhornAttention": Entry(
        "global", lambda: pnn.SinkhornAttention(C, heads=2, block_size=2),
        lambda b, p, **kw: b(p.x, p.batch, pos=p.pos, **kw)),
    "GraphAttention": Entry("graph", lambda: pnn.GraphAttention(C, C, heads=2),
                            lambda b, p, **kw: b(p.x, p.edge_index, **kw)),
    "GraphAttentionBlock": Entry("graph", lambda: pnn.GraphAttentionBlock(C, C, heads=2),
                                 lambda b, p, **kw: b(p.x, p.edge_index, **kw)),
    "AttentionPool": Entry("pool", lambda: pnn.AttentionPool(C, heads=2), _global,
                           output="clouds"),
    "SqueezeExcitation": Entry("pool", lambda: pnn.SqueezeExcitation(C), _global),
    "EfficientChannelAttention": Entry("pool", lambda: pnn.EfficientChannelAttention(C),
                                       _global),
    "TNet": Entry("pool", lambda: pnn.TNet(C, point_channels=(8,), global_channels=(8,)),
                  _global, output="clouds", attention=False),
    "global_max_pool": Entry("pool", lambda: pnn.global_max_pool, _global, output="clouds",
                             attention=False),
    "global_mean_pool": Entry("pool", lambda: pnn.global_mean_pool, _global,
                              output="clouds", attention=False),
    "NadarayaWatsonPool": Entry(
        "points", lambda: pnn.NadarayaWatsonPool(sigma=0.3, learn_sigma=True),
        lambda b, p, **kw: b(p.x, p.pos, p.batch, **kw), output="clouds"),
    "NadarayaWatsonPool(k, query)": Entry(
        "points", lambda: pnn.NadarayaWatsonPool(sigma=0.3, k=3),
        lambda b, p, **kw: b(p.x, p.pos, p.batch, query=p.pos, query_batch=p.batch, **kw)),
    "SerializedAttention": Entry(
        "points", lambda: pnn.SerializedAttention(C, C, heads=2, patch_size=3),
        lambda b, p, **kw: b(p.x, p.pos, p.batch, **kw)),
    "PTv3Block": Entry("points", lambda: pnn.PTv3Block(C, heads=2, patch_size=3),
                       lambda b, p, **kw: b(p.x, p.pos, p.batch, **kw)),
    "TransitionDown": Entry("points", lambda: pnn.TransitionDown(C, C, ratio=0.5, k=3),
                            lambda b, p: b(p.x, p.pos, p.batch), output="sampled",
                            attention=False),
    "TransitionUp": Entry("points", lambda: pnn.TransitionUp(C, C, k=3), _up),
    "TransitionUp(nadaraya_watson)": Entry(
        "points", lambda: pnn.TransitionUp(
            C, C, upsample=pnn.NadarayaWatsonPool(sigma=0.3, k=3, learn_sigma=True)), _up),
    "NeighborEmbedding": Entry(
        "points", lambda: pnn.NeighborEmbedding(C, C, hidden_channels=8, k=3),
        lambda b, p: b(p.x, p.pos, p.batch), output="sampled", attention=False),
    "PointEmbedding": Entry("pointwise", lambda: pnn.PointEmbedding(C, C),
                            lambda b, p: b(p.x), attention=False),
    "FourierPositionalEncoding": Entry(
        "pointwise", lambda: pnn.FourierPositionalEncoding(2, out_channels=C),
        lambda b, p: b(p.pos), attention=False),
    "LearnedPositionalEncoding": Entry("pointwise", lambda: pnn.LearnedPositionalEncoding(C),
                                       lambda b, p: b(p.pos), attention=False),
    "RelativePositionalEncoding": Entry(
        "pointwise", lambda: pnn.RelativePositionalEncoding(C),
        lambda b, p: b(pnn.RelativePositionalEncoding.offsets(p.pos, p.idx), p.idx >= 0),
        attention=False),
    "SegmentationHead": Entry(
        "head", lambda: pnn.SegmentationHead(C, 3, num_categories=2).eval(),
        lambda b, p: b(p.x, p.batch, category=torch.tensor([1, 0], device=p.x.device)),
        attention=False),
    "ClassificationHead": Entry(
        "head", lambda: pnn.ClassificationHead(C, 3).eval(),
        lambda b, p: b(pnn.global_max_pool(p.x, p.batch)), output="clouds", attention=False),
}

# the positional parameters of forward, per calling convention
POSITIONAL = {
    "local": ["x", "pos", "idx"],
    "global": ["x", "batch"],
    "graph": ["x", "edge_index", "edge_attr"],
    "pool": ["x", "batch"],
    "points": ["x", "pos", "batch"],
}


def public_blocks() -> dict[str, object]:
    """Every class that is an ``nn.Module`` and every pooling function in ``pcattn.nn``."""
    out = {}
    for name in pnn.__all__:
        obj = getattr(pnn, name)
        if (isinstance(obj, type) and issubclass(obj, nn.Module)) or name.startswith("global_"):
            out[name] = obj
    return out
