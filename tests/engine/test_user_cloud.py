"""Users' clouds for predict: scale-free normalisation, what is refused and what is warned,
down-sampling to --max-points and the parts carried back to every input point."""

from __future__ import annotations

import json
import warnings

import numpy as np
import pytest
import torch

from pcattn.cli import main
from pcattn.engine.predict import load_model, predict_file
from pcattn.engine.user_cloud import (
    CloudWarning,
    downsample,
    load_user_cloud,
    propagate,
    voxel_sample,
)


def sphere(n: int, seed: int = 0) -> tuple[np.ndarray, np.ndarray]:
    """``n`` points on the unit sphere and their normals (float64)."""
    p = np.random.default_rng(seed).normal(size=(n, 3))
    p /= np.linalg.norm(p, axis=1, keepdims=True)
    return p, p.copy()


def write_xyzn(path, xyz, normals=None):
    normals = np.tile([0.0, 0.0, 1.0], (len(xyz), 1)) if normals is None else normals
    np.savetxt(path, np.hstack([xyz, normals]), fmt="%.17g")
    return path


def probabilities(result: dict) -> dict:
    return dict(result["top5"])


@pytest.mark.parametrize("normals", ["true", "constant"])
def test_scaled_copies_classify_like_the_cloud(tmp_path, classifier_run, normals):
    xyz, nrm = sphere(64)
    nrm = nrm if normals == "true" else None
    loaded = load_model(classifier_run, "cpu")
    ref = predict_file(classifier_run, write_xyzn(tmp_path / "unit.xyzn", xyz, nrm),
                       loaded=loaded)
    for scale in (1e30, 1e-30, 1e36, 1e-36, 1e15, 1e-15):
        got = predict_file(classifier_run, write_xyzn(tmp_path / f"s{scale}.xyzn",
                                                      xyz * scale, nrm), loaded=loaded)
        assert got["class"] == ref["class"], scale
        want = probabilities(ref)
        for name, p in probabilities(got).items():
            assert p == pytest.approx(want[name], abs=1e-4), scale


@pytest.mark.parametrize("n", [1, 2, 3, 7])
def test_fewer_distinct_points_than_k_is_refused(tmp_path, classifier_run, capsys, n):
    src = write_xyzn(tmp_path / "few.xyzn", sphere(n)[0])
    assert main(["predict", str(classifier_run), str(src)]) == 2
    err = capsys.readouterr().err.strip()
    assert len(err.splitlines()) == 1, err
    if n == 1:
        assert "1 distinct points" in err and "needs at least 8" in err, err
    else:
        assert f"{n} distinct points" in err and "its 8 nearest" in err, err


@pytest.mark.parametrize("copies, distinct", [(300, 1), (2, 1), (300, 5), (64, 7)])
def test_copies_do_not_count_as_points(tmp_path, classifier_run, capsys, copies, distinct):
    xyz = np.repeat(sphere(distinct)[0] * 3 + 10, copies // distinct + 1, axis=0)[:copies]
    src = write_xyzn(tmp_path / "copies.xyzn", xyz)
    assert main(["predict", str(classifier_run), str(src)]) == 2
    err = capsys.readouterr().err.strip()
    assert len(err.splitlines()) == 1, err
    if distinct == 1:
        assert f"all {copies} points are at one position" in err and "zero extent" in err
    else:
        assert f"has {distinct} distinct points ({copies} points" in err, err


def test_far_fewer_or_far_more_points_than_trained_warns(tmp_path, classifier_run, capsys):
    for n, warned in ((8, True), (15, True), (16, False), (64, False), (256, False)):
        src = write_xyzn(tmp_path / f"n{n}.xyzn", sphere(n)[0])
        assert main(["predict", str(classifier_run), str(src)]) == 0
        err = capsys.readouterr().err
        assert ("warning:" in err) == warned, (n, err)
        if warned:
            assert f"has {n} points, fewer than 1/4 of the 64" in err, err
    src = write_xyzn(tmp_path / "many.xyzn", sphere(300)[0])
    assert main(["predict", str(classifier_run), str(src), "--max-points", "300"]) == 0
    err = capsys.readouterr().err
    assert "warning: the model reads 300 points" in err and "more than 4 times" in err, err
    assert len(err.strip().splitlines()) == 1, err


def test_the_api_warns_with_a_category(tmp_path, classifier_run):
    run = load_model(classifier_run, "cpu")[1]
    with pytest.warns(CloudWarning, match="fewer than 1/4"):
        load_user_cloud(write_xyzn(tmp_path / "a.xyzn", sphere(10)[0]), run)
    with warnings.catch_warnings():
        warnings.simplefilter("error")
        load_user_cloud(write_xyzn(tmp_path / "b.xyzn", sphere(64)[0]), run)


def test_a_folder_where_a_cloud_file_is_expected(tmp_path, classifier_run, capsys):
    for name in ("scans", "scans.ply"):
        (tmp_path / name).mkdir()
        assert main(["predict", str(classifier_run), str(tmp_path / name)]) == 2
        err = capsys.readouterr().err.strip()
        assert f"{tmp_path / name} is a folder; give one cloud or mesh file" in err, err


def test_large_clouds_are_down_sampled_to_max_points(tmp_path, classifier_run, capsys):
    src = write_xyzn(tmp_path / "big.xyzn", sphere(1000)[0])
    assert main(["predict", str(classifier_run), str(src), "--json"]) == 0
    captured = capsys.readouterr()
    res = json.loads(captured.out)
    assert (res["points"], res["model_points"]) == (1000, 256)  # default: 4 x 64
    assert "1000 points > --max-points 256: kept 256 by farthest point sampling" in captured.err
    assert main(["predict", str(classifier_run), str(src), "--json", "--max-points", "100",
                 "--sampling", "voxel"]) == 0
    captured = capsys.readouterr()
    res = json.loads(captured.out)
    assert 8 <= res["model_points"] <= 100 and "voxel grid" in res["sampling"]
    assert "by a voxel grid" in captured.err


@pytest.mark.parametrize("argv, needle", [
    (["--max-points", "0"], "argument --max-points: expected a whole number >= 1, got '0'"),
    (["--max-points", "nan"], "expected a whole number >= 1, got 'nan'"),
    (["--max-points", "-5"], "expected a whole number >= 1, got '-5'"),
    (["--sampling", "random"], "argument --sampling: invalid choice: 'random'"),
])
def test_bad_bounding_options_are_argument_errors(classifier_run, capsys, argv, needle):
    with pytest.raises(SystemExit) as stop:
        main(["predict", str(classifier_run), "x.xyz", *argv])
    assert stop.value.code == 2 and needle in capsys.readouterr().err


def test_max_points_below_k_is_refused(tmp_path, classifier_run, capsys):
    src = write_xyzn(tmp_path / "c.xyzn", sphere(64)[0])
    assert main(["predict", str(classifier_run), str(src), "--max-points", "5"]) == 2
    assert "--max-points must be an integer >= 8" in capsys.readouterr().err


@pytest.mark.parametrize("argv, needle", [
    (["--category", "lamp"], "--category does not apply"),
    (["--category", "0"], "--category does not apply"),
    (["--out", "x.ply"], "--out does not apply"),
    (["--out", "x.ply", "--category", "1"], "--out and --category do not apply"),
])
def test_options_a_classifier_cannot_use_are_errors(tmp_path, classifier_run, capsys, argv,
                                                     needle):
    src = write_xyzn(tmp_path / "c.xyzn", sphere(64)[0])
    assert main(["predict", str(classifier_run), str(src), *argv]) == 2
    err = capsys.readouterr().err.strip()
    assert needle in err and "classifier" in err and len(err.splitlines()) == 1, err
    assert not (tmp_path / "x.ply").exists()


def test_segmenter_parts_reach_every_input_point(tmp_path, segmenter_run, capsys):
    import open3d as o3d

    xyz, nrm = sphere(900)
    xyz = xyz * 250.0 + np.array([1000.0, -40.0, 7.5])  # the parts overlay the file's cloud
    src = write_xyzn(tmp_path / "lamp.xyzn", xyz, nrm)
    out = tmp_path / "parts.ply"
    assert main(["predict", str(segmenter_run), str(src), "--category", "lamp", "--out",
                 str(out), "--json", "--max-points", "100"]) == 0
    captured = capsys.readouterr()
    res = json.loads(captured.out)
    assert res["points"] == 900 and res["model_points"] == 100
    assert sum(res["part_counts"].values()) == 900
    assert "carrying the parts to all 900 points" in captured.err
    written = np.asarray(o3d.io.read_point_cloud(str(out)).points)
    np.testing.assert_allclose(written, xyz, rtol=1e-6)


def test_propagate_takes_the_nearest_sampled_point():
    g = torch.Generator().manual_seed(0)
    pos = torch.rand(500, 3, generator=g)
    keep = torch.randperm(500, generator=g)[:40]
    values = torch.arange(40) * 10
    got = propagate(values, pos[keep], pos)
    d = ((pos.numpy()[:, None, :] - pos[keep].numpy()[None]) ** 2).sum(-1)  # [500, 40]
    np.testing.assert_array_equal(got.numpy(), values.numpy()[d.argmin(1)])
    assert (got[keep] == values).all()  # a kept point takes its own value


def _cell_keys(pos: np.ndarray, side: int) -> list:
    """The cell of each point in a grid of ``side``^3 cells over the bounding cube."""
    lo, span = pos.min(0), (pos.max(0) - pos.min(0)).max()
    key = np.clip(np.floor((pos - lo) / span * side).astype(np.int64), 0, side - 1)
    return [tuple(k) for k in key]


@pytest.mark.parametrize("n, num", [(2000, 50), (2000, 400), (300, 299), (5000, 8)])
def test_voxel_sample_keeps_one_point_per_occupied_cell(n, num):
    pos = torch.rand(n, 3, generator=torch.Generator().manual_seed(n)) * torch.tensor(
        [1.0, 2.0, 0.5])
    keep, side = voxel_sample(pos, num)
    assert keep.numel() <= num and torch.equal(keep, keep.sort().values)
    cells = _cell_keys(pos.double().numpy(), side)
    kept = [cells[i] for i in keep.tolist()]
    assert len(set(kept)) == len(kept) and set(kept) == set(cells)  # one per occupied cell
    assert len(set(_cell_keys(pos.double().numpy(), side + 1))) > num  # the finest such grid


def test_auto_sampling_thins_very_large_clouds_by_a_grid_first():
    pos = torch.rand(3000, 3, generator=torch.Generator().manual_seed(0))
    keep, how = downsample(pos, 10, "auto")  # 3000 > 250 * 10
    assert keep.numel() == 10 and how.startswith("a voxel grid") and "farthest" in how
    keep, how = downsample(pos, 20, "auto")  # 3000 <= 250 * 20
    assert keep.numel() == 20 and how == "farthest point sampling"


def test_a_model_that_reads_normals_refuses_a_file_without(tmp_path, classifier_run, capsys):
    src = tmp_path / "bare.xyz"
    np.savetxt(src, sphere(64)[0])
    assert main(["predict", str(classifier_run), str(src)]) == 2
    err = capsys.readouterr().err.strip()
    assert "the model reads normals (data.use_normals) but the file has none" in err, err


def test_a_model_without_k_is_not_said_to_compare_neighbours(tmp_path, data_root):
    from enginefixtures import untrained_run

    run_dir = untrained_run(tmp_path / "pn", {"name": "pointnet_cls"},
                            {"name": "synthetic_shapes", "root": str(data_root),
                             "num_points": 64, "per_class": 2, "rotation": "z"})
    run = load_model(run_dir, "cpu")[1]
    src = write_xyzn(tmp_path / "c.xyzn", sphere(64)[0])
    with pytest.raises(ValueError, match=r"--max-points must be an integer >= 2 \(the model "
                                         r"needs a shape of several points\)") as err:
        load_user_cloud(src, run, max_points=1)
    assert "nearest" not in str(err.value)
