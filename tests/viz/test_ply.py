"""The PLY reads back through open3d with the colours the values map to."""

from __future__ import annotations

import numpy as np
import torch

from pcattn.viz import colorize, save_ply
from pcattn.viz.colors import FADED


def test_ply_round_trips_with_its_colours(tmp_path):
    import open3d as o3d

    pos = torch.rand(50, 3)
    values = torch.linspace(0, 2, 50)
    active = torch.arange(50) >= 10
    path = save_ply(tmp_path / "a.ply", pos, values, active=active)
    back = o3d.io.read_point_cloud(str(path))
    assert back.has_colors()
    np.testing.assert_allclose(np.asarray(back.points), pos.numpy(), atol=1e-6)
    colours = np.asarray(back.colors)
    np.testing.assert_allclose(colours, colorize(values, active), atol=1 / 255 + 1e-6)
    np.testing.assert_allclose(colours[:10], np.tile(FADED, (10, 1)), atol=1 / 255 + 1e-6)
    assert np.linalg.norm(colours[-1] - colours[10]) > 0.5  # the ends of the scale differ
