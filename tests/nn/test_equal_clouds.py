"""The blocks that sample, search or go dense take ``equal_clouds=B`` (clouds of equal size,
sizes from the shapes, as a traced model passes it) and give what they give without it."""

from __future__ import annotations

import pytest
import torch

from pcattn.nn import (
    NadarayaWatsonPool,
    NeighborEmbedding,
    OffsetAttention,
    TransitionDown,
    TransitionUp,
)
from pcattn.ops import knn

B, N = 2, 24


def _clouds(c=8, seed=0):
    g = torch.Generator().manual_seed(seed)
    return (torch.randn(B * N, c, generator=g), torch.rand(B * N, 3, generator=g),
            torch.arange(B).repeat_interleave(N))


def _same(got, want):
    for a, b in zip(got if isinstance(got, tuple) else (got,),
                    want if isinstance(want, tuple) else (want,)):
        torch.testing.assert_close(a, b)


def test_transitions():
    torch.manual_seed(0)
    x, pos, batch = _clouds()
    down, up = TransitionDown(8, 16, k=4), TransitionUp(16, 8)
    idx = knn(pos, 4, batch)
    for kw in ({}, {"neighbors": idx}):
        _same(down(x, pos, batch, equal_clouds=B, **kw), down(x, pos, batch, **kw))
    h, pos_s, batch_s, _ = down(x, pos, batch)
    args = dict(x_skip=x, query=pos, query_batch=batch)
    _same(up(h, pos_s, batch_s, equal_clouds=B, **args), up(h, pos_s, batch_s, **args))


def test_neighbor_embedding_and_offset_attention():
    torch.manual_seed(0)
    x, pos, batch = _clouds(c=3)
    embed, attn = NeighborEmbedding(3, 16, hidden_channels=8, k=4), OffsetAttention(16)
    got, want = embed(x, pos, batch, equal_clouds=B), embed(x, pos, batch)
    _same(got, want)
    _same(attn(got[0], got[2], equal_clouds=B), attn(want[0], want[2]))


@pytest.mark.parametrize("k", [None, 3])
def test_nadaraya_watson_pool(k):
    x, pos, batch = _clouds()
    pool = NadarayaWatsonPool(k=k)
    (got, got_map), (want, want_map) = (pool(x, pos, batch, return_attention=True, **kw)
                                        for kw in ({"equal_clouds": B}, {}))
    _same((got, got_map.weight, got_map.idx), (want, want_map.weight, want_map.idx))
    query, query_batch = pos[::4], batch[::4]
    _same(pool(x, pos, batch, query=query, query_batch=query_batch, equal_clouds=B),
          pool(x, pos, batch, query=query, query_batch=query_batch))
