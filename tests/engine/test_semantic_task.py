"""Semantic segmentation (scenes): mIoU from a confusion matrix against IoUs counted by
hand, and the task chosen for a dataset without object categories."""

from __future__ import annotations

import pytest
import torch
import torch.nn.functional as F
from torch_geometric.data import Batch, Data

from pcattn.engine.metrics import semantic_segmentation_metrics_from_confusion
from pcattn.engine.tasks import SegmentationTask, SemanticSegmentationTask, task_for


def test_miou_counts_each_class_once_and_skips_absent_ones():
    target = torch.tensor([0, 0, 0, 1, 1, 2, 2, 2])
    pred = torch.tensor([0, 0, 1, 1, 2, 2, 2, 0])
    task = SemanticSegmentationTask(4, ("a", "b", "c", "d"))
    state = task.new_state()
    logits = F.one_hot(pred, 4).float()
    half = Batch.from_data_list([Data(y=target[:5], pos=torch.zeros(5, 3)),
                                 Data(y=target[5:], pos=torch.zeros(3, 3))])
    task.update(state, logits, half)
    got = task.compute(state)
    # class 0: tp 2, fp 1, fn 1 -> 2/4; class 1: tp 1, fp 1, fn 1 -> 1/3; class 2: tp 2, fp 1,
    # fn 1 -> 2/4; class 3: absent from targets and predictions
    assert got["per_class_iou"] == {"a": pytest.approx(0.5), "b": pytest.approx(1 / 3),
                                    "c": pytest.approx(0.5), "d": None}
    assert got["miou"] == pytest.approx((0.5 + 1 / 3 + 0.5) / 3)
    assert got["point_accuracy"] == pytest.approx(5 / 8)
    assert task.best_metric in got
    assert semantic_segmentation_metrics_from_confusion(torch.zeros(2, 2))["miou"] == 0.0


def test_task_for_reads_scenes_as_semantic_and_parts_as_parts():
    class Scenes(list):
        num_classes, num_categories, classes = 3, 0, ("x", "y", "z")

    scenes = Scenes([Data(pos=torch.zeros(4, 3), y=torch.tensor([0, 1, 2, 0]))])
    task = task_for(scenes, label_smoothing=0.1)
    assert isinstance(task, SemanticSegmentationTask) and task.classes == ("x", "y", "z")
    assert task.criterion.label_smoothing == 0.1

    class Parts(list):
        num_classes, num_categories = 3, 1
        part_mask = torch.ones(1, 3, dtype=torch.bool)

    parts = Parts([Data(pos=torch.zeros(4, 3), y=torch.tensor([0, 1, 2, 0]),
                        category=torch.tensor([0]))])
    assert isinstance(task_for(parts), SegmentationTask)
