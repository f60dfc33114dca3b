"""Tiny training runs for the tests of pcattn.engine: 40 synthetic clouds of 64 points, a
two-stage Point Transformer of 8 and 16 channels."""

from __future__ import annotations

from pathlib import Path

import pytest
import yaml

ROOT = Path(__file__).resolve().parents[1]


def tiny_config(tmp_path: Path, data_root: Path, **train) -> dict:
    """A run config dict; ``train`` entries override the train section."""
    return {
        "model": {"name": "point_transformer_cls", "channels": [8, 16], "blocks": [1, 1],
                  "k": 8, "head_hidden": [16], "dropout": 0.2},
        "data": {"name": "synthetic_shapes", "root": str(data_root), "num_points": 64,
                 "per_class": 4, "rotation": "z", "augment": "modelnet"},
        "train": {"epochs": 4, "batch_size": 8, "lr": 0.005, "out_dir": str(tmp_path / "runs"),
                  "run_name": "tiny", **train},
    }


def tiny_run(tmp_path: Path, data_root: Path, **train):
    from pcattn.engine.config import config_from_dict

    return config_from_dict(tiny_config(tmp_path, data_root, **train))


def write_tiny_config(tmp_path: Path, data_root: Path, **train) -> Path:
    path = tmp_path / "tiny.yaml"
    path.write_text(yaml.safe_dump(tiny_config(tmp_path, data_root, **train)))
    return path


@pytest.fixture(scope="session")
def data_root(tmp_path_factory) -> Path:
    """One synthetic-data cache shared by the engine tests (built on first use)."""
    return tmp_path_factory.mktemp("engine_data")


def untrained_run(folder: Path, model: dict, data: dict, names=("best.pt", "last.pt")) -> Path:
    """A run folder as `pcattn train` writes one (config.yaml, checkpoints) holding an
    untrained model: for the commands that read checkpoints, without training."""
    import torch

    from pcattn.data.registry import build_dataset
    from pcattn.engine.build import dataset_info, fill_model_config
    from pcattn.engine.checkpoint import save_checkpoint
    from pcattn.engine.config import config_from_dict, save_config
    from pcattn.models import create_model

    run = config_from_dict({"model": model, "data": data})
    test_set = build_dataset(run.data, "test")
    fill_model_config(run, test_set)
    torch.manual_seed(0)
    net = create_model(run.model_name, **vars(run.model))
    folder.mkdir(parents=True)
    save_config(run, folder / "config.yaml")
    for name in names:
        save_checkpoint(folder / name, {"model": net.state_dict(), "config": run.to_dict(),
                                        "dataset": dataset_info(test_set), "epoch": 0})
    return folder


@pytest.fixture(scope="session")
def classifier_run(tmp_path_factory, data_root) -> Path:
    """An untrained point_transformer_cls (k=8, trained size 64 points, normals) run folder."""
    return untrained_run(tmp_path_factory.mktemp("cls") / "run",
                         {"name": "point_transformer_cls", "channels": [8, 16],
                          "blocks": [1, 1], "k": 8, "head_hidden": [16]},
                         {"name": "synthetic_shapes", "root": str(data_root),
                          "num_points": 64, "per_class": 2, "rotation": "z"})


@pytest.fixture(scope="session")
def segmenter_run(tmp_path_factory, data_root) -> Path:
    """An untrained point_transformer_seg (k=8, 64 points, 4 object categories) run folder."""
    return untrained_run(tmp_path_factory.mktemp("seg") / "run",
                         {"name": "point_transformer_seg", "channels": [8, 16],
                          "blocks": [1, 1], "k": 8, "head_hidden": [16]},
                         {"name": "synthetic_parts", "root": str(data_root / "parts"),
                          "num_points": 64, "per_class": 2, "rotation": "z"})
