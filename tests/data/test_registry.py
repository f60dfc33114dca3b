import json

import pytest
import torch

from pcattn.data.registry import DataConfig, build_dataset
from pcattn.data.transforms import Compose
from pcattn.engine.config import config_from_dict


def test_new_fields_are_validated_with_the_valid_values():
    for kwargs, needle in [(dict(layout="pointnet"), "data.layout"),
                           (dict(sampling="grid"), "data.sampling"),
                           (dict(augment="heavy"), "data.augment"),
                           (dict(test_ratio=1.5), "data.test_ratio")]:
        with pytest.raises(ValueError, match=needle):
            DataConfig(name="modelnet40", **kwargs)
    with pytest.raises(ValueError, match="data.categories must be a list"):
        config_from_dict({"data": {"name": "shapenetpart", "categories": "Airplane"}})


def test_run_config_reads_modelnet_with_augmentation(modelnet_off, tmp_path):
    run = config_from_dict({"data": {"name": "modelnet40", "root": str(modelnet_off),
                                     "num_points": 32, "augment": "modelnet",
                                     "cache_dir": str(tmp_path)}})
    train, test = build_dataset(run.data, "train"), build_dataset(run.data, "test")
    assert train.num_classes == 40 and (len(train), len(test)) == (3, 3)
    assert isinstance(train.transform, Compose) and len(train.transform.transforms) == 3
    assert not torch.equal(train[0].pos, train[0].pos)  # augmented each time
    assert torch.equal(test[0].pos, test[0].pos)
    ten = build_dataset(DataConfig(name="modelnet10", root=str(modelnet_off), num_points=32,
                                   use_normals=False, cache_dir=str(tmp_path)), "test")
    assert ten.num_classes == 10 and ten[0].x is None


def test_shapenetpart_trains_on_trainval_and_tests_on_test(shapenet_normal, tmp_path):
    cfg = DataConfig(name="shapenetpart", root=str(shapenet_normal), num_points=16,
                     categories=("Airplane",), cache_dir=str(tmp_path))
    train, test = build_dataset(cfg, "train"), build_dataset(cfg, "test")
    assert train.split == "trainval" and len(train) == 2 and len(test) == 1
    assert train.num_classes == 50 and train[0].y.shape == (16,)


def test_folder_through_the_config(tmp_path):
    from datafixtures import cloud_rows, write_rows

    root = tmp_path / "mine"
    for c in ("a", "b"):
        for k in range(3):
            write_rows(root / c / f"{k}.txt", cloud_rows(40, k))
    (root / "split.json").write_text(json.dumps({"train": ["a/0.txt", "b/0.txt", "b/1.txt"],
                                                "test": ["a/1.txt"]}))
    cfg = DataConfig(name="folder", root=str(root), num_points=20, cache_dir=str(tmp_path))
    assert build_dataset(cfg, "train").labels.tolist() == [0, 1, 1]
    assert len(build_dataset(cfg, "test")) == 1


def test_training_loop_runs_on_modelnet_files(modelnet_off, tmp_path):
    from pcattn.engine import train

    run = config_from_dict({
        "model": {"name": "point_transformer_cls", "channels": [8, 16], "blocks": [1, 1],
                  "k": 4, "head_hidden": [16]},
        "data": {"name": "modelnet40", "root": str(modelnet_off), "num_points": 32,
                 "cache_dir": str(tmp_path / "cache")},
        "train": {"epochs": 1, "batch_size": 3, "out_dir": str(tmp_path / "runs"),
                  "device": "cpu"}}, run_name="mn")
    metrics = train(run, progress=False)
    assert metrics["dataset"] == "modelnet40"
    final = metrics["final"]  # accuracy = correct / samples, on the whole test split
    assert final["num_samples"] == len(build_dataset(DataConfig(name="modelnet40", root=str(modelnet_off), num_points=32,
                                     cache_dir=str(tmp_path / "cache")), "test"))
    correct = final["overall_accuracy"] * final["num_samples"]
    assert correct == pytest.approx(round(correct), abs=1e-9)
    assert (tmp_path / "runs" / "mn" / "last.pt").is_file()
