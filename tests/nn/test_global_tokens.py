from __future__ import annotations

import pytest
import torch
from torch import nn

from pcattn.nn import PointTransformerBlock
from pcattn.nn.global_tokens import GlobalTokens
from pcattn.nn.positional_encoding import LearnedPositionalEncoding
from pcattn.ops.knn import knn
import helpers
from helpers import layer_norm, linear, randomize_norms, softmax


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


def test_two_heads_with_neighbours_by_hand(device):
    """Both steps written out per head, with the 1/sqrt(D) scaling of Vaswani et al.:
    g' = g + W_o^tok [softmax(q_t k^T / sqrt(D)) v]_h over [tokens; nodes], then
    y_i = x_i + W_o^node [softmax(q_i k^T / sqrt(D)) v]_h over [g'; valid neighbours]."""
    x, _ = clouds([6], 8, device)
    x = 3 * x  # large logits: a wrong scale changes the softmax a lot
    _, pos, _ = helpers.clouds([6], 1, device)
    idx = knn(pos, 4)
    idx[0, 3] = -1  # one padded neighbour
    block = GlobalTokens(8, num_tokens=2, heads=2).to(device)
    randomize_norms(block)
    with torch.no_grad():
        block.tokens.normal_()
    c, d = 8, 4
    xn = layer_norm(x, block.norm_nodes)
    g = block.tokens
    gn = layer_norm(g, block.norm_tokens)
    kv = linear(torch.cat([gn, xn]), block.lin_kv_tok)  # [T + N, 2C]
    q = linear(gn, block.lin_q_tok)  # [T, C]
    w_tok, o = [], []
    for h in range(2):
        hs = slice(d * h, d * h + d)
        a = softmax(q[:, hs] @ kv[:, hs].T / d ** 0.5)  # [T, T + N]
        w_tok.append(a)
        o.append(a @ kv[:, c:][:, hs])
    g2 = g + linear(torch.cat(o, -1), block.lin_out_tok)  # [T, C]
    kv_g = linear(layer_norm(g2, block.norm_tokens_out), block.lin_kv_node)  # [T, 2C]
    kv_x = linear(xn, block.lin_kv_node)  # [N, 2C]
    q = linear(xn, block.lin_q_node)  # [N, C]
    rows = []
    for i in range(6):
        keys = torch.cat([kv_g, kv_x[idx[i][idx[i] >= 0]]])  # [T + K_i, 2C]
        o = [softmax(q[i, d * h:d * h + d] @ keys[:, d * h:d * h + d].T / d ** 0.5)
             @ keys[:, c + d * h:c + d * h + d] for h in range(2)]
        rows.append(torch.cat(o))
    ref = x + linear(torch.stack(rows), block.lin_out_node)
    torch.testing.assert_close(block.update_tokens(x)[0], g2)
    torch.testing.assert_close(block(x, idx=idx), ref)
    out, amap = block(x, idx=idx, return_attention=True)
    torch.testing.assert_close(out, ref)
    # token t (node 6 + t) reads token s (node 6 + s) and node j with weight w_tok[h][t, .]
    src, tgt = amap.edge_index
    for t in range(2):
        into = tgt == 6 + t
        order = torch.where(src[into] >= 6, src[into] - 6, src[into] + 2)  # column of w_tok
        for h in range(2):
            torch.testing.assert_close(amap.weight[into, h], w_tok[h][t, order])


def test_defaults_errors_and_update_tokens_with_pos_encoding(device):
    block = GlobalTokens(8)
    assert (block.num_tokens, block.heads) == (4, 4)
    with pytest.raises(ValueError, match="in_channels=6 is not divisible by heads=4"):
        GlobalTokens(6)
    x, batch = clouds([5, 3], 8, device)
    pos = torch.randn(8, 3, device=device)
    pe = nn.Linear(3, 8).to(device)
    block = GlobalTokens(8, num_tokens=2, heads=2, pos_encoding=pe).to(device)
    plain = GlobalTokens(8, num_tokens=2, heads=2).to(device)
    plain.load_state_dict(block.state_dict(), strict=False)
    torch.testing.assert_close(block.update_tokens(x, batch, pos=pos),
                               plain.update_tokens(x + pe(pos), batch))
    out, amap = block(x, batch, pos=pos, return_attention=True)
    torch.testing.assert_close(out, plain(x + pe(pos), batch))
    assert amap.edge_index.dtype == torch.long
