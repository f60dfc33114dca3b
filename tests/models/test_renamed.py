"""PCT and GAT checkpoints whose encoder was still called ``backbone`` load unchanged."""

from __future__ import annotations

import pytest
import torch

from pcattn.models import create_model


@pytest.mark.parametrize("name", ["pct_cls", "pct_seg", "gat_cls", "gat_seg"])
def test_backbone_keys_load_as_encoder_keys(name):
    torch.manual_seed(0)
    trained = create_model(name)
    old = {k.replace("encoder.", "backbone.", 1) if k.startswith("encoder.") else k: v
           for k, v in trained.state_dict().items()}
    assert any(k.startswith("backbone.") for k in old)
    fresh = create_model(name)
    fresh.load_state_dict(old)  # strict: every key found under its new name
    for key, value in trained.state_dict().items():
        assert torch.equal(fresh.state_dict()[key], value), key
