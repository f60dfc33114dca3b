"""Every local block reads a PyG ``edge_index`` as well as ``idx``: the same numbers as the
converted neighbourhoods, self loops as documented, and one clear error per slip."""

from __future__ import annotations

import pytest
import torch

from blockzoo import ZOO, problem
from pcattn import ops

LOCAL = sorted(name for name, entry in ZOO.items() if entry.kind == "local")


def graph(m=12, e=40, seed=0, loops=False):
    """A random directed graph on ``m`` nodes with repeated targets; self loops kept only
    when ``loops``; node ``m - 1`` receives no edge."""
    g = torch.Generator().manual_seed(seed)
    src = torch.randint(0, m, (e,), generator=g)
    dst = torch.randint(0, m - 1, (e,), generator=g)
    keep = torch.ones(e, dtype=torch.bool) if loops else src != dst
    return torch.stack([src[keep], dst[keep]])


def _block(name, **kw):
    torch.manual_seed(0)
    block = ZOO[name].make()
    for key, value in kw.items():  # the flag lives on the layer of PointTransformerBlock
        setattr(getattr(block, "attn", block), key, value)
    return block.double()


@pytest.mark.parametrize("name", LOCAL)
def test_edge_index_gives_the_converted_neighbourhoods(name):
    p = problem(dtype=torch.float64)
    ei = graph(p.x.shape[0], loops=True)
    block = _block(name)
    idx = ops.edge_index_to_neighbors(ei, p.x.shape[0], add_self_loops=True)
    assert (idx[:, 0] == torch.arange(p.x.shape[0])).all()  # the centre first
    out, amap = block(p.x, p.pos, edge_index=ei, return_attention=True)
    torch.testing.assert_close(out, block(p.x, p.pos, idx), rtol=0, atol=0)
    assert torch.equal(amap.idx, idx)
    raw = ops.edge_index_to_neighbors(ei, p.x.shape[0])
    block_raw = _block(name, add_self_loops=False)
    torch.testing.assert_close(block_raw(p.x, p.pos, edge_index=ei), block_raw(p.x, p.pos, raw),
                               rtol=0, atol=0)


@pytest.mark.parametrize("name", LOCAL)
def test_self_loops_are_added_once_and_change_the_output(name):
    """A graph without self loops: the default makes the centre a neighbour (the output
    moves); a graph that has them already gives the same output as without them."""
    p = problem(dtype=torch.float64)
    m = p.x.shape[0]
    ei = graph(m)
    loops = torch.arange(m).repeat(2, 1)
    block = _block(name)
    with_loops = block(p.x, p.pos, edge_index=ei)
    torch.testing.assert_close(block(p.x, p.pos, edge_index=torch.cat([ei, loops], 1)),
                               with_loops)
    without = _block(name, add_self_loops=False)(p.x, p.pos, edge_index=ei)
    assert (with_loops - without).abs().max() > 1e-3


def test_edge_index_passed_as_idx_names_the_keyword_and_the_conversion():
    p = problem()
    block = ZOO["PointTransformerLayer"].make()
    with pytest.raises(ValueError) as err:
        block(p.x, p.pos, p.edge_index)
    m, e = p.x.shape[0], p.edge_index.shape[1]
    assert str(err.value) == (
        f"PointTransformerLayer: idx must be [{m}, K] (one row per row of x), got [2, {e}], "
        "which looks like a PyG edge_index [2, E]; pass it as edge_index=edge_index, or "
        f"convert it with pcattn.ops.edge_index_to_neighbors(edge_index, {m}, "
        "add_self_loops=True) (add_self_loops: each node its own neighbour, as in PyG's convs)")


def test_global_tokens_names_only_the_conversion():
    p = problem()
    block = ZOO["GlobalTokens"].make()
    with pytest.raises(ValueError, match=r"got \[2, \d+\], which looks like a PyG edge_index "
                                         r"\[2, E\]; convert it with pcattn.ops"):
        block(p.x, p.batch, idx=p.edge_index)


@pytest.mark.parametrize("call, error, message", [
    (lambda b, p: b(p.x, p.pos), TypeError,
     "LocalSelfAttention: no neighbourhoods given: pass idx [M, K] (e.g. "
     "pcattn.ops.knn(pos, k, batch)) or edge_index=[2, E]"),
    (lambda b, p: b(p.x, p.pos, p.idx, edge_index=p.edge_index), TypeError,
     "LocalSelfAttention: got both idx and edge_index; pass one of them"),
    (lambda b, p: b(p.x, p.pos, edge_index=p.edge_index.t()), ValueError,
     "LocalSelfAttention: edge_index must be [2, E] (row 0 source, row 1 target, as in PyG), "
     "got [51, 2]"),
    (lambda b, p: b(p.x, p.pos, edge_index=p.edge_index.float()), TypeError,
     "LocalSelfAttention: edge_index must hold integer node indices, got torch.float32; cast "
     "it with edge_index.long()"),
    (lambda b, p: b(p.x, p.pos, edge_index=p.edge_index + 1), ValueError,
     "LocalSelfAttention: edge_index holds 11, outside [0, 11) for 11 nodes"),
    (lambda b, p: b(p.x, p.pos.double(), edge_index=p.edge_index), TypeError,
     "LocalSelfAttention: pos must have x's dtype torch.float32, got torch.float64; cast it "
     "with pos.to(x.dtype)"),
])
def test_edge_index_slips_are_one_clear_error(call, error, message):
    p = problem()
    assert p.edge_index.shape == (2, 51)
    with pytest.raises(error) as err:
        call(ZOO["LocalSelfAttention"].make(), p)
    assert str(err.value) == message


def test_local_attention_comes_back_on_the_graph_given():
    """``to_sparse()`` of a local map on an ``edge_index`` with self loops holds exactly
    the graph's edges, as PyG's (source, target) pairs."""
    p = problem(dtype=torch.float64)
    m = p.x.shape[0]
    ei = torch.cat([graph(m), torch.arange(m).repeat(2, 1)], 1)
    _, amap = _block("LocalSelfAttention")(p.x, p.pos, edge_index=ei, return_attention=True)
    query, source, weight = amap.to_sparse()
    assert sorted(zip(source.tolist(), query.tolist())) == sorted(zip(*ei.tolist()))
    total = torch.zeros(m, 2, dtype=weight.dtype).index_add_(0, query, weight)  # per query
    torch.testing.assert_close(total, torch.ones_like(total))
