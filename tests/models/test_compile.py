"""Whole models under ``torch.compile``: traced, a model takes its batch to be clouds of equal
size (``pcattn.models.inputs.equal_clouds``), so sampling and neighbour searches take their
sizes from the shapes; the families below trace in one graph (``fullgraph=True``), give
eager's outputs, run on ``meta`` tensors, and refuse a batch of other sizes."""

from __future__ import annotations

import dataclasses

import pytest
import torch
import torch.nn.functional as F
from torch_geometric.data import Batch, Data

from pcattn.models import create_model
from pcattn.models.registry import model_config_class, model_task

NUM_CLASSES = 4
ONE_GRAPH = ["point_transformer_cls", "point_transformer_seg", "ptv2_cls", "ptv2_seg",
             "pct_cls", "pct_seg", "gat_cls", "gat_seg", "nw_cls", "nw_seg", "pointnet_cls",
             "pointnet_seg"]
# traced in the default run (a few seconds each); the others with the slow tests
TRACED_FAST = ["point_transformer_cls", "ptv2_seg", "gat_cls", "nw_seg"]


def _model(name: str) -> torch.nn.Module:
    torch.manual_seed(0)
    fields = {f.name for f in dataclasses.fields(model_config_class(name))}
    cfg = {"num_classes": NUM_CLASSES}
    if "num_categories" in fields:
        cfg["num_categories"] = 2
    for key in ("feature_channels", "in_channels"):  # the normals in data.x
        if key in fields:
            cfg[key] = 3
    return create_model(name, **cfg).eval()


def _batch(sizes=(40, 40), seed=0) -> Batch:
    g = torch.Generator().manual_seed(seed)
    return Batch.from_data_list([
        Data(pos=torch.rand(n, 3, generator=g), x=F.normalize(torch.randn(n, 3, generator=g)),
             category=torch.tensor([i % 2])) for i, n in enumerate(sizes)])


def _rows(name: str, batch: Batch) -> int:
    return batch.num_nodes if model_task(name) == "part_segmentation" else batch.num_graphs


@pytest.mark.parametrize("name", ONE_GRAPH)
def test_meta_forward_gives_the_shapes(name):
    """Shape inference without data (FSDP-style init on ``meta``)."""
    batch = _batch().to("meta")
    out = _model(name).to("meta")(batch)
    assert out.shape == (_rows(name, batch), NUM_CLASSES) and out.device.type == "meta"


@pytest.mark.parametrize("name", [n if n in TRACED_FAST else pytest.param(
    n, marks=pytest.mark.slow) for n in ONE_GRAPH])
def test_traces_in_one_graph(name):
    """Dynamo alone (``backend="eager"``): a graph break is an error with fullgraph."""
    torch._dynamo.reset()
    model, batch = _model(name), _batch()
    compiled = torch.compile(model, backend="eager", fullgraph=True)
    with torch.no_grad():
        torch.testing.assert_close(compiled(batch), model(batch), rtol=1e-4, atol=1e-4)


def test_a_batch_of_clouds_of_other_sizes_is_refused():
    torch._dynamo.reset()
    compiled = torch.compile(_model("point_transformer_cls"), backend="eager", fullgraph=True)
    with torch.no_grad(), pytest.raises(RuntimeError, match="not 2 clouds of equal size"):
        compiled(_batch((44, 36)))


@pytest.mark.slow
@pytest.mark.parametrize("name", ONE_GRAPH)
def test_compiles_and_matches_eager(name):
    """The whole compiler (inductor), forward and backward, in one graph."""
    torch._dynamo.reset()
    model, batch = _model(name).train(), _batch()
    for module in model.modules():  # the same function in both runs
        if isinstance(module, torch.nn.Dropout):
            module.p = 0.0
    got = torch.compile(model, fullgraph=True)(batch)
    torch.testing.assert_close(got, model(batch), rtol=1e-4, atol=1e-4)
    got.sum().backward()
    assert all(torch.isfinite(p.grad).all() for p in model.parameters() if p.grad is not None)
