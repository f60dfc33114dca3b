"""SerializedAttention against dense attention computed by hand per patch in float64, and
its guarantees: clouds never mix, permutations, padding, errors."""

from __future__ import annotations

import math

import pytest
import torch

from pcattn.nn import SerializedAttention
from pcattn.ops import serialize

SIZES = (23, 3, 10)  # the middle cloud is smaller than a patch


def clouds(dtype=torch.float64, seed=0, channels=8):
    g = torch.Generator().manual_seed(seed)
    m = sum(SIZES)
    pos = torch.rand(m, 3, generator=g, dtype=dtype)
    x = torch.randn(m, channels, generator=g, dtype=dtype)
    batch = torch.repeat_interleave(torch.arange(len(SIZES)), torch.tensor(SIZES))
    return x, pos, batch


def dense_reference(block, x, pos, batch, order_name):
    """Per cloud: sort by the serialization's code, cut into runs of P, and attend densely
    within each run, one head at a time, with explicit softmax."""
    s = serialize(pos, batch, orders=order_name, grid_size=block.grid_size)
    h = x if block.pos_encoding is None else x + block.pos_encoding(x, pos, s)
    q, k, v = block.lin_qkv(h).chunk(3, dim=-1)
    heads, c = block.heads, block.out_channels
    d = c // heads
    out = torch.zeros(x.shape[0], c, dtype=x.dtype)
    sorted_nodes = s.order[0].tolist()
    for b in range(len(SIZES)):
        nodes = [i for i in sorted_nodes if int(batch[i]) == b]
        for start in range(0, len(nodes), block.patch_size):
            patch = torch.tensor(nodes[start:start + block.patch_size])
            for hh in range(heads):
                cols = slice(hh * d, (hh + 1) * d)
                logits = q[patch, cols] @ k[patch, cols].T / math.sqrt(d)
                out[patch, cols] = torch.softmax(logits, -1) @ v[patch, cols]
    return block.lin_out(out)


@pytest.mark.parametrize("order", ["z", "hilbert-trans"])
@pytest.mark.parametrize("pos_encoding", [None, "grid", "knn"])
def test_matches_dense_attention_per_patch(order, pos_encoding):
    x, pos, batch = clouds()
    block = SerializedAttention(8, 8, heads=2, patch_size=4, order=order, grid_size=0.2,
                                pos_encoding=pos_encoding, k=5).double()
    want = dense_reference(block, x, pos, batch, order)
    torch.testing.assert_close(block(x, pos, batch), want)
    got, amap = block(x, pos, batch, return_attention=True)
    torch.testing.assert_close(got, want)


def test_the_map_is_the_attention_used_and_never_leaves_a_cloud():
    x, pos, batch = clouds()
    block = SerializedAttention(8, 8, heads=2, patch_size=4, grid_size=0.2).double()
    out, amap = block(x, pos, batch, return_attention=True)
    assert amap.kind == "patch" and amap.heads == 2 and amap.weight.shape[2:] == (4, 4)
    query, source, weight = amap.to_sparse()
    assert torch.equal(batch[query], batch[source])
    sums = torch.zeros(x.shape[0], 2, dtype=x.dtype).index_add_(0, query, weight)
    torch.testing.assert_close(sums, torch.ones_like(sums))
    assert torch.bincount(query).max() <= 4  # P keys per query at most
    assert (amap.weight[(amap.idx < 0)[:, None, :, None].expand_as(amap.weight)] == 0).all()
    assert (amap.weight.permute(0, 2, 1, 3)[amap.idx < 0] == 0).all()  # padded queries too


def test_one_cloud_never_changes_another():
    x, pos, batch = clouds()
    block = SerializedAttention(8, 8, heads=2, patch_size=4, grid_size=0.2).double()
    out = block(x, pos, batch)
    x2, pos2 = x.clone(), pos.clone()
    x2[batch == 1] += 5.0
    pos2[batch == 1] = pos2[batch == 1].flip(0) * 3
    out2 = block(x2, pos2, batch)
    torch.testing.assert_close(out2[batch != 1], out[batch != 1])
    alone = block(x[batch == 2], pos[batch == 2])  # the last cloud alone
    torch.testing.assert_close(alone, out[batch == 2])


@pytest.mark.parametrize("pos_encoding", ["grid", "knn"])
def test_permuting_the_points_of_a_cloud_permutes_the_output(pos_encoding):
    x, pos, batch = clouds(seed=1)
    g = torch.Generator().manual_seed(2)
    perm = torch.cat([start + torch.randperm(n, generator=g)
                      for start, n in zip([0, 23, 26], SIZES)])
    block = SerializedAttention(8, 8, heads=2, patch_size=4, grid_size=0.3,
                                pos_encoding=pos_encoding, k=4).double()
    torch.testing.assert_close(block(x[perm], pos[perm], batch), block(x, pos, batch)[perm])


def test_every_parameter_gets_a_gradient_and_padding_none():
    x, pos, batch = clouds(dtype=torch.float32)
    x.requires_grad_(True)
    block = SerializedAttention(8, 16, heads=4, patch_size=8, grid_size=0.2)
    out, amap = block(x, pos, batch, return_attention=True)
    out.square().sum().backward()
    missing = [n for n, p in block.named_parameters() if p.grad is None or not p.grad.any()]
    assert not missing and torch.isfinite(x.grad).all()


def test_gradcheck_through_masked_patches():
    x, pos, batch = clouds()
    block = SerializedAttention(8, 8, heads=2, patch_size=4, grid_size=0.3).double()
    s = block.serialize(pos, batch)
    x = x.requires_grad_(True)
    assert torch.autograd.gradcheck(lambda t: block(t, pos, batch, serialization=s), (x,))


def test_non_contiguous_input():
    x, pos, batch = clouds()
    block = SerializedAttention(8, 8, heads=2, patch_size=4, grid_size=0.2).double()
    x_nc = torch.stack([x, -x], 2)[..., 0]  # strides (16, 2)
    pos_nc = pos.t().contiguous().t()
    assert not x_nc.is_contiguous() and not pos_nc.is_contiguous()
    torch.testing.assert_close(block(x_nc, pos_nc, batch), block(x, pos, batch))


def test_a_shared_serialization_and_the_order_argument():
    x, pos, batch = clouds()
    block = SerializedAttention(8, 8, heads=2, patch_size=4, grid_size=0.2).double()
    s = serialize(pos, batch, grid_size=0.2, neighbors=True)
    for name in s.orders:
        want = dense_reference(block, x, pos, batch, name)
        torch.testing.assert_close(block(x, pos, batch, serialization=s, order=name), want)


def test_a_patch_as_large_as_the_cloud_is_global_attention():
    x, pos, batch = clouds()
    block = SerializedAttention(8, 8, heads=2, patch_size=64, pos_encoding=None).double()
    q, k, v = block.lin_qkv(x[:23]).chunk(3, -1)
    heads = [torch.softmax(q[:, i:i + 4] @ k[:, i:i + 4].T / 2, -1) @ v[:, i:i + 4]
             for i in (0, 4)]
    torch.testing.assert_close(block(x, pos, batch)[:23], block.lin_out(torch.cat(heads, 1)))


def test_bad_arguments_are_named():
    with pytest.raises(ValueError, match="order must be one of"):
        SerializedAttention(8, 8, order="peano")
    with pytest.raises(ValueError, match="pos_encoding must be one of"):
        SerializedAttention(8, 8, pos_encoding="linear")
    with pytest.raises(ValueError, match="divisible by heads"):
        SerializedAttention(8, 6, heads=4)
    with pytest.raises(ValueError, match="grid_size"):
        SerializedAttention(8, 8, grid_size=0.0)
    x, pos, batch = clouds(dtype=torch.float32)
    block = SerializedAttention(8, 8, heads=2, patch_size=4)
    s = serialize(pos[:10], batch[:10], orders="hilbert")
    with pytest.raises(ValueError, match="serialize this level's pos"):
        block(x, pos, batch, serialization=s)
    s = serialize(pos, batch, orders="hilbert")
    with pytest.raises(ValueError, match="pass orders= including it"):
        block(x, pos, batch, serialization=s, order="z")
    with pytest.raises(ValueError, match=r"pos must be \[36, 3\]"):
        block(x, pos[:5], batch)
