"""The scale relative to uniform: values written out by hand, the diverging colours at
uniform and at the ends, the colour bar's ticks and title."""

from __future__ import annotations

import math

import numpy as np
import pytest
import torch
from matplotlib.colors import to_rgb
from vizhelpers import local_layer, random_local

from pcattn.viz import attention_map, attention_received, colorize, make_view
from pcattn.viz.colors import DIVERGING, FADED, value_scale


def test_relative_map_is_weight_times_points_read():
    idx, w, nodes = random_local(10, 4, 3)
    idx[7, 3] = -1  # query 7 reads three points
    layers = [local_layer("l", w, idx, nodes)]
    pos = torch.rand(10, 3)
    for q, n in ((7, 3), (2, 4)):
        values = attention_map(layers, pos, torch.tensor([q]), relative=True)
        expect = np.zeros(10)
        for k in range(4):
            if idx[q, k] >= 0:
                expect[int(idx[q, k])] = float(w[q, k].mean()) * n
        np.testing.assert_allclose(values.numpy(), expect, rtol=1e-6)


def test_relative_received_is_the_column_sum_over_that_of_uniform_rows():
    idx, w, nodes = random_local(8, 3, 2, seed=3)
    idx[0, 2] = -1
    got = attention_received([local_layer("l", w, idx, nodes)], 9, relative=True).numpy()
    rec, uniform = np.zeros(9), np.zeros(9)
    for i in range(8):
        valid = [k for k in range(3) if idx[i, k] >= 0]
        for k in valid:
            rec[int(idx[i, k])] += float(w[i, k].mean())
            uniform[int(idx[i, k])] += 1 / len(valid)
    expect = np.where(uniform > 0, rec / np.where(uniform > 0, uniform, 1), 0)
    np.testing.assert_allclose(got, expect, rtol=1e-5)
    assert got[8] == 0  # no query reads point 8


def test_diverging_colours_uniform_grey_and_symmetric_ends():
    values = torch.tensor([1.0, 2.0, 0.5, 1.25, 0.0, 3.0])
    active = torch.tensor([True, True, True, True, False, True])
    scale = value_scale(values, active, exclude=torch.tensor([5]), relative=True)
    assert (scale.lo, scale.hi) == pytest.approx((-1.0, 1.0))  # query 5 (x3) left out
    rgb = colorize(values, active, torch.tensor([5]), scale)
    np.testing.assert_allclose(rgb[0], to_rgb(DIVERGING[2]), atol=1e-6)  # uniform
    np.testing.assert_allclose(rgb[1], to_rgb(DIVERGING[-1]), atol=1e-6)  # x2: the top
    np.testing.assert_allclose(rgb[2], to_rgb(DIVERGING[0]), atol=1e-6)  # x0.5: the bottom
    np.testing.assert_allclose(rgb[4], FADED)
    np.testing.assert_allclose(rgb[5], to_rgb(DIVERGING[-1]), atol=1e-6)  # clipped
    t = math.log2(1.25) / 2 + 0.5  # x1.25 sits between uniform and the top
    assert 0.5 < t < 1 and not np.allclose(rgb[3], rgb[0]) and not np.allclose(rgb[3], rgb[1])
    positions, labels = scale.ticks()
    assert labels[0] == "x0.5" and labels[-1] == "x2" and "1 uniform" in labels
    assert positions[labels.index("1 uniform")] == 0.0


def test_the_scale_is_set_by_the_strongest_preference_and_clips_below():
    values = torch.tensor([4.0, 1.0, 0.01, 0.5])
    scale = value_scale(values, relative=True)
    assert (scale.lo, scale.hi) == pytest.approx((-2.0, 2.0)) and scale.clipped
    rgb = colorize(values, scale=scale)
    np.testing.assert_allclose(rgb[2], to_rgb(DIVERGING[0]), atol=1e-6)  # x0.01 -> the end
    assert scale.ticks()[1][0] == "<= x0.25" and scale.ticks()[1][-1] == "x4"
    below = value_scale(torch.tensor([0.5, 0.25, 1.0]), relative=True)  # nothing preferred
    assert (below.lo, below.hi, below.clipped) == pytest.approx((-2.0, 2.0, False))


def test_near_uniform_weights_get_many_colour_levels_not_one():
    """Weights 0.041..0.095 around 1/16 (as a trained first layer's) fill the relative
    scale: each of the 15 neighbours but the query gets its own colour."""
    weights = 2.0 ** torch.linspace(-0.6, 0.6, 16) / 16
    idx = torch.arange(16).repeat(16, 1)  # [16, 16]: every point reads all
    w = weights.repeat(16, 1)[..., None]  # [16, 16, 1]
    layers = [local_layer("l", w, idx, torch.arange(16))]
    pos = torch.rand(16, 3)
    rel = make_view(layers, pos, "map", 0, None, "0")
    assert rel.relative and rel.quantity.startswith("weight x points read")
    rgb = colorize(rel.values, rel.active, rel.queries, rel.scale())[1:]
    assert len({tuple(np.round(c * 255)) for c in rgb}) == 15
    assert not make_view(layers, pos, "map", 0, None, "0", relative=False).relative
    title = rel.scale().title
    assert "1 = uniform" in title and "layer 0 (l)" in title and "mean of heads" in title


def test_rollout_is_absolute_and_relative_rollout_is_refused():
    idx, w, nodes = random_local(6, 3, 2)
    layers = [local_layer("l", w, idx, nodes)]
    assert not make_view(layers, torch.rand(6, 3), "rollout").relative
    with pytest.raises(ValueError, match="--scale absolute"):
        make_view(layers, torch.rand(6, 3), "rollout", relative=True)
