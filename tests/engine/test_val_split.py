"""Runs that choose best.pt on a val split held out of train: split.json, metrics.json's best
and final (val) and test (best.pt, tested once), `pcattn eval --split val`, and a dataset
without a test split."""

from __future__ import annotations

import csv
import json

import pytest
from enginefixtures import tiny_config

from pcattn.cli import main
from pcattn.data.registry import build_dataset
from pcattn.engine import evaluate_checkpoint, train
from pcattn.engine.config import config_from_dict


def val_run(tmp_path, data_root, data: dict | None = None, **train_section):
    """A tiny run on 10 x 10 synthetic train clouds: 80 train, 20 val (0.2), 30 test."""
    raw = tiny_config(tmp_path, data_root, **{"epochs": 1, "eval_split": "val",
                                              **train_section})
    raw["data"].update({"per_class": 10, "val_fraction": 0.2, **(data or {})})
    return config_from_dict(raw)


def test_one_epoch_with_a_val_split(tmp_path, data_root, capsys):
    run = val_run(tmp_path, data_root)
    metrics = train(run, progress=False)
    run_dir = tmp_path / "runs" / "tiny"
    out = capsys.readouterr().out
    assert "80 train / 20 val clouds" in out and "test overall_accuracy" in out
    split = json.loads((run_dir / "split.json").read_text())
    assert (split["val_fraction"], split["seed"], split["of"]) == (0.2, 0, "train")
    assert (split["clouds"], split["train"], split["val"]) == (100, 80, 20)
    assert all(c == {"train": 8, "val": 2} for c in split["per_class"].values())
    val = build_dataset(run.data, "val")
    assert sorted(i for ids in split["val_clouds"].values() for i in ids) == val.indices.tolist()
    saved = json.loads((run_dir / "metrics.json").read_text())
    assert saved["eval_split"] == "val" and saved["test"] == metrics["test"]
    assert saved["best"]["metrics"]["num_samples"] == saved["final"]["num_samples"] == 20
    assert saved["test"]["num_samples"] == 30 and saved["test"]["epoch"] == 1
    assert saved["test"]["checkpoint"] == "best.pt" and "test_missing" not in saved
    rows = list(csv.DictReader((run_dir / "metrics.csv").open()))
    assert "val/overall_accuracy" in rows[0] and not any(k.startswith("test/") for k in rows[0])
    # pcattn eval rebuilds the same val clouds and the same test split
    again = evaluate_checkpoint(run_dir, split="val")
    assert again["num_samples"] == 20
    assert again["overall_accuracy"] == saved["best"]["metrics"]["overall_accuracy"]
    assert again["loss"] == pytest.approx(saved["best"]["metrics"]["loss"], rel=1e-6)
    test = evaluate_checkpoint(run_dir, split="test")
    assert test["overall_accuracy"] == saved["test"]["overall_accuracy"]
    assert test["loss"] == pytest.approx(saved["test"]["loss"], rel=1e-6)
    assert main(["eval", str(run_dir), "--split", "val", "--device", "cpu"]) == 0
    printed = json.loads(capsys.readouterr().out)
    assert printed["split"] == "val" and printed["num_samples"] == 20


def test_test_metrics_are_best_pt_s_not_the_last_epoch_s(tmp_path, data_root, monkeypatch):
    import pcattn.engine.loop as loop

    real, calls = loop.evaluate, {"n": 0}

    def epoch_1_looks_best(*args, **kwargs):  # val accuracy 1.0, then 0.0; test untouched
        out = real(*args, **kwargs)
        calls["n"] += 1
        if calls["n"] <= 2:
            out["overall_accuracy"] = 1.0 if calls["n"] == 1 else 0.0
        return out

    monkeypatch.setattr(loop, "evaluate", epoch_1_looks_best)
    metrics = train(val_run(tmp_path, data_root, epochs=2), progress=False)
    assert calls["n"] == 3  # two epochs on val, best.pt once on test
    assert metrics["best"]["epoch"] == metrics["test"]["epoch"] == 1
    run_dir = tmp_path / "runs" / "tiny"
    best = evaluate_checkpoint(run_dir / "best.pt", split="test")
    last = evaluate_checkpoint(run_dir / "last.pt", split="test")
    assert best["epoch"] == 1 and last["epoch"] == 2
    assert metrics["test"]["loss"] == pytest.approx(best["loss"], rel=1e-6)
    assert metrics["test"]["loss"] != pytest.approx(last["loss"], rel=1e-6)


def test_no_test_split_records_null_and_why(tmp_path):
    from datafixtures import cloud_rows, write_rows

    root = tmp_path / "mine"
    names = []
    for c in ("a", "b"):
        for k in range(6):
            write_rows(root / c / f"{k}.txt", cloud_rows(40, k))
            names.append(f"{c}/{k}.txt")
    (root / "split.json").write_text(json.dumps({"train": names, "test": []}))
    raw = tiny_config(tmp_path, tmp_path, epochs=1, batch_size=4, eval_split="val")
    raw["data"] = {"name": "folder", "root": str(root), "num_points": 32,
                   "use_normals": False, "val_fraction": 0.2,
                   "cache_dir": str(tmp_path / "cache")}
    metrics = train(config_from_dict(raw), progress=False)
    assert metrics["best"]["metrics"]["num_samples"] == 2  # one of each class
    assert metrics["test"] is None and "no test clouds" in metrics["test_missing"]
    saved = json.loads((tmp_path / "runs" / "tiny" / "metrics.json").read_text())
    assert saved["test"] is None and saved["test_missing"] == metrics["test_missing"]
    split = json.loads((tmp_path / "runs" / "tiny" / "split.json").read_text())
    assert split["val_clouds_by"] == "name"
    held = split["val_clouds"]["a"] + split["val_clouds"]["b"]
    assert len(held) == 2 and set(held) <= set(names)


def test_eval_split_val_without_a_val_split_is_refused(tmp_path, data_root, capsys):
    from enginefixtures import write_tiny_config

    config = write_tiny_config(tmp_path, data_root, eval_split="val")
    assert main(["train", "--config", str(config), "--no-progress"]) == 2
    err = capsys.readouterr().err
    assert "train.eval_split: val" in err and "data.val_fraction" in err
    assert not (tmp_path / "runs").exists()


def test_eval_split_val_on_a_run_without_one(tmp_path, data_root, capsys):
    train(config_from_dict(tiny_config(tmp_path, data_root, epochs=1)), progress=False)
    run_dir = tmp_path / "runs" / "tiny"
    assert not (run_dir / "split.json").exists()
    assert "test" not in json.loads((run_dir / "metrics.json").read_text())
    assert main(["eval", str(run_dir), "--split", "val", "--device", "cpu"]) == 2
    assert "data.val_fraction" in capsys.readouterr().err
