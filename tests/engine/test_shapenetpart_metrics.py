"""ShapeNetPart files (the PointNet++ txt layout) through the reader, the task and the
metrics, and through `pcattn train` with the segmenter."""

from __future__ import annotations

import json

import pytest
import torch
import yaml
from torch import nn
from torch_geometric.loader import DataLoader

from pcattn.cli import main
from pcattn.data.shapenetpart import ShapeNetPart
from pcattn.engine.evaluation import evaluate
from pcattn.engine.tasks import SegmentationTask, task_for

from datafixtures import shapenet_normal  # noqa: F401  (fixture)


class PartZero(nn.Module):
    """Logits that prefer global part 0 (an Airplane part) at every point, the rest tied."""

    def forward(self, data):
        logits = torch.zeros(data.pos.shape[0], 50)
        logits[:, 0] = 1.0
        return logits


def test_metrics_of_a_known_prediction_by_hand(shapenet_normal, tmp_path):  # noqa: F811
    test = ShapeNetPart(shapenet_normal, "test", num_points=None, cache_dir=tmp_path)
    task = task_for(test)
    assert isinstance(task, SegmentationTask) and task.part_mask.shape == (16, 50)
    m = evaluate(PartZero(), DataLoader(test, batch_size=2), task, device=torch.device("cpu"))
    # Airplane a3: 70 points, labels i % 4 over parts 0-3 -> 18, 18, 17, 17 points; all
    # predicted 0: IoU 18/70, 0, 0, 0 -> shape 18/70/4 = 9/140.
    # Mug m2: 110 points, parts 36, 37 alternating (55 each); part 0 is masked out, 36 and
    # 37 tie and the arg-max takes 36: IoU 55/110, 0 -> shape 1/4.
    assert m["per_category_miou"]["Airplane"] == pytest.approx(9 / 140)
    assert m["per_category_miou"]["Mug"] == pytest.approx(1 / 4)
    assert m["per_category_miou"]["Chair"] is None and m["num_shapes"] == 2
    assert m["instance_miou"] == pytest.approx((9 / 140 + 1 / 4) / 2)
    assert m["class_miou"] == pytest.approx((9 / 140 + 1 / 4) / 2)
    assert m["point_accuracy"] == pytest.approx((18 + 55) / 180)


def test_train_the_segmenter_on_shapenetpart_files(shapenet_normal, tmp_path):  # noqa: F811
    cfg = {"model": {"name": "point_transformer_seg", "channels": [8, 16], "blocks": [1, 1],
                     "k": 4, "head_hidden": [8]},
           "data": {"name": "shapenetpart", "root": str(shapenet_normal), "num_points": 64,
                    "cache_dir": str(tmp_path / "cache")},
           "train": {"epochs": 1, "batch_size": 2, "out_dir": str(tmp_path / "runs")}}
    path = tmp_path / "snp.yaml"
    path.write_text(yaml.safe_dump(cfg))
    assert main(["train", "--config", str(path), "--no-progress"]) == 0
    metrics = json.loads((tmp_path / "runs" / "snp" / "metrics.json").read_text())["final"]
    assert metrics["num_shapes"] == 2
    present = {k for k, v in metrics["per_category_miou"].items() if v is not None}
    assert present == {"Airplane", "Mug"}
    saved = yaml.safe_load((tmp_path / "runs" / "snp" / "config.yaml").read_text())["model"]
    assert (saved["num_classes"], saved["num_categories"], saved["feature_channels"]) == (50, 16, 3)
