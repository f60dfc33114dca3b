"""One cloud of 200k points on the pure-torch path: memory stays O(M*K) (slow: about 2 minutes)."""

from __future__ import annotations

import pytest
import torch

from pcattn import ops
from pcattn.bench.suite import measure


@pytest.mark.slow
def test_torch_knn_on_200k_points_keeps_memory_small():
    pos = torch.rand(200_000, 3, generator=torch.Generator().manual_seed(0))
    holder = {}

    def run():
        holder["idx"] = ops.knn(pos, 16, backend="torch")

    _, peak_mb = measure(run, repeat=1, warmup=False)
    # an [M, M] float matrix would be 160 GB; the result itself is 25.6 MB
    assert peak_mb < 600, peak_mb
    idx = holder["idx"]
    ref = ops.knn(pos, 16, backend="open3d")
    d = ((pos[:, None] - pos[idx]) ** 2).sum(-1)
    d_ref = ((pos[:, None] - pos[ref]) ** 2).sum(-1)
    torch.testing.assert_close(d, d_ref, atol=1e-6, rtol=1e-5)
