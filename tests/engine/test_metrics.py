"""Part-segmentation metrics against numbers worked out by hand (ShapeNetPart protocol)."""

from __future__ import annotations

import pytest
import torch

from pcattn.engine.metrics import (mask_to_category, part_segmentation_metrics,
                                   part_segmentation_sums, shape_ious)

# two categories: "mug" has parts {0, 1}, "lamp" parts {2, 3, 4}
MASK = torch.tensor([[1, 1, 0, 0, 0], [0, 0, 1, 1, 1]], dtype=torch.bool)
NAMES = ("mug", "lamp")
# shape A (mug):  target 0 0 1 1,   prediction 0 1 1 1
# shape B (lamp): target 2 2 2 3 3, prediction 2 2 2 3 3 (part 4 absent from both)
# shape C (lamp): target 2 3 4,     prediction 3 3 3
TARGET = torch.tensor([0, 0, 1, 1, 2, 2, 2, 3, 3, 2, 3, 4])
PRED = torch.tensor([0, 1, 1, 1, 2, 2, 2, 3, 3, 3, 3, 3])
BATCH = torch.tensor([0, 0, 0, 0, 1, 1, 1, 1, 1, 2, 2, 2])
CATEGORY = torch.tensor([0, 1, 1])
# by hand:
# A: part 0: I=1, U=2 -> 1/2; part 1: I=2, U=3 -> 2/3; shape IoU = (1/2 + 2/3) / 2 = 7/12
# B: parts 2, 3 exact -> 1, 1; part 4 in neither prediction nor label -> 1; shape IoU = 1
# C: part 2: I=0, U=1 -> 0; part 3: I=1, U=3 -> 1/3; part 4: I=0, U=1 -> 0; IoU = 1/9
SHAPE_IOU = [7 / 12, 1.0, 1 / 9]
INSTANCE = (7 / 12 + 1 + 1 / 9) / 3  # = 61/108
PER_CATEGORY = {"mug": 7 / 12, "lamp": (1 + 1 / 9) / 2}  # lamp = 5/9
CLASS = (7 / 12 + 5 / 9) / 2  # = 41/72
ACCURACY = (3 + 5 + 1) / 12


def logits_for(pred, decoy=None):
    """Logits whose arg-max is ``pred``; ``decoy`` (a part) scores higher still everywhere."""
    logits = torch.zeros(pred.numel(), MASK.shape[1])
    logits[torch.arange(pred.numel()), pred] = 5.0
    if decoy is not None:
        logits[:, decoy] = 9.0
    return logits


def test_shape_ious_by_hand():
    got = shape_ious(PRED, TARGET, CATEGORY, BATCH, MASK)
    torch.testing.assert_close(got, torch.tensor(SHAPE_IOU, dtype=torch.float64))


def test_metrics_by_hand():
    m = part_segmentation_metrics(logits_for(PRED), TARGET, CATEGORY, BATCH, MASK, NAMES)
    assert m["instance_miou"] == pytest.approx(61 / 108) == pytest.approx(INSTANCE)
    assert m["class_miou"] == pytest.approx(41 / 72) == pytest.approx(CLASS)
    assert m["per_category_miou"] == pytest.approx(PER_CATEGORY)
    assert m["point_accuracy"] == pytest.approx(ACCURACY)
    assert m["num_shapes"] == 3


def test_parts_of_other_categories_are_masked_before_the_argmax():
    # part 4 (a lamp part) wins every arg-max unmasked; the mug shape must not predict it
    logits = logits_for(PRED, decoy=4)
    masked = mask_to_category(logits, CATEGORY, BATCH, MASK)
    assert masked[:4, 2:].eq(float("-inf")).all() and masked[4:, :2].eq(float("-inf")).all()
    m = part_segmentation_metrics(logits, TARGET, CATEGORY, BATCH, MASK, NAMES)
    # the mug keeps its prediction (7/12); both lamps now predict part 4 everywhere:
    # B: part 2: 0/3, part 3: 0/2, part 4: I=0, U=5 -> 0; C: parts 2, 3: 0, part 4: 1/3 -> 1/9
    assert m["per_category_miou"] == pytest.approx({"mug": 7 / 12, "lamp": (0 + 1 / 9) / 2})
    assert m["instance_miou"] == pytest.approx((7 / 12 + 0 + 1 / 9) / 3)


def test_sums_over_parts_of_the_data_give_the_whole_metrics():
    # as an all_reduce(SUM) over two ranks would: shape A on one, shapes B and C on the other
    logits = logits_for(PRED)
    first = part_segmentation_sums(logits[:4], TARGET[:4], CATEGORY[:1], BATCH[:4], MASK)
    second = part_segmentation_sums(logits[4:], TARGET[4:], CATEGORY[1:], BATCH[4:] - 1, MASK)
    whole = part_segmentation_sums(logits, TARGET, CATEGORY, BATCH, MASK)
    for key in whole:
        torch.testing.assert_close(first[key] + second[key], whole[key])


def test_a_category_without_shapes_is_left_out_of_the_class_mean():
    keep = BATCH == 0
    m = part_segmentation_metrics(logits_for(PRED)[keep], TARGET[keep], CATEGORY[:1],
                                  BATCH[keep], MASK, NAMES)
    assert m["per_category_miou"]["lamp"] is None
    assert m["class_miou"] == pytest.approx(7 / 12) == pytest.approx(m["instance_miou"])
