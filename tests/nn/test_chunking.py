"""Row chunking with recomputation gives the same outputs and gradients as one pass."""

from __future__ import annotations

import pytest
import torch

import pcattn.nn as pnn
from pcattn import ops
from pcattn.nn.chunking import chunked_rows


def test_chunked_rows_concatenates_and_skips_unkept():
    table = torch.randn(5, 2, requires_grad=True)
    rows = torch.arange(7.0)[:, None]

    def fn(r, t):
        return r * t.sum(), r + 1

    out, dropped = chunked_rows(fn, (rows,), (table,), chunk_size=2, row_elems=1,
                                keep=(True, False))
    assert dropped is None
    torch.testing.assert_close(out, rows * table.sum())
    out.sum().backward()
    torch.testing.assert_close(table.grad, torch.full((5, 2), rows.sum().item()))


@pytest.mark.parametrize("block", ["PointTransformerLayer", "GroupedVectorAttention",
                                   "LocalSelfAttention"])
@pytest.mark.parametrize("chunk_size", [1, 100])
def test_local_blocks_chunked_equal_whole(block, chunk_size):
    g = torch.Generator().manual_seed(0)
    pos, x = torch.rand(42, 3, generator=g), torch.randn(42, 8, generator=g)
    batch = torch.repeat_interleave(torch.arange(2), torch.tensor([30, 12]))
    idx = torch.cat([ops.knn(pos, 5, batch), torch.full((42, 1), -1)], dim=1)
    whole = getattr(pnn, block)(8, 8, chunk_size=None)
    part = getattr(pnn, block)(8, 8, chunk_size=chunk_size)
    part.load_state_dict(whole.state_dict())
    xa, xb = x.clone().requires_grad_(True), x.clone().requires_grad_(True)
    out_a, w_a = whole(xa, pos, idx, return_attention=True)
    w_a = w_a.weight
    out_b, w_b = part(xb, pos, idx, return_attention=True)
    w_b = w_b.weight
    torch.testing.assert_close(out_b, out_a)
    torch.testing.assert_close(w_b, w_a)
    out_a.pow(2).sum().backward()
    out_b.pow(2).sum().backward()
    torch.testing.assert_close(xb.grad, xa.grad)
    for (name, p), q in zip(part.named_parameters(), whole.parameters()):
        torch.testing.assert_close(p.grad, q.grad, msg=name)
