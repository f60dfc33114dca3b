"""Segmentation in crops: every point labelled, by a crop that holds it, the same result as
one forward for a point-wise model, and a permutation of the points followed."""

from __future__ import annotations

import torch
from torch import nn
from torch_geometric.data import Batch, Data

from pcattn.engine.chunked import predict_in_chunks
from pcattn.engine.evaluation import evaluate
from pcattn.engine.tasks import SemanticSegmentationTask


class CropMean(nn.Module):
    """Logits that depend on the whole crop: each point's x plus the crop's mean x."""

    def forward(self, data):
        return data.x + data.x.mean(0, keepdim=True)


class Calls(nn.Module):
    """Remembers the points (their index, carried in x) each call saw; logits name the call."""

    def __init__(self):
        super().__init__()
        self.seen = []

    def forward(self, data):
        self.seen.append(data.x[:, 0].long())
        return torch.nn.functional.one_hot(torch.full((data.num_nodes,), len(self.seen) - 1),
                                           64).float()


def clouds(sizes=(900, 120), seed=0):
    g = torch.Generator().manual_seed(seed)
    return Batch.from_data_list([Data(pos=torch.rand(n, 3, generator=g) * 4,
                                      x=torch.randn(n, 5, generator=g),
                                      y=torch.randint(0, 5, (n,), generator=g))
                                 for n in sizes])


def test_small_clouds_run_whole_and_pointwise_models_agree():
    data = clouds()
    pointwise = nn.Linear(5, 5)
    model = lambda d: pointwise(d.x)  # noqa: E731
    torch.testing.assert_close(predict_in_chunks(model, data, 2000), pointwise(data.x))
    torch.testing.assert_close(predict_in_chunks(model, data, 200), pointwise(data.x))


def test_every_point_is_labelled_by_a_crop_that_holds_it():
    data = Data(pos=torch.rand(1000, 3, generator=torch.Generator().manual_seed(1)))
    data.x = torch.arange(1000, dtype=torch.float)[:, None]
    model = Calls()
    call = predict_in_chunks(model, data, 150).argmax(1)
    assert len(model.seen) >= 1000 // 150 + 1
    assert all(seen.numel() == 150 for seen in model.seen)
    for i in range(1000):
        assert i in model.seen[int(call[i])]


def test_crops_follow_a_permutation_of_the_points():
    data = clouds((700,), seed=2)
    perm = torch.randperm(700, generator=torch.Generator().manual_seed(3))
    shuffled = Batch.from_data_list([Data(pos=data.pos[perm], x=data.x[perm])])
    out, out_p = predict_in_chunks(CropMean(), data, 100), predict_in_chunks(CropMean(),
                                                                             shuffled, 100)
    torch.testing.assert_close(out_p, out[perm])


def test_evaluate_scores_chunked_segmentation():
    data = clouds()
    task = SemanticSegmentationTask(5)
    model = nn.Module()
    model.forward = lambda d: nn.functional.one_hot(d.y, 5).float() + 0.1 * d.x  # noqa: E731
    whole = evaluate(model, [data], task, device=torch.device("cpu"))
    chunked = evaluate(model, [data], task, device=torch.device("cpu"), chunk_points=100)
    assert chunked["miou"] == whole["miou"]
