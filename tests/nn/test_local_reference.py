"""The attention blocks and TransitionDown against their papers' formulas written out densely
in pcattn.nn.reference (no chunking, no split or folded linear maps, no fused kernels, no code
shared with the blocks), in float64: outputs and the gradients of the input and of every
parameter, for every chunking and recomputation setting. Guards the speed-ups against
changing what is computed."""

from __future__ import annotations


import pytest
import torch

import pcattn.nn as pnn
from pcattn import ops
from pcattn.nn import reference as ref

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
    _compare(layer, lambda t: layer(t, pos, idx), lambda t: ref.point_transformer(layer, t, pos, idx),
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
    _compare(layer, lambda t: layer(t, pos, idx), lambda t: ref.grouped_vector_attention(layer, t, pos, idx), x)


@pytest.mark.parametrize("chunk_size, recompute_above", SETTINGS)
def test_local_self_attention_matches_formula(chunk_size, recompute_above):
    torch.manual_seed(0)
    x, pos, _, idx = _inputs()
    layer = pnn.LocalSelfAttention(6, 8, heads=2, chunk_size=chunk_size,
                                   recompute_above=recompute_above).double()
    _compare(layer, lambda t: layer(t, pos, idx), lambda t: ref.local_self_attention(layer, t, pos, idx), x)


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
        return ref.transition_down(down, t, pos, sample, idx)

    def run(t):
        out, pos_s, batch_s, got = down(t, pos, batch)
        assert torch.equal(got, sample) and torch.equal(pos_s, pos[sample])
        return out

    _compare(down, run, reference, x)


@pytest.mark.parametrize("return_attention", [False, True])  # the fused path and the map's
def test_offset_attention_matches_formula(return_attention):
    torch.manual_seed(0)
    sizes = [37, 5, 20]
    batch = torch.repeat_interleave(torch.arange(3), torch.tensor(sizes))
    x = torch.randn(sum(sizes), 16, dtype=torch.float64)
    layer = pnn.OffsetAttention(16, chunk_size=64).double()  # several chunks of rows
    with torch.no_grad():
        layer.lin_q.weight.mul_(4.0)  # large energies: columns far from uniform

    def run(t):
        out = layer(t, batch, return_attention=return_attention)
        return out[0] if return_attention else out

    def reference(t):  # cloud by cloud
        return torch.cat([ref.offset_attention(layer, part) for part in t.split(sizes)])

    _compare(layer, run, reference, x)
