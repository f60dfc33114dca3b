"""The val split held out of train (``data.val_fraction``): exact per-class counts, disjoint
and complete, seeded, un-augmented; ``HeldOut`` answers what the engine reads of a dataset;
ShapeNetPart's own val split."""

from __future__ import annotations

import json
import os
import subprocess
import sys

import pytest
import torch
from datafixtures import cloud_rows, write_rows

from pcattn.data.registry import DataConfig, build_dataset
from pcattn.data.split import HeldOut, split_record, stratified_split
from pcattn.engine.config import config_from_dict


def counts(labels, positions) -> list[int]:
    labels = torch.as_tensor(labels)
    return torch.bincount(labels[positions], minlength=int(labels.max()) + 1).tolist()


def test_counts_per_class_are_exact():
    sizes = [1, 2, 3, 5, 10, 25, 30]  # class c has sizes[c] clouds, interleaved
    labels = torch.tensor([c for c, n in enumerate(sizes) for _ in range(n)])
    labels = labels[torch.randperm(len(labels), generator=torch.Generator().manual_seed(3))]
    # round(0.1 n) half up, >= 1 where n >= 2, <= n - 1
    train, val = stratified_split(labels, 0.1, seed=0)
    assert counts(labels, val) == [0, 1, 1, 1, 1, 3, 3]
    assert counts(labels, train) == [1, 1, 2, 4, 9, 22, 27]
    _, val = stratified_split(labels, 0.5, seed=0)
    assert counts(labels, val) == [0, 1, 2, 3, 5, 13, 15]
    _, val = stratified_split(labels, 0.9, seed=0)  # every class keeps a training cloud
    assert counts(labels, val) == [0, 1, 2, 4, 9, 23, 27]


def test_split_is_disjoint_complete_and_seeded():
    labels = torch.arange(40) % 4
    train, val = stratified_split(labels, 0.3, seed=0)
    assert sorted(train.tolist() + val.tolist()) == list(range(40))
    assert not set(train.tolist()) & set(val.tolist())
    again_train, again_val = stratified_split(labels, 0.3, seed=0)
    assert torch.equal(val, again_val) and torch.equal(train, again_train)
    other = stratified_split(labels, 0.3, seed=1)[1]
    assert counts(labels, other) == counts(labels, val) == [3, 3, 3, 3]
    assert not torch.equal(other, val)
    with pytest.raises(ValueError, match="fraction"):
        stratified_split(labels, 1.0, seed=0)


def test_split_is_the_same_in_another_process():
    code = ("import torch; from pcattn.data.split import stratified_split; "
            "print(stratified_split(torch.arange(40) % 4, 0.3, seed=7)[1].tolist())")
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True,
                         check=True, env={**os.environ, "PYTHONHASHSEED": "123"})
    assert json.loads(out.stdout) == stratified_split(torch.arange(40) % 4, 0.3, seed=7)[1].tolist()


@pytest.fixture
def folder(tmp_path):
    """Classes a, b, c of 6, 11 and 3 clouds; the first of each is the test split."""
    root = tmp_path / "mine"
    split = {"train": [], "test": []}
    for c, n in (("a", 6), ("b", 11), ("c", 3)):
        for k in range(n):
            write_rows(root / c / f"{k}.txt", cloud_rows(30, k))
            split["test" if k == 0 else "train"].append(f"{c}/{k}.txt")
    (root / "split.json").write_text(json.dumps(split))
    return root


def folder_config(root, tmp_path, **kwargs) -> DataConfig:
    return DataConfig(name="folder", root=str(root), num_points=20, use_normals=False,
                      cache_dir=str(tmp_path / "cache"), **kwargs)


def test_train_and_val_partition_the_train_split_by_name(folder, tmp_path):
    whole = build_dataset(folder_config(folder, tmp_path), "train")
    cfg = folder_config(folder, tmp_path, val_fraction=0.2, seed=5)
    train, val = build_dataset(cfg, "train"), build_dataset(cfg, "val")
    assert isinstance(train, HeldOut) and isinstance(val, HeldOut)
    assert set(train.names) | set(val.names) == set(whole.names)
    assert not set(train.names) & set(val.names)
    assert len(train) + len(val) == len(whole)
    # the train split has 5 / 10 / 2 clouds of a / b / c: 0.2 of each, rounded, at least 1
    assert counts(whole.labels, torch.arange(len(whole))) == [5, 10, 2]
    assert counts(val.labels, torch.arange(len(val))) == [1, 2, 1]
    assert [val[i].y.item() for i in range(len(val))] == val.labels.tolist()
    assert [str(n).split("/")[0] for n in val.names] == ["a", "b", "b", "c"]
    # another process, another build: the same clouds; another seed: others
    assert build_dataset(cfg, "val").names == val.names
    seeds = {tuple(build_dataset(folder_config(folder, tmp_path, val_fraction=0.2, seed=s),
                                 "val").names) for s in range(6)}
    assert len(seeds) > 1
    record = split_record(train)
    assert record["per_class"] == {"a": {"train": 4, "val": 1}, "b": {"train": 8, "val": 2},
                                   "c": {"train": 1, "val": 1}}
    assert sorted(n for names in record["val_clouds"].values() for n in names) == sorted(val.names)
    assert record["val_clouds_by"] == "name" and (record["train"], record["val"]) == (13, 4)


def test_val_items_are_not_augmented(tmp_path):
    plain = build_dataset(DataConfig(root=str(tmp_path), num_points=32, per_class=5), "train")
    cfg = DataConfig(root=str(tmp_path), num_points=32, per_class=5, val_fraction=0.2,
                     augment="modelnet")
    train, val = build_dataset(cfg, "train"), build_dataset(cfg, "val")
    assert counts(val.labels, torch.arange(len(val))) == [1] * 10 and len(train) == 40
    for i in range(len(val)):
        assert torch.equal(val[i].pos, plain[int(val.indices[i])].pos)  # as stored
    assert torch.equal(val[3].pos, val[3].pos)
    k = int(train.indices[0])
    assert not torch.equal(train[0].pos, plain[k].pos)  # train is augmented
    assert not torch.equal(train[0].pos, train[0].pos)
    record = split_record(train)
    assert record["val_clouds_by"] == "position in the train split"
    assert record["val_clouds"]["box"] == val.indices[val.labels == 0].tolist()


def test_held_out_answers_what_the_engine_reads(tmp_path):
    from pcattn.engine.build import augmentation_generators, data_fields, dataset_info
    from pcattn.engine.tasks import task_for

    cfg = DataConfig(name="synthetic_parts", root=str(tmp_path), num_points=32, per_class=5,
                     val_fraction=0.4, augment="shapenetpart")
    train, val = build_dataset(cfg, "train"), build_dataset(cfg, "val")
    whole = build_dataset(DataConfig(name="synthetic_parts", root=str(tmp_path),
                                     num_points=32, per_class=5), "train")
    assert counts(val.labels, torch.arange(len(val))) == [2, 2, 2, 2]  # by category
    assert val.labels.tolist() == [int(val[i].category) for i in range(len(val))]
    assert data_fields(train) == data_fields(whole)
    info, expected = dataset_info(val), dataset_info(whole)
    assert torch.equal(info.pop("part_mask"), expected.pop("part_mask")) and info == expected
    assert task_for(val).name == "part_segmentation"
    assert augmentation_generators(train)  # the augmentation's generator is reachable
    assert val.num_classes == whole.num_classes and val.categories == whole.categories
    assert "HeldOut('val', 8 of the 20 clouds of SyntheticParts('train'" in repr(val)
    with pytest.raises(AttributeError):
        val.names  # synthetic clouds have no names  # noqa: B018
    with pytest.raises(AttributeError):
        val.items  # noqa: B018 - not forwarded: it is the whole split's


def test_val_of_a_resampled_dataset_is_fixed(shapenet_normal, tmp_path):
    cfg = DataConfig(name="shapenetpart", root=str(shapenet_normal), num_points=16,
                     cache_dir=str(tmp_path), val_fraction=0.5, augment="shapenetpart")
    val = build_dataset(cfg, "val")
    # train + val files: Airplane 2 (1 held out), Mug 1, Table 1 (classes of one keep it)
    assert val.of == "trainval" and len(val) == 1 and val.names[0].startswith("02691156/")
    assert torch.equal(val[0].pos, val[0].pos) and val[0].y.shape == (16,)
    assert len(build_dataset(cfg, "train")) == 3 and val.skipped == []
    assert "HeldOut('val', 1 of the 4 clouds of ShapeNetPart('trainval'" in repr(val)


def test_shapenetpart_official_val_split(shapenet_normal, tmp_path):
    cfg = DataConfig(name="shapenetpart", root=str(shapenet_normal), num_points=16,
                     cache_dir=str(tmp_path))
    val = build_dataset(cfg, "val")
    assert val.split == "val" and val.names == ["04379243/t1.txt"]
    assert build_dataset(cfg, "train").split == "trainval"  # the standard protocol
    selecting = build_dataset(cfg, "train", eval_split="val")
    assert selecting.split == "train" and len(selecting) == 3  # val is not trained on
    run = config_from_dict({"model": {"name": "point_transformer_seg"},
                            "data": {"name": "shapenetpart"}, "train": {"eval_split": "val"}})
    assert run.train.eval_split == "val"


def test_val_without_a_val_split_is_a_clear_error(tmp_path):
    with pytest.raises(ValueError, match=r"data\.val_fraction"):
        build_dataset(DataConfig(root=str(tmp_path), per_class=2, num_points=16), "val")
    with pytest.raises(ValueError, match=r"train\.eval_split: val.*data\.val_fraction"):
        config_from_dict({"train": {"eval_split": "val"}})
    with pytest.raises(ValueError, match=r"train\.eval_split.*\['test', 'val'\]"):
        config_from_dict({"train": {"eval_split": "train"}})
    with pytest.raises(ValueError, match=r"data\.val_fraction must be in \[0, 1\)"):
        DataConfig(val_fraction=1.0)
    with pytest.raises(ValueError, match="unknown split 'valid'"):
        build_dataset(DataConfig(root=str(tmp_path)), "valid")
    run = config_from_dict({"data": {"val_fraction": 0.1}, "train": {"eval_split": "val"}})
    assert run.data.val_fraction == 0.1
