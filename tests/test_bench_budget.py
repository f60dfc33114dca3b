"""``pcattn bench budget``: the tables from hand-made metrics, and a tiny sweep end to end."""

from __future__ import annotations

import csv
from pathlib import Path

import pytest
import yaml

from pcattn.bench import budget as bench_budget
from pcattn.bench.budget import Entry, metrics_row, parse_entries
from pcattn.bench.budget_report import format_markdown, percent, split_label, summarize
from pcattn.cli import main

ROOT = Path(__file__).resolve().parents[1]


def metrics(model="pointnet_cls", acc=0.5, mca=0.4, test=None, split="val", epochs=3,
            rate=100.0) -> dict:
    """What ``train`` returns, the fields the table reads."""
    return {"model": model, "parameters": 1234, "epochs": epochs, "eval_split": split,
            "best": {"epoch": epochs - 1, "metric": "overall_accuracy", "value": acc,
                     "metrics": {"overall_accuracy": acc, "mean_class_accuracy": mca}},
            "test": None if test is None else {"overall_accuracy": test,
                                               "mean_class_accuracy": test - 0.1},
            "clouds_per_second": rate, "wall_seconds": 60.0, "device": "cpu",
            "run_dir": "runs/x"}


def row(config, seed, m=None, reason="", val_fraction=0.1) -> dict:
    base = {"config": config, "seed": seed, "overrides": "", "val_fraction": val_fraction}
    if m is None:
        return {**base, "model": "", "status": "failed", "reason": reason}
    return {**base, **metrics_row(m), "status": "ok", "reason": ""}


def test_summary_means_and_ranges_over_seeds():
    rows = [row("a", 0, metrics(acc=0.80, mca=0.70, test=0.75, epochs=3, rate=10.0)),
            row("a", 1, metrics(acc=0.90, mca=0.60, test=0.85, epochs=4, rate=30.0)),
            row("b", 0, metrics(model="nw_cls", acc=0.5, split="test")),
            row("a", 2, reason="ValueError: the loss is nan")]
    a, b = summarize(rows)
    assert (a["config"], a["runs"], a["failed"], a["model"]) == ("a", 3, 1, "pointnet_cls")
    assert a["epochs"] == 3.5 and a["clouds_per_second"] == 20.0
    assert a["accuracy"] == pytest.approx((0.85, 0.80, 0.90))
    assert a["mean_class_accuracy"] == pytest.approx((0.65, 0.60, 0.70))
    assert a["test_accuracy"] == pytest.approx((0.80, 0.75, 0.85))
    assert a["split"] == "validation split (data.val_fraction=0.1)"
    assert b["split"] == "test split" and b["test_accuracy"] is None
    assert percent(a["accuracy"]) == "85.0 [80.0-90.0]" and percent(b["accuracy"]) == "50.0"


def test_segmenters_get_point_accuracy_and_miou_columns():
    seg = {"model": "ptv3_seg", "parameters": 99, "epochs": 2, "eval_split": "test",
           "best": {"epoch": 1, "metric": "miou",
                    "metrics": {"miou": 0.6, "point_accuracy": 0.9}},
           "test": None, "clouds_per_second": 4.0, "wall_seconds": 60.0, "device": "cpu",
           "run_dir": "runs/s"}
    rows = [row("s", 0, seg), row("s", 1, {**seg, "best": {**seg["best"], "metrics": {
        "miou": 0.7, "point_accuracy": 0.8}}}), row("c", 0, metrics(acc=0.5, mca=0.4))]
    s, c = summarize(rows)
    assert s["miou"] == pytest.approx((0.65, 0.6, 0.7))
    assert s["accuracy"] == pytest.approx((0.85, 0.8, 0.9)) and c["miou"] is None
    header = {"command": "pcattn bench budget --budget 1", "started": "then", "budget": 1.0,
              "entries": []}
    md = format_markdown(rows, header)
    assert "| accuracy % | mean class acc. % | mIoU % | test acc. % (best.pt) |" in md
    assert "| s | ptv3_seg | 99 | 2 | 2.0 | 85.0 [80.0-90.0] | - | 65.0 [60.0-70.0] | - | - |" in md
    assert "| c | pointnet_cls | 1,234 | 1 | 3.0 | 50.0 | 40.0 | - | - | - | 100.0 |" in md
    assert "mIoU %" not in format_markdown(rows[2:], header)


def test_split_labels():
    assert split_label("val", 0.1) == "validation split (data.val_fraction=0.1)"
    assert split_label("val", 0.0) == "validation split (the dataset's own)"
    assert split_label("test", 0.1) == "test split"


def test_a_config_whose_runs_all_failed_has_no_numbers():
    header = {"command": "pcattn bench budget --budget 1", "started": "then", "budget": 1.0,
              "entries": [Entry("c.yaml", ("model.name=x",), "c-x")]}
    md = format_markdown([row("c-x", 0, reason="ValueError: unknown model 'x'")], header)
    assert "| c-x | - | - | 1 (1 failed) | - | - | - | - | - | - |" in md
    assert "- c-x seed 0: ValueError: unknown model 'x'" in md
    assert "- c-x: `c.yaml` with `model.name=x`" in md


def test_entries_split_overrides_at_colons_and_get_distinct_labels():
    nw = str(ROOT / "configs/nw_modelnet40.yaml")
    a, b, c = parse_entries([nw, f"{nw}:model.name=nw_cls:model.channels=[8,16]",
                             f"{nw}:train.device=cuda:1"])
    assert (a.label, a.overrides) == ("nw_modelnet40", ())
    assert (b.label, b.overrides) == ("nw_modelnet40-nw_cls",
                                      ("model.name=nw_cls", "model.channels=[8,16]"))
    assert (c.label, c.overrides) == ("nw_modelnet40-2", ("train.device=cuda:1",))
    with pytest.raises(FileNotFoundError, match="nope.yaml"):
        parse_entries(["configs/nope.yaml:model.k=8"])


def test_default_configs_are_the_modelnet40_ones_without_the_mesh_one(monkeypatch):
    monkeypatch.chdir(ROOT)
    found = bench_budget.default_configs()
    assert "configs/pointnet_modelnet40.yaml" in found and len(found) >= 5
    assert all(p.endswith("_modelnet40.yaml") for p in found)


def test_bad_arguments_stop_before_any_run(tmp_path):
    config = [str(ROOT / "configs/pointnet_synthetic.yaml")]
    with pytest.raises(ValueError, match="--budget MINUTES"):
        bench_budget.run(config, budget=None, out=str(tmp_path))
    with pytest.raises(ValueError, match="the sweep sets"):
        bench_budget.run(config, budget=1, sets=["train.seed=3"], out=str(tmp_path))
    with pytest.raises(ValueError, match="distinct"):
        bench_budget.run(config, budget=1, seeds=[1, 1], out=str(tmp_path))
    (tmp_path / "budget.csv").write_text("")
    with pytest.raises(ValueError, match="already holds a sweep"):
        bench_budget.run(config, budget=1, out=str(tmp_path))


def test_an_error_inside_training_fails_that_run_only(tmp_path, monkeypatch, capsys):
    import pcattn.engine.loop as loop

    def fake_train(run, progress):
        if run.model_name == "nw_cls":
            raise RuntimeError("out of\nmemory")
        return {**metrics(model=run.model_name), "run_dir": str(tmp_path)}

    monkeypatch.setattr(loop, "train", fake_train)
    configs = [str(ROOT / f"configs/{n}_synthetic.yaml") for n in ("nw", "pointnet")]
    rows = bench_budget.run(configs, budget=1, seeds=[0, 1], out=str(tmp_path))
    assert [(r["config"], r["seed"], r["status"]) for r in rows] == [
        ("nw_synthetic", 0, "failed"), ("pointnet_synthetic", 0, "ok"),
        ("nw_synthetic", 1, "failed"), ("pointnet_synthetic", 1, "ok")]
    assert rows[0]["reason"] == "RuntimeError: out of memory"
    assert "nw_synthetic seed 1: FAILED: RuntimeError: out of memory" in capsys.readouterr().out


def test_tiny_sweep_end_to_end(tmp_path, capsys):
    out = tmp_path / "sweep"
    configs = [f"{ROOT}/configs/pointnet_synthetic.yaml:model.channels=[16,32]:"
               "model.head_hidden=[16]",
               f"{ROOT}/configs/nw_synthetic.yaml:model.channels=[8,16]:model.blocks=[1,1]:"
               "model.k=8",
               f"{ROOT}/configs/pointnet_synthetic.yaml:model.heads_typo=3"]
    assert main(["bench", "budget", "--configs", *configs, "--budget", "0.05", "--seeds", "0",
                 "1", "--set", f"data.root={tmp_path / 'data'}", "data.num_points=64",
                 "data.per_class=4", "data.val_fraction=0.25", "train.eval_split=val",
                 "train.batch_size=8", "--out", str(out)]) == 0
    printed = [line for line in capsys.readouterr().out.splitlines() if " seed " in line]
    assert len(printed) == 6

    rows = list(csv.DictReader((out / "budget.csv").open()))
    assert [(r["config"], r["seed"], r["status"]) for r in rows] == [
        ("pointnet_synthetic", "0", "ok"), ("nw_synthetic", "0", "ok"),
        ("pointnet_synthetic-2", "0", "failed")] + [
        ("pointnet_synthetic", "1", "ok"), ("nw_synthetic", "1", "ok"),
        ("pointnet_synthetic-2", "1", "failed")]
    for r in rows[:2] + rows[3:5]:
        assert r["eval_split"] == "val" and r["val_fraction"] == "0.25"
        assert 0 <= float(r["accuracy"]) <= 1 and 0 <= float(r["test_accuracy"]) <= 1
        assert int(r["epochs"]) >= 1 and int(r["parameters"]) > 0
        assert float(r["clouds_per_second"]) > 0 and float(r["wall_seconds"]) > 0
        assert Path(r["run_dir"]).name == f"{r['config']}-s{r['seed']}"
        assert (Path(r["run_dir"]) / "metrics.json").is_file()
        ran = yaml.safe_load((Path(r["run_dir"]) / "config.yaml").read_text())
        assert ran["train"]["seed"] == int(r["seed"]) and ran["train"]["time_budget"] == 0.05
        assert ran["data"]["seed"] == 0 and ran["data"]["num_points"] == 64
    assert {r["model"] for r in rows[:2]} == {"pointnet_cls", "nw_cls"}
    assert "heads_typo" in rows[2]["reason"] and rows[2]["run_dir"] == ""

    md = (out / "budget.md").read_text()
    assert "Command: `pcattn bench budget --configs" in md and "--seeds 0 1" in md
    assert "torch " in md and "device cpu" in md
    table = [line for line in md.splitlines() if line.startswith("| ")][1:]
    assert [line.split(" | ")[0] for line in table] == [
        "| pointnet_synthetic", "| nw_synthetic", "| pointnet_synthetic-2"]
    assert table[0].endswith("| validation split (data.val_fraction=0.25) |")
    assert "| 2 (2 failed) |" in table[2]
    assert "- pointnet_synthetic-2 seed 1: ValueError:" in md
