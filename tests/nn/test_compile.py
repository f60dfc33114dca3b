"""Blocks without host synchronisation: ``torch.compile(fullgraph=True)`` traces them in one
graph (no ``.item()`` / ``.tolist()`` in the input checks), and a forward on ``meta``
tensors gives the output shapes. Blocks whose output shapes depend on the values of
``batch`` (the clouds' sizes) are not in the list: their graphs break where the sizes are
read."""

from __future__ import annotations

import pytest
import torch

from blockzoo import ZOO, Problem, problem

ONE_GRAPH = [
    "PointTransformerLayer", "PointTransformerBlock", "PTv2Block", "NadarayaWatsonBlock",
    "LocalSelfAttention", "GroupedVectorAttention", "NadarayaWatsonLayer", "GraphAttention",
    "GraphAttentionBlock", "AttentionPool",
    "SqueezeExcitation", "EfficientChannelAttention", "TNet", "global_max_pool",
    "global_mean_pool", "PointEmbedding", "FourierPositionalEncoding",
    "LearnedPositionalEncoding", "RelativePositionalEncoding", "SegmentationHead",
    "ClassificationHead",
]
# traced in the default run (a few seconds each): the blocks whose checks read idx,
# edge_index or batch; the others are traced with the slow tests
TRACED_FAST = ["PointTransformerLayer", "LocalSelfAttention", "GroupedVectorAttention",
               "NadarayaWatsonLayer", "GraphAttention", "global_max_pool"]


def _built(name):
    torch.manual_seed(0)
    return ZOO[name].make()


def _outputs(out):
    return out if isinstance(out, tuple) else (out,)


@pytest.mark.parametrize("name", [n if n in TRACED_FAST else pytest.param(
    n, marks=pytest.mark.slow) for n in ONE_GRAPH])
def test_traces_in_one_graph(name):
    """Dynamo alone (``backend="eager"``): a graph break is an error with fullgraph. Blocks
    with attention maps trace with ``return_attention=True``, the longer path."""
    torch._dynamo.reset()
    p, block, entry = problem(), _built(name), ZOO[name]
    kw = {"return_attention": True} if entry.attention else {}
    compiled = torch.compile(lambda q: entry.run(block, q, **kw), backend="eager",
                             fullgraph=True)
    for got, want in zip(_outputs(compiled(p)), _outputs(entry.run(block, p, **kw))):
        for a, b in zip(_outputs(got), _outputs(want)):  # an AttentionMap is a tuple too
            if isinstance(a, torch.Tensor):
                torch.testing.assert_close(a, b)


def _meta(p: Problem) -> Problem:
    return Problem(*(getattr(p, f).to("meta") for f in ("x", "pos", "batch", "idx",
                                                         "edge_index")),
                   tuple(t.to("meta") for t in p.coarse))


@pytest.mark.parametrize("name", [n for n in ONE_GRAPH if n not in (
    "global_max_pool", "global_mean_pool", "AttentionPool", "SqueezeExcitation",
    "EfficientChannelAttention", "TNet", "SegmentationHead", "ClassificationHead")])
def test_meta_forward_gives_the_shapes(name):
    """Shape inference without data (FSDP-style init on ``meta``); pooling blocks count the
    clouds from ``batch``'s values, so they need real tensors."""
    p, block, run = problem(), _built(name), ZOO[name].run
    want = _outputs(run(block, p))
    got = _outputs(run(block.to("meta"), _meta(p)))
    assert [t.shape for t in got if isinstance(t, torch.Tensor)] == \
        [t.shape for t in want if isinstance(t, torch.Tensor)]
    assert all(t.device.type == "meta" for t in got if isinstance(t, torch.Tensor))


@pytest.mark.slow
@pytest.mark.parametrize("name", ONE_GRAPH)
def test_compiles_and_matches_eager(name):
    """The whole compiler (inductor), forward and backward, in one graph."""
    torch._dynamo.reset()
    p, block, run = problem(), _built(name), ZOO[name].run
    compiled = torch.compile(lambda q: run(block, q), fullgraph=True)
    got, want = _outputs(compiled(p)), _outputs(run(block, p))
    for a, b in zip(got, want):
        torch.testing.assert_close(a, b, rtol=1e-4, atol=1e-5)
    if isinstance(block, torch.nn.Module) and any(q.requires_grad for q in block.parameters()):
        got[0].float().sum().backward()
