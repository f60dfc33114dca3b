"""train.sad_weight / train.sad_start: self-attention distillation in a training run."""

from __future__ import annotations

import csv

import pytest
import torch

from enginefixtures import tiny_config, tiny_run
from pcattn.engine.config import config_from_dict
from pcattn.engine.sad import WithDistillation, sad_weight_at
from pcattn.models import create_model
from pcattn.nn.distillation import attention_distillation_loss


def _batch(sizes=(20, 12)):
    from torch_geometric.data import Batch, Data

    g = torch.Generator().manual_seed(0)
    return Batch.from_data_list([Data(pos=torch.rand(n, 3, generator=g)) for n in sizes])


def test_warm_up_then_the_weight():
    assert [sad_weight_at(e, 0.1, 2) for e in range(4)] == [0.0, 0.0, 0.1, 0.1]
    assert sad_weight_at(0, 0.1, 0) == 0.1


def test_wrapper_gives_the_models_logits_and_the_weighted_loss():
    model = create_model("point_transformer_cls", channels=[8, 16], blocks=[1, 1], k=4,
                         num_classes=3).eval()
    data = _batch()
    wrapped = WithDistillation(model, "point_transformer_cls")
    logits, extra = wrapped(data)
    torch.testing.assert_close(logits, model(data))
    assert extra is None  # weight 0 until the loop sets it: nothing computed
    wrapped.weight = 0.1
    logits, extra = wrapped(data)
    stages = model.forward_features(data)["stages"]
    torch.testing.assert_close(extra, 0.1 * attention_distillation_loss(stages))
    assert extra > 0


def test_a_model_without_stages_is_a_clear_error():
    model = create_model("pct_cls", num_classes=3, channels=16, embed_channels=8, k=4)
    with pytest.raises(ValueError, match="pct_cls has none; set train.sad_weight: 0"):
        WithDistillation(model, "pct_cls")(_batch())


@pytest.mark.parametrize("key", ["sad_weight", "sad_start"])
def test_negative_settings_are_errors(tmp_path, data_root, key):
    with pytest.raises(ValueError, match="train.sad_weight and train.sad_start must be >= 0"):
        config_from_dict(tiny_config(tmp_path, data_root, **{key: -1}))


def test_training_adds_the_loss_after_the_warm_up(tmp_path, data_root):
    from pcattn.engine.loop import train

    def losses(**sad):
        run = tiny_run(tmp_path / str(sad), data_root, epochs=2, threads=1, **sad)
        train(run, progress=False)
        folder = next((tmp_path / str(sad) / "runs").iterdir())
        with open(folder / "metrics.csv") as f:
            return [float(row["train/loss"]) for row in csv.DictReader(f)]

    plain, with_sad = losses(), losses(sad_weight=5.0, sad_start=1)
    assert plain[0] == with_sad[0]  # the warm-up epoch is the plain run, bit for bit
    assert plain[1] != with_sad[1]
