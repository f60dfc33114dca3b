"""Surface sampling and the unit-sphere normalisation shared by every reader."""

from __future__ import annotations

import numpy as np
import pytest
import torch

from pcattn.data.errors import DataFormatError
from pcattn.data.geometry import normalize_unit_sphere, sample_surface


def test_sample_surface_is_uniform_by_area_with_face_normals():
    # two triangles in z=0 (area 0.5) and x=5 (area 1.5)
    v = np.array([[0, 0, 0], [1, 0, 0], [0, 1, 0], [5, 0, 0], [5, 1, 0], [5, 0, 3.0]])
    f = np.array([[0, 1, 2], [3, 4, 5]])
    xyz, nrm, face = sample_surface(v, f, 20000, np.random.default_rng(0))
    on_big = np.isclose(xyz[:, 0], 5.0)
    np.testing.assert_array_equal(face, on_big)  # face 1 is the big triangle
    assert abs(on_big.mean() - 0.75) < 0.015
    small = xyz[~on_big]
    assert np.allclose(small[:, 2], 0) and (small[:, :2].sum(1) <= 1 + 1e-9).all()
    np.testing.assert_allclose(np.abs(nrm[~on_big]), [[0, 0, 1]] * len(small), atol=1e-12)
    np.testing.assert_allclose(np.abs(nrm[on_big]), [[1, 0, 0]] * on_big.sum(), atol=1e-12)
    again = sample_surface(v, f, 20000, np.random.default_rng(0))[0]
    np.testing.assert_array_equal(xyz, again)


def test_sample_surface_rejects_a_mesh_without_area():
    v = np.zeros((3, 3))
    with pytest.raises(DataFormatError, match="no surface area"):
        sample_surface(v, np.array([[0, 1, 2]]), 10, np.random.default_rng(0))


def test_normalize_unit_sphere_numpy_and_torch_agree():
    xyz = np.random.default_rng(0).normal(size=(50, 3)) * 3 + 7
    out = normalize_unit_sphere(xyz)
    np.testing.assert_allclose(out.mean(0), 0, atol=1e-12)
    assert np.sqrt((out ** 2).sum(1)).max() == pytest.approx(1.0)
    by_torch = normalize_unit_sphere(torch.from_numpy(xyz))
    np.testing.assert_allclose(by_torch.numpy(), out, atol=1e-12)
    one = normalize_unit_sphere(np.ones((1, 3)))  # a single point stays finite
    assert np.isfinite(one).all() and (one == 0).all()


@pytest.mark.parametrize("scale", [1e30, 1e-30, 1e36, 1e-36, 3e19, 1e-19])
@pytest.mark.parametrize("kind", ["numpy", "torch"])
def test_normalize_unit_sphere_in_float32_at_any_finite_scale(scale, kind):
    # the reference: the unscaled cloud normalised by hand in float64
    unit = np.random.default_rng(1).normal(size=(64, 3)) + [0.5, -2.0, 1.0]
    centred = unit - unit.mean(0)
    want = centred / np.sqrt((centred ** 2).sum(1)).max()
    xyz = (unit * scale).astype(np.float32)
    assert np.isfinite(xyz).all() and (xyz != 0).any()
    got = normalize_unit_sphere(xyz if kind == "numpy" else torch.from_numpy(xyz))
    got = np.asarray(got)
    assert got.dtype == np.float32
    np.testing.assert_allclose(got, want, atol=2e-6)


def test_normalize_unit_sphere_copies_of_one_point_are_zeros():
    for xyz in (np.full((300, 3), 5.0, dtype=np.float32), np.full((2, 3), -1e30)):
        out = normalize_unit_sphere(xyz)
        assert (out == 0).all() and out.dtype == xyz.dtype
