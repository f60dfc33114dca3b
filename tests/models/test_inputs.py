"""Every model reads its input through the same checks (pcattn.models.inputs): a feature
width other than the config's, and a missing or unknown object category, give the same
message whichever model is asked."""

from __future__ import annotations

import pytest
import torch
from torch_geometric.data import Batch, Data

from pcattn.model_configs import MODELS
from pcattn.models import create_model

SMALL = [name for name in MODELS if not name.endswith("_base")]


def _cloud(features: int | None, category: int | None = None) -> Batch:
    g = torch.Generator().manual_seed(0)
    data = Data(pos=torch.rand(64, 3, generator=g),
                x=None if features is None else torch.rand(64, features, generator=g))
    if category is not None:
        data.category = torch.tensor([category])
    return Batch.from_data_list([data])


@pytest.mark.parametrize("name", SMALL)
def test_a_feature_width_other_than_the_config_names_the_setting(name):
    model = create_model(name, feature_channels=3).eval()
    with pytest.raises(ValueError, match=r"expects 3 extra feature channels in data.x, got 5; "
                                         r"set model.feature_channels=5"):
        model(_cloud(5, category=0))
    with pytest.raises(ValueError, match="expects 3 extra feature channels in data.x, got 0"):
        model(_cloud(None, category=0))


@pytest.mark.parametrize("name", [n for n in SMALL if MODELS[n].task == "part_segmentation"])
def test_a_segmenter_without_or_beyond_its_categories_says_so(name):
    model = create_model(name, num_categories=4).eval()
    with pytest.raises(ValueError, match=r"num_categories=4 and needs data.category \[B\]"):
        model(_cloud(None))
    with pytest.raises(ValueError, match=r"data.category holds 7 but the model was built with "
                                         r"num_categories=4"):
        model(_cloud(None, category=7))
