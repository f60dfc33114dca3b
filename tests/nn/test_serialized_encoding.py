"""The conditional positional encodings against per-point loops written from their
definitions (dictionaries of cells, explicit neighbour lists), in float64."""

from __future__ import annotations

import torch

from pcattn.nn.serialized_encoding import GridConvEncoding, KnnConvEncoding
from pcattn.ops import knn, serialize


def data(seed=0):
    g = torch.Generator().manual_seed(seed)
    pos = torch.rand(60, 3, generator=g, dtype=torch.float64)
    x = torch.randn(60, 6, generator=g, dtype=torch.float64)
    batch = torch.repeat_interleave(torch.arange(2), torch.tensor([35, 25]))
    return x, pos, batch


def test_grid_conv_is_a_submanifold_convolution_of_cell_means():
    x, pos, batch = data()
    s = serialize(pos, batch, grid_size=0.25)  # ~4^3 cells: shared and empty ones
    enc = GridConvEncoding(6).double()
    cells = {}
    for i, (c, b) in enumerate(zip(s.coords.tolist(), batch.tolist())):
        cells.setdefault((b, *c), []).append(i)
    mean = {key: x[rows].mean(0) for key, rows in cells.items()}
    offsets = [(a, b, c) for a in (-1, 0, 1) for b in (-1, 0, 1) for c in (-1, 0, 1)]
    y = torch.zeros_like(x)
    for i, (c, b) in enumerate(zip(s.coords.tolist(), batch.tolist())):
        acc = enc.bias.clone()
        for o, off in enumerate(offsets):
            key = (b, *(ci + oi for ci, oi in zip(c, off)))
            if key in mean:
                acc = acc + mean[key] @ enc.weight[o]
        y[i] = acc
    want = enc.norm(enc.lin(y))
    torch.testing.assert_close(enc(x, pos, s), want)
    with_cells = serialize(pos, batch, grid_size=0.25, neighbors=True)
    torch.testing.assert_close(enc(x, pos, with_cells), want)


def test_knn_conv_averages_kernel_weighted_neighbours():
    x, pos, batch = data(1)
    s = serialize(pos, batch, grid_size=0.1)
    enc = KnnConvEncoding(6, k=4).double()
    idx = knn(pos, 4, batch)
    y = torch.zeros_like(x)
    for i in range(60):
        nbrs = [j for j in idx[i].tolist() if j >= 0]
        for j in nbrs:
            y[i] += enc.kernel((pos[j] - pos[i]) / 0.1) * x[j]
        y[i] /= len(nbrs)
    torch.testing.assert_close(enc(x, pos, s), enc.norm(enc.lin(y)))
