"""global_max_pool / global_mean_pool: values by hand, empty clouds, the one-cloud default."""

from __future__ import annotations

import torch

from pcattn.nn.pool import global_max_pool, global_mean_pool


def test_values_by_hand(device):
    x = torch.tensor([[1.0, -5], [3, -2], [-4, -7], [2, 6]], device=device)
    batch = torch.tensor([0, 0, 0, 1], device=device)
    torch.testing.assert_close(global_max_pool(x, batch),
                               torch.tensor([[3.0, -2], [2, 6]], device=device))
    torch.testing.assert_close(global_mean_pool(x, batch),
                               torch.tensor([[0.0, -14 / 3], [2, 6]], device=device))
    # no batch: one cloud
    torch.testing.assert_close(global_max_pool(x), torch.tensor([[3.0, 6]], device=device))
    torch.testing.assert_close(global_mean_pool(x), torch.tensor([[0.5, -2]], device=device))


def test_num_clouds_gives_rows_for_trailing_empty_clouds(device):
    """Cloud ids 0 and 2 hold nodes, 1 and 3 none: max -inf (no node), mean 0."""
    x = torch.tensor([[1.0], [5], [-2]], device=device, dtype=torch.float64)
    batch = torch.tensor([0, 0, 2], device=device)
    mx = global_max_pool(x, batch, num_clouds=4)
    mean = global_mean_pool(x, batch, num_clouds=4)
    assert mx.dtype == mean.dtype == torch.float64
    assert mx[:, 0].tolist() == [5.0, float("-inf"), -2.0, float("-inf")]
    assert mean[:, 0].tolist() == [3.0, 0.0, -2.0, 0.0]
