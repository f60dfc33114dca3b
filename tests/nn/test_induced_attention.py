from __future__ import annotations

import pytest
import torch

from pcattn.nn.induced_attention import InducedSetAttention
from pcattn.nn.positional_encoding import LearnedPositionalEncoding
from helpers import features, layer_norm, linear, randomize_norms, softmax


def mha(q_in, kv_in, lin_q, lin_kv, lin_out, heads):
    """Multi-head attention of one set of queries over one set of keys, written out."""
    q = linear(q_in, lin_q)
    k, v = linear(kv_in, lin_kv).chunk(2, -1)
    d = q.shape[-1] // heads
    outs = []
    for h in range(heads):
        s = slice(h * d, (h + 1) * d)
        outs.append(softmax(q[:, s] @ k[:, s].T / d ** 0.5) @ v[:, s])
    return linear(torch.cat(outs, -1), lin_out)


def reference(block, x, batch):
    """Set Transformer's ISAB per cloud: H = MAB(I, X), y = MHA(X, H)."""
    outs = []
    for b in range(int(batch.max()) + 1):
        xb, ind = x[batch == b], block.inducing
        hid = layer_norm(ind + mha(ind, xb, block.lin_q_ind, block.lin_kv_nodes,
                                   block.lin_out_ind, block.heads), block.norm_ind)
        hid = layer_norm(hid + torch.relu(linear(hid, block.lin_ff)), block.norm_ff)
        outs.append(mha(xb, hid, block.lin_q, block.lin_kv, block.lin_out, block.heads))
    return torch.cat(outs)


def test_matches_set_transformer_formula_float64(device):
    x, batch = features([7, 3, 5], 6, device, torch.float64)
    block = InducedSetAttention(6, 8, heads=2, num_inducing=3).to(device, torch.float64)
    randomize_norms(block)
    out, amap = block(x, batch, return_attention=True)
    expect = reference(block, x, batch)
    torch.testing.assert_close(out, expect)
    torch.testing.assert_close(block(x, batch), expect)  # the fused path


def test_attention_map_edges_and_sums(device):
    x, batch = features([5, 3], 8, device)
    block = InducedSetAttention(8, heads=2, num_inducing=2).to(device)
    _, amap = block(x, batch, return_attention=True)
    assert amap.kind == "graph" and amap.num_sources == 8 + 2 * 2
    src, tgt = amap.edge_index
    # into each node: the 2 inducing points of its cloud; into each point: its cloud's nodes
    assert torch.bincount(tgt, minlength=12).tolist() == [2] * 8 + [5, 5, 3, 3]
    assert set(src[tgt == 10].tolist()) == {5, 6, 7} and set(src[tgt == 6].tolist()) == {10, 11}
    sums = torch.zeros(12, 2, device=device).index_add_(0, tgt, amap.weight)
    torch.testing.assert_close(sums, torch.ones(12, 2, device=device))


def test_permutation_equivariance_and_batched_equals_alone(device):
    x, batch = features([7, 4], 8, device)
    block = InducedSetAttention(8, heads=2, num_inducing=3).to(device)
    perm = torch.cat([torch.randperm(7), 7 + torch.randperm(4)]).to(device)
    out = block(x, batch)
    torch.testing.assert_close(block(x[perm], batch), out[perm])
    torch.testing.assert_close(out[7:], block(x[7:]))
    torch.testing.assert_close(block.induce(x, batch)[1], block.induce(x[7:])[0])


def test_no_gradient_across_clouds(device):
    x, batch = features([6, 3], 8, device)
    x.requires_grad_(True)
    block = InducedSetAttention(8, heads=2, num_inducing=2).to(device)
    block(x, batch)[6:].sum().backward()
    assert (x.grad[:6] == 0).all() and (x.grad[6:].abs().sum(-1) > 0).all()


def test_all_parameters_get_gradients_and_reset(device):
    x, batch = features([5, 3], 8, device)
    pos = torch.randn(8, 3, device=device)
    block = InducedSetAttention(8, heads=2, num_inducing=2,
                                pos_encoding=LearnedPositionalEncoding(8)).to(device)
    block(x, batch, pos=pos).square().sum().backward()
    for name, p in block.named_parameters():
        assert p.grad is not None and p.grad.abs().sum() > 0, name
    before = block.inducing.detach().clone()
    block.reset_parameters()
    assert not torch.equal(before, block.inducing)


def test_gradcheck(device):
    x, batch = features([3, 2], 4, device, torch.float64)
    x.requires_grad_(True)
    block = InducedSetAttention(4, heads=2, num_inducing=2).to(device, torch.float64)
    assert torch.autograd.gradcheck(lambda t: block(t, batch), (x,))


def test_one_inducing_point_gives_one_output_per_cloud(device):
    """A node's softmax over one inducing point is 1: every node of a cloud reads it."""
    x, batch = features([5, 4], 8, device)
    block = InducedSetAttention(8, heads=2, num_inducing=1).to(device)
    out = block(x, batch)
    torch.testing.assert_close(out[:5], out[:1].expand(5, -1))
    assert not torch.allclose(out[0], out[5])


@pytest.mark.parametrize("kwargs, message", [
    (dict(heads=3), "out_channels=8 is not divisible by heads=3"),
    (dict(num_inducing=0), "num_inducing must be an integer >= 1"),
])
def test_bad_arguments(kwargs, message):
    with pytest.raises(ValueError, match=message):
        InducedSetAttention(8, **kwargs)


def test_bad_input_names_the_problem():
    block = InducedSetAttention(8, heads=2)
    with pytest.raises(ValueError, match=r"x must be \[5, 8\] \(in_channels=8\), got \[5, 6\]"):
        block(torch.randn(5, 6))
