"""``pcattn visualize`` on checkpoints of a classifier and a part segmenter."""

from __future__ import annotations

import csv
from pathlib import Path

import numpy as np
import pytest
import torch
from PIL import Image

from pcattn.cli import main
from pcattn.data.registry import build_dataset
from pcattn.engine.checkpoint import save_checkpoint
from pcattn.engine.config import config_from_dict
from pcattn.engine.build import dataset_info, fill_model_config
from pcattn.models import create_model


def write_run(folder, model, data, name):
    """An (untrained) checkpoint in a run folder, as `pcattn train` writes one."""
    run = config_from_dict({"model": model, "data": data})
    test_set = build_dataset(run.data, "test")
    torch.manual_seed(0)
    fill_model_config(run, test_set)
    net = create_model(run.model_name, **vars(run.model))
    folder.mkdir(parents=True)
    save_checkpoint(folder / name, {"model": net.state_dict(), "config": run.to_dict(),
                                    "dataset": dataset_info(test_set), "epoch": 0})
    return folder


@pytest.fixture
def classifier_run(tmp_path):
    return write_run(tmp_path / "cls", {"name": "point_transformer_cls", "channels": [16, 32],
                                        "blocks": [1, 1], "k": 8, "head_hidden": [16]},
                     {"name": "synthetic_shapes", "root": str(tmp_path / "data"),
                      "num_points": 128, "per_class": 4, "rotation": "z"}, "best.pt")


def test_visualize_writes_png_ply_and_page_of_a_classifier(classifier_run, capsys):
    out = classifier_run / "viz"
    assert main(["visualize", str(classifier_run), "--sample", "test:3", "--out", str(out),
                 "--query", "fps:2", "--head", "1"]) == 0
    printed = dict(line.split(": ", 1) for line in capsys.readouterr().out.splitlines())
    assert set(printed) == {"png", "ply", "html"}
    with Image.open(printed["png"]) as im:
        assert im.size == (1350, 460)
    assert (out / "test_3_map_layer0_head1.html").stat().st_size < 15e6
    assert main(["visualize", str(classifier_run), "--sample", "test:cone", "--out", str(out),
                 "--mode", "rollout"]) == 0
    assert (out / "test_cone_rollout_layer1.png").is_file()


def test_each_mode_writes_its_own_files(classifier_run, capsys):
    out = classifier_run / "modes"
    written = set()
    for mode in ("map", "received", "rollout"):
        assert main(["visualize", str(classifier_run), "--sample", "test:0", "--out", str(out),
                     "--mode", mode]) == 0
        printed = dict(line.split(": ", 1) for line in capsys.readouterr().out.splitlines())
        assert all(mode in Path(p).name for p in printed.values())
        written |= set(printed.values())
    assert len(written) == 9 and all(Path(p).is_file() for p in written)


@pytest.mark.parametrize("grid, fmt, mode", [("heads", "svg", "map"),
                                             ("queries", "pdf", "rollout")])
def test_grid_figures_in_each_format(classifier_run, capsys, grid, fmt, mode):
    out = classifier_run / "grids"
    assert main(["visualize", str(classifier_run), "--sample", "test:0", "--out", str(out),
                 "--grid", grid, "--format", fmt, "--mode", mode, "--query", "fps:3"]) == 0
    printed = dict(line.split(": ", 1) for line in capsys.readouterr().out.splitlines())
    figure = Path(printed["grid"])
    assert figure.name == f"test_0_{mode}_layers_x_{grid}.{fmt}" and fmt in printed
    head = figure.read_bytes()[:400]
    assert (b"<svg" in head) if fmt == "svg" else head.startswith(b"%PDF")
    if fmt == "svg":  # labelled rows and cells: each layer, the mean and the selective heads
        text = figure.read_text()
        assert "encoder.1.0" in text and "mean of heads" in text and "entropy" in text


def test_a_heads_grid_of_a_rollout_is_refused(classifier_run, capsys):
    assert main(["visualize", str(classifier_run), "--sample", "test:0", "--grid", "heads",
                 "--mode", "rollout", "--out", str(classifier_run / "g")]) == 2
    err = capsys.readouterr().err.strip()
    assert "use --mode map or received" in err and len(err.splitlines()) == 1
    assert not (classifier_run / "g").exists()


def test_sample_by_class_name(classifier_run):
    from pcattn.viz.run import load_model, load_sample

    _, run, _ = load_model(classifier_run, "cpu")
    assert int(load_sample(run, "test:cone").y) == 3  # SHAPE_CLASSES[3]
    with pytest.raises(ValueError, match="classes:.*torus"):
        load_sample(run, "test:teapot")


def test_visualize_names_the_valid_range(classifier_run, capsys):
    run = str(classifier_run)
    for args, message in ((["--layer", "5"], "valid layers are 0..1"),
                          (["--head", "99"], "heads 0..15"),
                          (["--query", "999"], "points 0..127"),
                          (["--sample", "test:9999"], "clouds 0..")):
        sample = [] if "--sample" in args else ["--sample", "test:0"]
        assert main(["visualize", run, *sample, *args]) != 0
        assert message in capsys.readouterr().err
    assert main(["visualize", str(classifier_run / "nope")] + ["--sample", "test:0"]) != 0
    assert "no run folder or checkpoint at" in capsys.readouterr().err


def test_visualize_a_part_segmenter_shows_parts(tmp_path, capsys):
    run = write_run(tmp_path / "seg", {"name": "point_transformer_seg", "channels": [16, 32],
                                       "blocks": [1, 1], "k": 8, "head_hidden": [16]},
                    {"name": "synthetic_parts", "root": str(tmp_path / "data"),
                     "num_points": 128, "per_class": 4, "rotation": "z"}, "best.pt")
    assert main(["visualize", str(run), "--sample", "test:1", "--mode", "received",
                 "--layer", "-1"]) == 0
    printed = dict(line.split(": ", 1) for line in capsys.readouterr().out.splitlines())
    with Image.open(printed["png"]) as im:
        assert im.size == (2150, 460)  # three views + predicted parts + ground truth
        assert len(np.unique(np.asarray(im.convert("RGB")).reshape(-1, 3), axis=0)) > 50
    assert printed["png"].startswith(str(run / "attention"))


def test_visualize_a_model_without_attention_says_so(tmp_path, capsys):
    run = write_run(tmp_path / "pointnet", {"name": "pointnet_cls", "channels": [16, 32],
                                            "head_hidden": [16]},
                    {"name": "synthetic_shapes", "root": str(tmp_path / "data"),
                     "num_points": 64, "per_class": 2, "rotation": "z"}, "best.pt")
    assert main(["visualize", str(run), "--sample", "test:0"]) != 0
    err = capsys.readouterr().err
    assert "PointNetCls has no attention layers" in err and "Traceback" not in err
    assert not (run / "attention").exists()


def _write_cloud(path, xyz):
    """``x y z nx ny nz`` rows with unit normals along z."""
    np.savetxt(path, np.hstack([xyz, np.tile([0.0, 0.0, 1.0], (len(xyz), 1))]))
    return path


@pytest.mark.parametrize("query", ["xyz:nan,0,0", "xyz:0,inf,0", "xyz:0,0,-inf",
                                   "xyz:1e999,0,0", "xyz:NaN,NaN,NaN"])
def test_a_non_finite_query_is_refused(classifier_run, capsys, query):
    out = classifier_run / "viz"
    assert main(["visualize", str(classifier_run), "--sample", "test:0", "--query", query,
                 "--out", str(out)]) == 2
    err = capsys.readouterr().err.strip()
    assert "is not a finite number" in err and len(err.splitlines()) == 1, err
    assert not out.exists()


@pytest.mark.parametrize("points, needle", [
    (np.zeros((1, 3)), "1 distinct points"),
    (np.eye(3), "3 distinct points"),
    (np.full((300, 3), 2.5), "all 300 points are at one position"),
    (np.repeat(np.eye(3) * 7, 100, axis=0), "3 distinct points (300 points, 297 of them "
                                             "copies)"),
])
def test_degenerate_files_are_refused_before_anything_is_drawn(tmp_path, classifier_run,
                                                               capsys, points, needle):
    src = _write_cloud(tmp_path / "bad.xyzn", points)
    out = tmp_path / "viz"
    assert main(["visualize", str(classifier_run), "--file", str(src), "--out",
                 str(out)]) == 2
    err = capsys.readouterr().err.strip()
    assert needle in err and len(err.splitlines()) == 1, err
    assert not out.exists()


def test_a_flat_or_small_cloud_is_drawn_without_matplotlib_warnings(tmp_path, classifier_run,
                                                                    capsys):
    g = np.random.default_rng(0)
    flat = np.hstack([g.random((128, 2)), np.zeros((128, 1))])  # a plate: z is constant
    line = np.hstack([np.linspace(0, 1, 40)[:, None], np.zeros((40, 2))])  # a rod
    for name, xyz, warned in (("flat", flat, False), ("line", line, False),
                              ("few", g.random((20, 3)), True)):
        src = _write_cloud(tmp_path / f"{name}.xyzn", xyz)
        assert main(["visualize", str(classifier_run), "--file", str(src), "--out",
                     str(tmp_path / "viz")]) == 0
        err = capsys.readouterr().err
        assert "xlim" not in err and "ylim" not in err and "zlim" not in err, err
        assert ("warning:" in err) == warned, err  # 20 points: fewer than 128 / 4


def test_a_large_file_is_cut_to_the_training_size_and_says_how(tmp_path, classifier_run,
                                                               capsys):
    src = _write_cloud(tmp_path / "big.xyzn", np.random.default_rng(0).normal(size=(2000, 3)))
    assert main(["visualize", str(classifier_run), "--file", str(src), "--out",
                 str(tmp_path / "viz"), "--query", "127"]) == 0
    assert "2000 points > --max-points 128: kept 128 by farthest point sampling" in (
        capsys.readouterr().err)
    assert main(["visualize", str(classifier_run), "--file", str(src), "--out",
                 str(tmp_path / "viz"), "--query", "128"]) == 2
    assert "points 0..127" in capsys.readouterr().err


@pytest.mark.parametrize("argv, needle", [
    (["--sample", "test:0", "--category", "cone"], "--category does not apply: the --sample"),
    (["--file", "{src}", "--category", "lamp"], "--category does not apply: "
                                                 "point_transformer_cls takes no object"),
    (["--sample", "test:0", "--max-points", "64"], "--max-points and --sampling apply to "
                                                   "--file clouds"),
    (["--sample", "test:0", "--sampling", "voxel"], "--max-points and --sampling apply"),
])
def test_options_that_cannot_apply_are_errors(tmp_path, classifier_run, capsys, argv, needle):
    src = _write_cloud(tmp_path / "c.xyzn", np.random.default_rng(0).normal(size=(128, 3)))
    argv = [a.format(src=src) for a in argv]
    assert main(["visualize", str(classifier_run), *argv, "--out", str(tmp_path / "v")]) == 2
    err = capsys.readouterr().err.strip()
    assert needle in err and len(err.splitlines()) == 1, err


def test_two_runs_side_by_side_on_one_cloud(classifier_run, tmp_path, capsys):
    nw = write_run(tmp_path / "nw", {"name": "nw_cls", "channels": [16, 32], "blocks": [1, 1],
                                     "k": 8},
                   {"name": "synthetic_shapes", "root": str(tmp_path / "data"),
                    "num_points": 128, "per_class": 4, "rotation": "z"}, "best.pt")
    out = tmp_path / "both"
    assert main(["visualize", str(classifier_run), str(nw), "--sample", "test:cone", "--out",
                 str(out), "--stats", "--clouds", "0", "--format", "svg"]) == 0
    lines = capsys.readouterr().out.splitlines()
    printed = dict(line.split(": ", 1) for line in lines if line.split(": ")[-1].startswith("/"))
    assert {"svg cls", "html cls", "svg nw", "html nw", "runs", "focus"} <= set(printed)
    assert Path(printed["runs"]).name == "test_cone_map_cls_vs_nw.svg"
    text = Path(printed["runs"]).read_text()
    assert "encoder.0.0" in text and "stages.0.0" in text and "predicted" in text
    assert "cls, this cloud" in lines and "nw, this cloud" in lines
    with open(printed["focus_csv"]) as fh:
        rows = list(csv.DictReader(fh))
    assert {r["scope"] for r in rows} == {"cls, this cloud", "nw, this cloud"}
    assert {r["name"] for r in rows if r["scope"].startswith("nw")} == {"stages.0.0", "stages.1.0",
                                                                        "pool"}


def test_a_received_page_opens_with_the_maps_default_queries(classifier_run, capsys):
    import json
    import re

    from pcattn.viz.run import load_model, load_sample
    from pcattn.viz.query import parse_query

    out = classifier_run / "received"
    assert main(["visualize", str(classifier_run), "--sample", "test:1", "--mode", "received",
                 "--out", str(out)]) == 0
    html = (out / "test_1_received_layer0.html").read_text()
    init = json.loads(re.search(r'"init":(\{.*?\})', html).group(1))
    _, run, _ = load_model(classifier_run, "cpu")
    assert init["mode"] == "received" and init["relative"]
    assert init["queries"] == parse_query("fps:4", load_sample(run, "test:1").pos).tolist()
