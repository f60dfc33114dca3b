"""model.attention: PCT with each global attention family in its offset form."""

from __future__ import annotations

import pytest
import torch

from pcattn.model_configs.pct import ATTENTION
from pcattn.models import create_model
from pcattn.models.global_stage import OffsetStage, global_attention


def _data(sizes=(40, 28)):
    from torch_geometric.data import Batch, Data

    g = torch.Generator().manual_seed(0)
    return Batch.from_data_list([Data(pos=torch.rand(n, 3, generator=g)) for n in sizes])


@pytest.mark.parametrize("family", ATTENTION)
def test_each_family_trains_and_returns_its_maps(family):
    model = create_model("pct_cls", num_classes=3, channels=16, embed_channels=8, k=4,
                         layers=2, attention=family)
    data = _data()
    model(data).square().sum().backward()
    for name, p in model.named_parameters():
        assert p.grad is not None, name
    model.eval()
    feats = model.forward_features(data, return_attention=True)
    assert len(feats["attention"]) == 2
    torch.testing.assert_close(model.forward_head(feats["pooled"]), model(data))


def test_offset_stage_formula():
    block = global_attention("linear", 8)
    stage = OffsetStage(block, 8)
    x, batch = torch.randn(9, 8), torch.tensor([0] * 5 + [1] * 4)
    torch.testing.assert_close(stage(x, batch), x + stage.lbr(x - block(x, batch)))


def test_unknown_family_and_width_are_config_errors():
    with pytest.raises(ValueError, match=r"unknown attention 'reformer'; valid: \['offset'"):
        create_model("pct_cls", attention="reformer")
    with pytest.raises(ValueError, match="channels must be divisible by 4, got 18"):
        create_model("pct_cls", attention="anchor", channels=18)
