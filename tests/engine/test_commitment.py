"""train.commitment_weight: ClusterAttention's commitment loss in a training run."""

from __future__ import annotations

import csv

import pytest
import torch

from enginefixtures import tiny_config, tiny_run
from pcattn.engine.commitment import cluster_blocks, commitment_loss
from pcattn.engine.config import config_from_dict
from pcattn.models import create_model

PCT_CLUSTER = {"name": "pct_cls", "channels": 16, "embed_channels": 8, "k": 4,
               "fuse_channels": 32, "head_hidden": [16], "attention": "cluster"}


def test_the_loss_is_the_weighted_sum_over_the_blocks():
    from torch_geometric.data import Batch, Data

    model = create_model("pct_cls", num_classes=3, **{k: v for k, v in PCT_CLUSTER.items()
                                                     if k != "name"})
    blocks = cluster_blocks(model, "pct_cls")
    assert len(blocks) == model.config.layers
    g = torch.Generator().manual_seed(0)
    model(Batch.from_data_list([Data(pos=torch.rand(n, 3, generator=g)) for n in (40, 24)]))
    each = [b.commitment_loss for b in blocks]
    assert all(c is not None and c > 0 for c in each)
    torch.testing.assert_close(commitment_loss(blocks, 0.5), 0.5 * sum(each))


def test_a_model_without_cluster_attention_is_a_clear_error(tmp_path, data_root):
    from pcattn.engine.loop import train

    run = tiny_run(tmp_path, data_root, epochs=1, commitment_weight=0.1)
    with pytest.raises(ValueError, match="point_transformer_cls has none; set "
                                         "train.commitment_weight: 0"):
        train(run, progress=False)


def test_a_negative_weight_is_an_error(tmp_path, data_root):
    with pytest.raises(ValueError, match="train.commitment_weight must be >= 0"):
        config_from_dict(tiny_config(tmp_path, data_root, commitment_weight=-1))


def test_training_adds_the_loss(tmp_path, data_root):
    """Five steps of pct_cls with cluster attention: the weighted commitment loss is in
    the training loss."""
    from pcattn.engine.loop import train

    def losses(**commit):
        cfg = tiny_config(tmp_path / str(commit), data_root, epochs=1, threads=1, **commit)
        cfg["model"] = PCT_CLUSTER
        train(config_from_dict(cfg), progress=False)
        folder = next((tmp_path / str(commit) / "runs").iterdir())
        with open(folder / "metrics.csv") as f:
            return [float(row["train/loss"]) for row in csv.DictReader(f)]

    plain, committed = losses(), losses(commitment_weight=1.0)
    assert committed[0] > plain[0]
