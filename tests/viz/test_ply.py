"""The PLY reads back through open3d with the colours the values map to and the values
themselves as a scalar property."""

from __future__ import annotations

import numpy as np
import torch

from pcattn.viz import colorize, save_ply
from pcattn.viz.colors import FADED, value_scale


def test_ply_round_trips_with_its_colours_and_values(tmp_path):
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
    header = path.read_bytes()[:400].split(b"end_header")[0].decode()
    assert "property float attention" in header and "property uchar red" in header
    scalar = o3d.t.io.read_point_cloud(str(path)).point.attention.numpy()[:, 0]
    assert np.isnan(scalar[:10]).all()  # no value where the layer reads nothing
    np.testing.assert_allclose(scalar[10:], values[10:].numpy(), rtol=1e-6)


def test_ply_of_a_relative_map_carries_the_ratio_and_its_colours(tmp_path):
    import open3d as o3d

    values = torch.tensor([1.0, 2.0, 0.5, 1.5])
    scale = value_scale(values, relative=True)
    path = save_ply(tmp_path / "r.ply", torch.rand(4, 3), values, scale=scale, name="ratio")
    back = o3d.t.io.read_point_cloud(str(path))
    np.testing.assert_allclose(back.point.ratio.numpy()[:, 0], values.numpy())
    np.testing.assert_allclose(back.point.colors.numpy() / 255, colorize(values, scale=scale),
                               atol=1 / 255 + 1e-6)
