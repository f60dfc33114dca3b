"""The one table of built-in models (``pcattn.model_configs.MODELS``): every row builds the
model it names, ``pcattn models`` prints it without importing torch, docs/models.md's table
says the same, and user-registered models sit beside it."""

from __future__ import annotations

import re
import subprocess
import sys
from dataclasses import dataclass
from pathlib import Path

import pytest
from torch import nn

from pcattn.cli import main
from pcattn.model_configs import MODELS, config_class
from pcattn.models import create_model, list_models, register_model
from pcattn.models.registry import model_class, model_config_class, model_info, model_task

TABLE = Path(__file__).resolve().parents[2] / "docs" / "models.md"


def test_every_row_builds_its_class_from_its_config():
    for name, entry in MODELS.items():
        module, _, cls = entry.target.partition(":")
        model = create_model(name)
        assert type(model).__module__ == module and type(model).__name__ == cls, name
        assert type(model.config) is entry.config is config_class(name), name
        assert model_task(name) == entry.task and model_class(name) is type(model)
    assert sorted(MODELS) == list_models()


def test_the_docs_model_table_is_the_table_with_counted_parameters():
    rows = re.findall(r"^\| `(\w+)` \| ([a-z ]+) \| ([\d.]+)M \| (.+?) \|$", TABLE.read_text(),
                      flags=re.M)
    want = [(name, e.task.replace("_", " "), f"{model_info(name)['parameters'] / 1e6:.2f}",
             e.paper) for name, e in MODELS.items()]
    assert rows == want, "docs/models.md's model table is out of date; its rows should be " \
                         f"(name, task, parameters, paper): {want}"


def test_pcattn_models_lists_every_row_without_importing_torch():
    code = ("import sys\nfrom pcattn.cli import main\nassert main(['models']) == 0\n"
            "assert 'torch' not in sys.modules, 'pcattn models imported torch'\n")
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True,
                         check=True).stdout.splitlines()
    assert out[0].split() == ["name", "task", "paper"]
    assert [line.split()[0] for line in out[1:]] == list(MODELS)
    assert "Zhao et al. 2021, Point Transformer" in out[1 + list(MODELS).index(
        "point_transformer_cls")]


def test_pcattn_models_params_counts_each_default_model(capsys):
    assert main(["models", "--params"]) == 0
    lines = capsys.readouterr().out.splitlines()
    row = next(line for line in lines if line.startswith("point_transformer_cls "))
    params = sum(p.numel() for p in create_model("point_transformer_cls").parameters())
    assert f"{params / 1e6:.2f}M" in row.split()


def test_create_model_takes_the_config_object_as_given():
    cfg = config_class("pct_cls")(num_classes=7)
    model = create_model("pct_cls", cfg)
    assert model.config is cfg
    with pytest.raises(TypeError, match="config must be a PCTConfig"):
        create_model("pct_cls", config_class("ptv2_cls")())
    with pytest.raises(TypeError, match="without keyword overrides"):
        create_model("pct_cls", cfg, num_classes=3)


def test_user_models_register_beside_the_table(monkeypatch):
    from pcattn.models import registry

    monkeypatch.setattr(registry, "_REGISTRY", dict(registry._REGISTRY))  # undone after
    monkeypatch.setattr(registry, "_INFO", dict(registry._INFO))

    @dataclass
    class TinyConfig:
        num_classes: int = 3

    @register_model("test_table_tiny_cls", TinyConfig, paper="mine")
    class Tiny(nn.Module):
        def __init__(self, config):
            super().__init__()
            self.config = config

    assert config_class("test_table_tiny_cls") is TinyConfig
    assert model_config_class("test_table_tiny_cls") is TinyConfig
    assert "test_table_tiny_cls" in list_models()
    assert create_model("test_table_tiny_cls", num_classes=5).config.num_classes == 5
    assert model_info("test_table_tiny_cls")["paper"] == "mine"
    with pytest.raises(ValueError, match="'pct_cls' is already registered"):
        register_model("pct_cls", TinyConfig)(Tiny)
