"""The table ``pcattn models`` prints (pcattn/catalog.py, plain data so that listing
imports no model) is the registry's: same names, tasks, parameter counts and papers."""

from __future__ import annotations

from pcattn.catalog import MODELS, format_table
from pcattn.model_configs import BUILTIN_CONFIGS, config_class
from pcattn.models import list_models
from pcattn.models.registry import model_config_class, model_info, register_model


def test_the_catalog_is_the_registry():
    want = [tuple(model_info(name)[k] for k in ("name", "task", "parameters", "paper"))
            for name in list_models()]
    assert list(MODELS) == want, ("pcattn/catalog.py is out of date; its rows should be "
                                  f"(name, task, parameters, paper): {want}")


def test_the_table_has_a_line_per_model():
    lines = format_table().splitlines()
    assert lines[0].split() == ["name", "task", "params", "paper"]
    assert [line.split()[0] for line in lines[1:]] == list_models()
    assert "0.23M" in lines[1 + list_models().index("point_transformer_cls")]


def test_the_torch_free_config_table_is_the_registry():
    assert sorted(BUILTIN_CONFIGS) == list_models()
    for name in list_models():
        assert BUILTIN_CONFIGS[name] is model_config_class(name), name


def test_config_class_finds_a_user_registered_model(monkeypatch):
    from dataclasses import dataclass

    from torch import nn

    from pcattn.models import registry

    monkeypatch.setattr(registry, "_REGISTRY", dict(registry._REGISTRY))  # undone after
    monkeypatch.setattr(registry, "_INFO", dict(registry._INFO))

    @dataclass
    class TinyConfig:
        num_classes: int = 3

    @register_model("test_catalog_tiny_cls", TinyConfig)
    class Tiny(nn.Module):
        def __init__(self, config):
            super().__init__()

    assert config_class("test_catalog_tiny_cls") is TinyConfig
    assert config_class("pct_seg") is model_config_class("pct_seg")
