"""The command line: clear non-zero exits on bad configs, and a short end-to-end train."""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path

import pytest
import yaml

from pcattn.cli import main

ROOT = Path(__file__).resolve().parents[2]


def write_config(tmp_path, **sections) -> Path:
    cfg = {"model": {"name": "point_transformer_cls", "channels": [16, 32], "blocks": [1, 1],
                     "k": 8, "head_hidden": [32]},
           "data": {"name": "synthetic_shapes", "root": str(tmp_path / "data"),
                    "num_points": 128, "per_class": 12, "rotation": "z"},
           "train": {"epochs": 8, "batch_size": 8, "lr": 0.005,
                     "out_dir": str(tmp_path / "runs")}}
    for name, values in sections.items():
        cfg[name].update(values)
    path = tmp_path / "tiny.yaml"
    path.write_text(yaml.safe_dump(cfg))
    return path


def test_missing_config_exits_nonzero(tmp_path, capsys):
    assert main(["train", "--config", str(tmp_path / "nope.yaml")]) != 0
    assert "config file not found" in capsys.readouterr().err


def test_unknown_key_names_valid_keys(tmp_path, capsys):
    path = write_config(tmp_path, model={"heads_typo": 3})
    assert main(["train", "--config", str(path)]) != 0
    err = capsys.readouterr().err
    assert "heads_typo" in err and "channels" in err and "ratio" in err


def test_unknown_override_and_bad_value(tmp_path, capsys):
    path = write_config(tmp_path)
    assert main(["train", "--config", str(path), "--set", "train.epoch=3"]) != 0
    assert "epochs" in capsys.readouterr().err
    assert main(["train", "--config", str(path), "--set", "train.epochs=many"]) != 0
    assert "train.epochs must be an integer" in capsys.readouterr().err
    assert main(["train", "--config", str(path), "--set", "model.pool=median"]) != 0
    assert "pool must be" in capsys.readouterr().err
    assert main(["train", "--config", str(path), "--set", "data.name=modelnet9"]) != 0
    assert "unknown dataset" in capsys.readouterr().err
    assert main(["train", "--config", str(path), "--set", "data.name=synthetic_parts"]) != 0
    assert "needs a classification dataset" in capsys.readouterr().err
    assert main(["train", "--config", str(path), "--set", "train.optimiser=sgd"]) != 0
    assert "did you mean 'optimizer'" in capsys.readouterr().err


def test_short_train_beats_chance(tmp_path, capsys):
    path = write_config(tmp_path)
    assert main(["train", "--config", str(path), "--no-progress"]) == 0
    run = tmp_path / "runs" / "tiny"
    metrics = json.loads((run / "metrics.json").read_text())
    final = metrics["final"]
    assert final["num_samples"] == 30  # 3 test clouds per class x 10 classes
    assert final["overall_accuracy"] >= 0.4, final  # chance is 0.1; seeds 0-2 gave 0.6-0.7
    saved = yaml.safe_load((run / "config.yaml").read_text())
    assert saved["model"]["num_classes"] == 10 and saved["data"]["num_points"] == 128
    model = saved["model"]
    assert model["feature_channels"] == 3  # normals: 3 channels filled in from data.x
    # eval rebuilds the model from the checkpoint and gets the same number
    capsys.readouterr()
    assert main(["eval", str(run / "last.pt")]) == 0
    again = json.loads(capsys.readouterr().out)
    assert again["overall_accuracy"] == pytest.approx(final["overall_accuracy"])
    # predict names a class of the training data, with the top 5 in decreasing probability
    from datafixtures import write_off

    from pcattn.data import SHAPE_CLASSES

    cube = write_off(tmp_path / "cube.off")
    assert main(["predict", str(run / "last.pt"), str(cube), "--json"]) == 0
    res = json.loads(capsys.readouterr().out)
    probs = [p for _, p in res["top5"]]
    assert res["class"] in SHAPE_CLASSES and res["class"] == res["top5"][0][0]
    assert len(probs) == 5 and probs == sorted(probs, reverse=True) and sum(probs) <= 1 + 1e-6
    # a second run with the same name goes next to the first, which stays as it was
    before = (run / "last.pt").read_bytes()
    assert main(["train", "--config", str(path), "--no-progress", "--set", "train.epochs=1"]) == 0
    assert (tmp_path / "runs" / "tiny-2" / "metrics.json").is_file()
    assert (run / "last.pt").read_bytes() == before


def test_module_entry_point_and_version():
    out = subprocess.run([sys.executable, "-m", "pcattn", "--version"], capture_output=True,
                         text=True, cwd=ROOT, check=True)
    assert out.stdout.startswith("pcattn ")
    out = subprocess.run([sys.executable, "-m", "pcattn", "models"], capture_output=True,
                         text=True, cwd=ROOT, check=True)
    assert "point_transformer_cls" in out.stdout.split()


def test_every_shipped_config_loads():
    from pcattn.engine import load_config

    paths = sorted((ROOT / "configs").glob("*.yaml"))
    assert paths
    for path in paths:
        run = load_config(path)
        assert run.train.run_name == path.stem
