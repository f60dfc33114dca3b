from __future__ import annotations

import pytest
import torch
from torch import nn

from pcattn.nn.global_tokens import GlobalTokens
from pcattn.nn.point_transformer import PointTransformerBlock
from pcattn.nn.positional_encoding import LearnedPositionalEncoding
from pcattn.ops.knn import knn


def clouds(sizes, c, device, dtype=torch.float32):
    x = torch.randn(sum(sizes), c, device=device, dtype=dtype)
    batch = torch.repeat_interleave(torch.arange(len(sizes), device=device),
                                    torch.tensor(sizes, device=device))
    return x, batch


def test_shapes_and_weights(device):
    x, batch = clouds([5, 3], 8, device)
    block = GlobalTokens(8, num_tokens=2, heads=2).to(device)
    out, attn = block(x, batch, return_attention=True)
    tokens = block.update_tokens(x, batch)
    assert out.shape == (8, 8) and tokens.shape == (2, 2, 8)
    assert attn.kind == "graph" and attn.num_sources == 8 + 2 * 2
    # into each token: 2 tokens + the nodes of its cloud; into each node: the 2 tokens
    tgt, src = attn.edge_index[1], attn.edge_index[0]
    counts = torch.bincount(tgt, minlength=12).tolist()
    assert counts == [2] * 8 + [7, 7, 5, 5]
    sums = torch.zeros(12, 2, device=device).index_add_(0, tgt, attn.weight)
    torch.testing.assert_close(sums, torch.ones(12, 2, device=device))
    # cloud 1's tokens (10, 11) read nodes 5..7 and tokens 10, 11 only
    assert set(src[tgt == 10].tolist()) == {5, 6, 7, 10, 11}
    assert set(src[tgt == 6].tolist()) == {10, 11}
    torch.testing.assert_close(block(x, batch), out)  # fused path, same numbers


def test_closed_form_one_head_no_norm(device):
    x, _ = clouds([4], 4, device)
    block = GlobalTokens(4, num_tokens=1, heads=1, norm_layer=nn.Identity).to(device)
    g = block.tokens  # [1, C]
    seq = torch.cat([g, x])  # [1 + N, C]
    k, v = block.lin_kv_tok(seq).chunk(2, -1)
    w = torch.softmax(block.lin_q_tok(g) @ k.T / 2.0, -1)  # sqrt(D) = 2
    g2 = g + block.lin_out_tok(w @ v)  # [1, C]
    k2, v2 = block.lin_kv_node(g2).chunk(2, -1)
    # one token: every node's softmax over one key is 1, so it reads v2 exactly
    expect = x + block.lin_out_node(v2.expand(4, -1))
    out, tokens = block(x), block.update_tokens(x)
    torch.testing.assert_close(tokens[0], g2)
    torch.testing.assert_close(out, expect)


@pytest.mark.parametrize("local", [False, True])
def test_permutation_equivariance(device, local):
    x, batch = clouds([7, 4], 8, device)
    pos = torch.randn(11, 3, device=device)
    block = GlobalTokens(8, num_tokens=3, heads=2).to(device)
    perm = torch.cat([torch.randperm(7), 7 + torch.randperm(4)]).to(device)
    idx = knn(pos, 3, batch) if local else None
    idx_p = knn(pos[perm], 3, batch) if local else None
    torch.testing.assert_close(block(x[perm], batch, idx=idx_p),
                               block(x, batch, idx=idx)[perm])


def test_batched_equals_alone(device):
    x, batch = clouds([6, 3], 8, device)
    pos = torch.randn(9, 3, device=device)
    block = GlobalTokens(8, num_tokens=2, heads=2).to(device)
    idx = knn(pos, 4, batch)  # the small cloud has -1 neighbours
    out, attn = block(x, batch, idx=idx, return_attention=True)
    out1, attn1 = block(x[6:], None, idx=knn(pos[6:], 4), return_attention=True)
    idx0 = knn(pos[:6], 4)
    torch.testing.assert_close(out, torch.cat([block(x[:6], idx=idx0), out1]))
    torch.testing.assert_close(block.update_tokens(x, batch)[1], block.update_tokens(x[6:])[0])
    # cloud 1 alone: nodes 0..2, tokens 3, 4; batched: nodes 6..8, tokens 9+2=11, 12
    def triples(amap, shift_node, shift_token, m):
        q, s, w = amap.to_sparse()
        ren = lambda t: torch.where(t < m, t + shift_node, t + shift_token)  # noqa: E731
        return {(int(a), int(b)): w_ for a, b, w_ in zip(ren(q), ren(s), w)}
    alone = triples(attn1, 6, 11 - 3, 3)
    both = {k: v for k, v in triples(attn, 0, 0, 9).items() if k[0] in (6, 7, 8, 11, 12)}
    assert alone.keys() == both.keys()
    for key, w in alone.items():
        torch.testing.assert_close(both[key], w)
    # -1 neighbours of the 3-node cloud are no edges: 2 tokens + 3 neighbours per node
    assert torch.bincount(attn.edge_index[1])[6:9].tolist() == [5, 5, 5]


def test_no_gradient_across_clouds_or_from_padding(device):
    x, batch = clouds([6, 3], 8, device)
    x.requires_grad_(True)
    block = GlobalTokens(8, num_tokens=2, heads=2).to(device)
    out, tokens = block(x, batch), block.update_tokens(x, batch)
    (out[6:].sum() + tokens[1].sum()).backward()
    assert (x.grad[:6] == 0).all()
    assert (x.grad[6:].abs().sum(-1) > 0).all()


def test_all_parameters_get_gradients(device):
    x, batch = clouds([5, 3], 8, device)
    pos = torch.randn(8, 3, device=device)
    block = GlobalTokens(8, num_tokens=2, heads=2,
                         pos_encoding=LearnedPositionalEncoding(8)).to(device)
    block(x, batch, pos=pos, idx=knn(pos, 3, batch)).square().sum().backward()
    for name, p in block.named_parameters():
        assert p.grad is not None and p.grad.abs().sum() > 0, name


def test_gradcheck(device):
    x, batch = clouds([3, 2], 4, device, torch.float64)
    pos = torch.randn(5, 3, device=device, dtype=torch.float64)
    idx = knn(pos, 3, batch)
    x.requires_grad_(True)
    block = GlobalTokens(4, num_tokens=2, heads=2).to(device, torch.float64)
    assert torch.autograd.gradcheck(lambda t: block(t, batch, idx=idx), (x,))
    assert torch.autograd.gradcheck(
        lambda t: block.update_tokens(t, batch), (x,))


def test_composes_with_a_local_block(device):
    x, batch = clouds([6, 4], 8, device)
    pos = torch.randn(10, 3, device=device)
    idx = knn(pos, 3, batch)
    local = PointTransformerBlock(8).to(device)
    glob = GlobalTokens(8, num_tokens=2, heads=2).to(device)
    out = glob(local(x, pos, idx), batch)
    assert out.shape == (10, 8)
    # a node far from another in kNN terms still hears it through the tokens
    x2 = x.clone()
    x2[5] += 1.0  # node 5 of cloud 0; node 0 is not its neighbour unless knn says so
    far = [i for i in range(6) if 5 not in idx[i].tolist()]
    assert far, "expected a node that does not have node 5 as a neighbour"
    local_only = local(x2, pos, idx) - local(x, pos, idx)
    assert (local_only[far] == 0).all()
    diff = glob(local(x2, pos, idx), batch) - out
    assert (diff[far].abs().sum(-1) > 0).all() and (diff[6:] == 0).all()
