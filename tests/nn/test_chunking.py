"""Row chunking with recomputation gives the same outputs and gradients as one pass."""

from __future__ import annotations

import warnings

import pytest
import torch

import pcattn.nn as pnn
from pcattn import ops
from pcattn.nn.chunking import chunked_rows, table_windows


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


def _counting(fn):
    calls = []

    def wrapped(*args):
        calls.append(args[0].shape[0])
        return fn(*args)
    return wrapped, calls


# 42 elements in all: a budget of exactly 42 is not exceeded, so nothing is recomputed
@pytest.mark.parametrize("recompute_above, passes",
                         [(None, 1), (1000, 1), (42, 1), (41, 2), (0, 2)])
def test_chunks_recomputed_only_above_the_budget(recompute_above, passes):
    table = torch.randn(3, requires_grad=True)
    rows = torch.arange(42.0)[:, None]  # 42 rows of 1 element
    fn, calls = _counting(lambda r, t: (r * t.sum(),))
    out, = chunked_rows(fn, (rows,), (table,), chunk_size=10, row_elems=1, keep=(True,),
                        recompute_above=recompute_above)
    out.sum().backward()
    assert sorted(calls) == sorted([10, 10, 10, 10, 2] * passes)  # backward goes in reverse
    torch.testing.assert_close(table.grad, torch.full((3,), rows.sum().item()))


def test_chunk_size_auto_and_none():
    rows = torch.zeros(2**14, 1)
    fn, calls = _counting(lambda r: (r + 1,))
    chunked_rows(fn, (rows,), (), chunk_size="auto", row_elems=64, keep=(True,))
    assert calls == [2**19 // 64] * 2  # CPU: cache-sized chunks of CPU_CHUNK elements
    calls.clear()
    chunked_rows(fn, (rows.requires_grad_(True),), (), chunk_size=None, row_elems=64,
                 keep=(True,), recompute_above=0)
    assert calls == [2**14]  # None: one chunk, never recomputed
    with pytest.raises(ValueError, match="chunk_size must be"):
        chunked_rows(fn, (rows,), (), chunk_size="big", row_elems=1, keep=(True,))


@pytest.mark.parametrize("block", ["PointTransformerLayer", "GroupedVectorAttention",
                                   "LocalSelfAttention"])
def test_bad_chunking_options_name_the_block(block):
    with pytest.raises(TypeError, match=f"{block}: chunk_size"):
        getattr(pnn, block)(8, 8, chunk_size="big")
    with pytest.raises(ValueError, match=f"{block}: recompute_above"):
        getattr(pnn, block)(8, 8, recompute_above=-1)
    assert getattr(pnn, block)(8, 8, chunk_size="auto", recompute_above=0).recompute_above == 0


def test_two_chunks_are_both_returned():
    rows = torch.arange(42.0)[:, None]
    fn, calls = _counting(lambda r: (r * 2,))
    out, = chunked_rows(fn, (rows,), (), chunk_size=21, row_elems=1, keep=(True,))
    assert calls == [21, 21]
    torch.testing.assert_close(out, rows * 2)


def test_chunk_smaller_than_a_row_holds_one_row():
    rows = torch.arange(12.0).view(4, 3)
    fn, calls = _counting(lambda r: (r + 1,))
    out, = chunked_rows(fn, (rows,), (), chunk_size=1, row_elems=3, keep=(True,))
    assert calls == [1, 1, 1, 1]
    torch.testing.assert_close(out, rows + 1)


def test_recomputed_chunks_work_with_autograd_grad():
    """Non-reentrant checkpointing: ``torch.autograd.grad`` (gradient penalties, double
    backward) works through recomputed chunks, without checkpoint's warning."""
    table = torch.randn(3, requires_grad=True)
    rows = torch.arange(42.0)[:, None]
    with warnings.catch_warnings():
        warnings.simplefilter("error")
        out, = chunked_rows(lambda r, t: (r * t.sum(),), (rows,), (table,), chunk_size=10,
                            row_elems=1, keep=(True,), recompute_above=0)
        grad, = torch.autograd.grad(out.sum(), table)
    torch.testing.assert_close(grad, torch.full((3,), rows.sum().item()))


# clouds of 4, 2 and 4 nodes, each node's neighbours in its own cloud
THREE_CLOUDS = torch.tensor([[1, 0], [0, 3], [2, 3], [3, -1],  # cloud 0: rows and nodes 0-3
                             [5, 4], [4, -1],  # cloud 1: 4-5
                             [6, 9], [7, 8], [8, 9], [9, 6]])  # cloud 2: 6-9


def test_table_windows_follow_the_clouds():
    idx = THREE_CLOUDS
    # chunks of 2 rows: chunks 0-1 read nodes 0-3, chunk 2 nodes 4-5, chunks 3-4 nodes 6-9
    assert table_windows(idx, 2, 10) == [(0, 0), (2, 4), (3, 6)]
    # chunks of 3 rows: chunk 1 (rows 3-5) reads 3-5, so it shares chunk 0's window
    assert table_windows(idx, 3, 10) == [(0, 0), (2, 6)]


def test_table_windows_fall_back_to_the_whole_table():
    # row 2 (in chunk 1) reads node 0: no cut between chunks 0 and 1
    idx = torch.tensor([[1], [0], [0], [3]])
    assert table_windows(idx, 2, 4) == [(0, 0)]
    assert table_windows(idx, 4, 4) == [(0, 0)]  # one chunk
    assert table_windows(idx[:, :0], 1, 4) == [(0, 0)]  # no neighbours at all
    assert table_windows(idx[:0], 1, 4) == [(0, 0)]  # no rows


def test_table_windows_rows_without_neighbours_join_any_window():
    # chunk 1 has no neighbours: it cuts both ways; nodes 2-4 go to the last window
    idx = torch.tensor([[0, 1], [1, 0], [-1, -1], [-1, -1], [4, -1], [3, 2]])
    assert table_windows(idx, 2, 6) == [(0, 0), (1, 2), (2, 2)]


def test_chunks_gather_from_their_window():
    """Each chunk sees its window with a zero row, and indices shifted into it; the table's
    gradient is the same as gathering from the whole table."""
    table = torch.randn(10, 3, requires_grad=True)
    idx = THREE_CLOUDS
    seen = []

    def fn(i, t):
        seen.append((t.shape[0], int(i.max())))
        assert torch.equal(t[-1], torch.zeros(3))
        return (ops.gather(t[:-1], i).sum(1),)

    out, = chunked_rows(fn, (idx,), (), chunk_size=2, row_elems=1, keep=(True,),
                        tables=(table,), index=0)
    assert seen == [(5, 3), (5, 3), (3, 1), (5, 3), (5, 3)]  # window sizes + 1; local ids
    torch.testing.assert_close(out, ops.gather(table, idx).sum(1))
    out.pow(2).sum().backward()
    ref = table.detach().clone().requires_grad_(True)
    ops.gather(ref, idx).sum(1).pow(2).sum().backward()
    torch.testing.assert_close(table.grad, ref.grad)
    with pytest.raises(ValueError, match="tables need index="):
        chunked_rows(fn, (idx,), (), chunk_size=2, row_elems=1, keep=(True,), tables=(table,))
