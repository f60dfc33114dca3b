"""Tasks chosen from the data, and the segmentation task's loss and exact, summable state."""

from __future__ import annotations

import pytest
import torch
from torch_geometric.data import Batch, Data

from pcattn.engine.tasks import ClassificationTask, SegmentationTask, task_for

MASK = torch.tensor([[1, 1, 0, 0, 0], [0, 0, 1, 1, 1]], dtype=torch.bool)


def batch_of(targets, categories):
    return Batch.from_data_list([Data(pos=torch.zeros(len(t), 3), y=torch.tensor(t),
                                      category=torch.tensor([c]))
                                 for t, c in zip(targets, categories)])


class PartSet(list):
    num_classes, num_categories, categories, part_mask = 5, 2, ("mug", "lamp"), MASK


def test_task_for_picks_from_the_labels():
    cls = [Data(pos=torch.zeros(4, 3), y=torch.tensor([1]))]

    class ClassSet(list):
        num_classes = 3

    assert isinstance(task_for(ClassSet(cls)), ClassificationTask)
    parts = PartSet([Data(pos=torch.zeros(3, 3), y=torch.tensor([2, 3, 4]),
                          category=torch.tensor([1]))])
    task = task_for(parts)
    assert isinstance(task, SegmentationTask) and task.best_metric == "instance_miou"
    with pytest.raises(ValueError, match="category"):
        task_for([Data(pos=torch.zeros(3, 3), y=torch.tensor([0, 1, 1]))])


def test_loss_is_the_mean_cross_entropy_over_points():
    batch = batch_of([[0, 1], [2, 3, 4]], [0, 1])
    logits = torch.randn(5, 5, generator=torch.Generator().manual_seed(0))
    by_hand = -(logits.log_softmax(-1)[torch.arange(5), batch.y]).mean()
    torch.testing.assert_close(SegmentationTask(MASK).loss(logits, batch), by_hand)


def test_state_accumulates_batches_exactly():
    # shape A (mug): target 0 0 1 1, prediction 0 1 1 1 -> IoU (1/2 + 2/3) / 2 = 7/12
    # shape C (lamp): target 2 3 4, prediction 3 3 3 -> (0 + 1/3 + 0) / 3 = 1/9
    task = SegmentationTask(MASK, ("mug", "lamp"))
    state = task.new_state()
    for target, pred, cat in (([0, 0, 1, 1], [0, 1, 1, 1], 0), ([2, 3, 4], [3, 3, 3], 1)):
        logits = torch.nn.functional.one_hot(torch.tensor(pred), 5).float()
        task.update(state, logits, batch_of([target], [cat]))
    m = task.compute(state)
    assert m["instance_miou"] == pytest.approx((7 / 12 + 1 / 9) / 2)
    assert m["class_miou"] == pytest.approx((7 / 12 + 1 / 9) / 2)
    assert m["point_accuracy"] == pytest.approx(4 / 7)
    assert state["shapes"].tolist() == [1, 1]
