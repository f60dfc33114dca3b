"""The local attention blocks and TransitionDown against their papers' formulas written out
densely here (no chunking, no split linear maps, no shared code path), in float64: outputs
and the gradients of the input and of every parameter, for every chunking and recomputation
setting. Guards the speed-ups (row chunks, recomputation only above a budget, split
gathers, TransitionDown's first linear map on nodes) against changing what is computed."""

from __future__ import annotations

import math

import pytest
import torch

import pcattn.nn as pnn
from pcattn import ops

SETTINGS = [  # (chunk_size, recompute_above)
    ("auto", None), (None, None), (200, None), (200, 0), ("auto", 0),
]


def _inputs(c_in: int = 6):
    g = torch.Generator().manual_seed(0)
    sizes = torch.tensor([23, 4, 13])  # the 4-point cloud has fewer than K = 6 points
    batch = torch.repeat_interleave(torch.arange(3), sizes)
    pos = torch.rand(int(sizes.sum()), 3, generator=g, dtype=torch.float64)
    x = torch.randn(pos.shape[0], c_in, generator=g, dtype=torch.float64)
    idx = ops.knn(pos, 6, batch)  # [M, 6], -1 in the small cloud's rows
    assert bool((idx < 0).any())
    return x, pos, batch, idx


def _grads(module, fn, x):
    """Output of ``fn(x)``, and the gradients of x and of every parameter of a fixed loss."""
    module.zero_grad(set_to_none=True)
    x = x.clone().requires_grad_(True)
    out = fn(x)
    w = torch.randn(out.shape, generator=torch.Generator().manual_seed(1), dtype=out.dtype)
    (out * w).sum().backward()
    return out.detach(), x.grad, {n: p.grad.clone() for n, p in module.named_parameters()}


def _compare(module, run, reference, x):
    out, gx, gp = _grads(module, run, x)
    ref, rx, rp = _grads(module, reference, x)
    torch.testing.assert_close(out, ref)
    torch.testing.assert_close(gx, rx)
    assert gp.keys() == rp.keys()
    for name in gp:
        torch.testing.assert_close(gp[name], rp[name], msg=name)


def _neighbours(t, idx):
    """``t[idx]`` with the ``-1`` entries pointing at row 0 (their weights are zero)."""
    return t[idx.clamp(min=0)]  # [M, K, *]


def _softmax_valid(logits, idx):
    return torch.softmax(logits.masked_fill((idx < 0)[..., None], -math.inf), dim=1)


def _point_transformer(layer, x, pos, idx):
    """Zhao et al.: y_i = sum_j softmax_j(gamma(phi x_i - psi x_j + delta_ij))
    * (alpha x_j + delta_ij), delta_ij = theta(p_i - p_j)."""
    q, k, v = x @ layer.lin_dst.weight.T, x @ layer.lin_src.weight.T, x @ layer.lin.weight.T
    delta = layer.pos_nn(pos[:, None, :] - _neighbours(pos, idx))  # [M, K, C]
    logits = layer.attn_nn(q[:, None, :] - _neighbours(k, idx) + delta)
    w = _softmax_valid(logits, idx)
    return (w * (_neighbours(v, idx) + delta)).sum(1)


def _grouped(layer, x, pos, idx):
    """Wu et al. (PTv2): r_ij = (psi x_j - phi x_i) * mu(p_j - p_i) + theta(p_j - p_i),
    one weight per group of channels, softmax over the valid neighbours."""
    valid = (idx >= 0)[..., None]
    rel = (_neighbours(pos, idx) - pos[:, None, :]) * valid  # [M, K, 3]
    r = _neighbours(layer.lin_k(x), idx) - layer.lin_q(x)[:, None, :]
    if layer.pos_mul_nn is not None:
        r = r * layer.pos_mul_nn(rel)
    delta = layer.pos_nn(rel)
    w = _softmax_valid(layer.attn_nn(r + delta), idx)  # [M, K, G]
    value = _neighbours(layer.lin_v(x), idx) + delta  # [M, K, C]
    m, k, c = value.shape
    g = w.shape[-1]
    return (w[..., None] * value.view(m, k, g, c // g)).sum(1).reshape(m, c)


def _local(layer, x, pos, idx):
    """Scaled dot-product attention of q_i over k_j + delta_ij, values v_j + delta_ij."""
    valid = (idx >= 0)[..., None]
    delta = layer.pos_nn((pos[:, None, :] - _neighbours(pos, idx)) * valid)
    q, k, v = layer.lin_q(x), _neighbours(layer.lin_k(x), idx), _neighbours(layer.lin_v(x), idx)
    h = layer.heads
    m, kk, c = delta.shape
    d = c // h
    logits = (q.view(m, 1, h, d) * (k + delta).view(m, kk, h, d)).sum(-1) / math.sqrt(d)
    w = _softmax_valid(logits, idx)  # [M, K, H]
    out = (w[..., None] * (v + delta).view(m, kk, h, d)).sum(1).reshape(m, c)
    return layer.lin_out(out)


def _nets(name, c):
    """``pos_nn`` and ``attn_nn`` of a Point Transformer layer of width ``c``."""
    lin = torch.nn.Linear
    return {
        "default": {},
        "no biases": dict(pos_nn=torch.nn.Sequential(lin(3, c, bias=False), torch.nn.ReLU(),
                                                     lin(c, c, bias=False)),
                          attn_nn=torch.nn.Sequential(lin(c, c, bias=False), torch.nn.Tanh(),
                                                      lin(c, c, bias=False))),
        "bare linear maps": dict(pos_nn=lin(3, c), attn_nn=lin(c, c)),
        "identity attn_nn": dict(attn_nn=torch.nn.Identity()),
    }[name]


# the layer folds pos_nn's last linear map into attn_nn's first when both are linear maps and
# the edges (here 40 x 6) are at least C * C
@pytest.mark.parametrize("channels, nets, folded", [
    (8, "default", True), (16, "default", False), (8, "no biases", True),
    (8, "bare linear maps", True), (8, "identity attn_nn", False)])
@pytest.mark.parametrize("chunk_size, recompute_above", SETTINGS)
def test_point_transformer_layer_matches_formula(chunk_size, recompute_above, channels, nets,
                                                 folded, monkeypatch):
    calls = []
    fold = pnn.PointTransformerLayer._attend_folded
    monkeypatch.setattr(pnn.PointTransformerLayer, "_attend_folded",
                        lambda *a: calls.append(1) or fold(*a))
    torch.manual_seed(0)
    x, pos, _, idx = _inputs()
    layer = pnn.PointTransformerLayer(6, channels, chunk_size=chunk_size,
                                      recompute_above=recompute_above,
                                      **_nets(nets, channels)).double()
    _compare(layer, lambda t: layer(t, pos, idx), lambda t: _point_transformer(layer, t, pos, idx),
             x)
    assert bool(calls) == folded


@pytest.mark.parametrize("chunk_size, recompute_above", SETTINGS)
@pytest.mark.parametrize("pos_multiplier", [False, True])
def test_grouped_vector_attention_matches_formula(chunk_size, recompute_above, pos_multiplier):
    torch.manual_seed(0)
    x, pos, _, idx = _inputs()
    layer = pnn.GroupedVectorAttention(6, 8, heads=4, pos_multiplier=pos_multiplier,
                                       chunk_size=chunk_size,
                                       recompute_above=recompute_above).double()
    _compare(layer, lambda t: layer(t, pos, idx), lambda t: _grouped(layer, t, pos, idx), x)


@pytest.mark.parametrize("chunk_size, recompute_above", SETTINGS)
def test_local_self_attention_matches_formula(chunk_size, recompute_above):
    torch.manual_seed(0)
    x, pos, _, idx = _inputs()
    layer = pnn.LocalSelfAttention(6, 8, heads=2, chunk_size=chunk_size,
                                   recompute_above=recompute_above).double()
    _compare(layer, lambda t: layer(t, pos, idx), lambda t: _local(layer, t, pos, idx), x)


@pytest.mark.parametrize("k", [5, 2])  # 5: the 4-point cloud pads; 2: no padding
@pytest.mark.parametrize("cpu_chunk", [None, 40])  # 40 elements: chunks of 1 (k=5) or 2 centres
def test_transition_down_matches_formula(k, cpu_chunk, monkeypatch):
    """y_i = max_j MLP([x_j | p_j - p_i]) over the kNN of the FPS centres."""
    if cpu_chunk is not None:
        monkeypatch.setattr("pcattn.nn.chunking.CPU_CHUNK", cpu_chunk)
    torch.manual_seed(0)
    x, pos, batch, _ = _inputs()
    down = pnn.TransitionDown(6, 8, ratio=0.5, k=k).double()
    sample = ops.farthest_point_sample(pos, batch, ratio=0.5)
    idx = ops.knn(pos, k, batch, query=pos[sample], query_batch=batch[sample])
    assert bool((idx < 0).any()) == (k == 5)

    def reference(t):
        rel = _neighbours(pos, idx) - pos[sample][:, None, :]  # [S, K, 3]
        h = down.mlp(torch.cat([_neighbours(t, idx), rel], dim=-1))  # [S, K, C]
        return h.masked_fill((idx < 0)[..., None], -math.inf).max(dim=1).values

    def run(t):
        out, pos_s, batch_s, got = down(t, pos, batch)
        assert torch.equal(got, sample) and torch.equal(pos_s, pos[sample])
        return out

    _compare(down, run, reference, x)
