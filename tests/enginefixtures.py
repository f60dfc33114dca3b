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
