"""The model registry: names, overrides, clear errors."""

from __future__ import annotations

import pytest

from pcattn.models import PointTransformerCls, create_model, list_models, register_model
from pcattn.models.registry import model_config_class


def test_list_and_create():
    assert "point_transformer_cls" in list_models()
    model = create_model("point_transformer_cls", num_classes=7, channels=(8, 16), blocks=(1, 2))
    assert isinstance(model, PointTransformerCls)
    assert model.config.num_classes == 7 and len(model.encoder.stages[1]) == 2
    assert model_config_class("point_transformer_cls") is type(model.config)


def test_unknown_name_and_key_are_clear_errors():
    with pytest.raises(ValueError, match="available: .*point_transformer_cls"):
        create_model("point_transformer_xl")
    with pytest.raises(ValueError, match=r"unknown key\(s\) \['head'\].*valid keys: .*channels"):
        create_model("point_transformer_cls", head=3)
    with pytest.raises(ValueError, match="same length"):
        create_model("point_transformer_cls", channels=(8, 16), blocks=(1,))


def test_a_name_registers_once():
    with pytest.raises(ValueError, match="already registered"):
        register_model("point_transformer_cls", object)(PointTransformerCls)


def test_task_comes_from_the_registration_or_the_name():
    from pcattn.models.registry import model_task

    assert model_task("pct_cls_base") == "classification"
    assert model_task("pct_seg_base") == "part_segmentation"  # not only names ending in _seg
    assert model_task("point_transformer_seg") == "part_segmentation"
    with pytest.raises(ValueError, match="task must be one of"):
        register_model("x_cls", object, task="detection")


@pytest.mark.parametrize("name", ["point_transformer_cls", "point_transformer_seg", "nw_seg"])
def test_stage_lists_are_checked_and_made_tuples(name):
    from pcattn.model_configs import config_class

    cfg = config_class(name)(channels=[8, 16], blocks=[1, 2], head_hidden=[4])
    assert (cfg.channels, cfg.blocks, cfg.head_hidden) == ((8, 16), (1, 2), (4,))
    for channels, blocks in (([8, 16], [1]), ([], [])):
        with pytest.raises(ValueError) as err:
            config_class(name)(channels=channels, blocks=blocks)
        assert str(err.value) == (f"channels {tuple(channels)} and blocks {tuple(blocks)} must "
                                  "be non-empty and of the same length (one entry per stage)")
