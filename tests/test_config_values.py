"""One type check for config values, whether they come from YAML or from create_model."""

from __future__ import annotations

import pytest

from pcattn.engine.config import load_config
from pcattn.models import create_model

MODEL = "point_transformer_cls"


@pytest.mark.parametrize("key, value, yaml_value, needle", [
    ("k", 16.5, "16.5", "k must be an integer (like 16), got 16.5"),
    ("k", "16", "'16'", "k must be an integer (like 16), got '16'"),
    ("k", True, "true", "k must be an integer (like 16), got True"),
    ("ratio", "0.5", "'0.5'", "ratio must be a finite number (like 0.25), got '0.5'"),
    ("channels", (32, "64"), "[32, '64']", "channels must be a list of integers (like [32, 64, "
                                           "128]), got (32, '64')"),
    ("channels", 64, "64", "channels must be a list of integers"),
    ("pool", 1, "1", "pool must be a string (like 'max'), got 1"),
])
def test_python_and_yaml_give_the_same_type_error(tmp_path, key, value, yaml_value, needle):
    with pytest.raises(ValueError) as py_err:
        create_model(MODEL, **{key: value})
    assert needle in str(py_err.value) and f"model {MODEL!r}" in str(py_err.value)
    cfg = tmp_path / "c.yaml"
    cfg.write_text(f"model:\n  name: {MODEL}\n  {key}: {yaml_value}\n")
    with pytest.raises(ValueError) as yaml_err:
        load_config(cfg)
    assert f"model.{needle}" in str(yaml_err.value).replace("[32, '64']", "(32, '64')")


def test_accepted_values_are_converted():
    model = create_model(MODEL, ratio=1, channels=[8, 16], blocks=[1, 1])
    assert model.config.ratio == 1.0 and isinstance(model.config.ratio, float)
    assert model.config.channels == (8, 16)


def test_exponents_without_a_dot_are_numbers():
    from pcattn.model_configs.values import parse_yaml
    from pcattn.engine.config import config_from_dict

    assert parse_yaml("1e-3", "x") == 0.001 and parse_yaml("-2E4", "x") == -20000.0
    assert parse_yaml("{lr: 5e-4, name: 1e3x, ver: '1e-3'}", "x") == {
        "lr": 0.0005, "name": "1e3x", "ver": "1e-3"}
    assert parse_yaml("[1, 1.5, .5, .inf, true, 0x10]", "x") == [1, 1.5, 0.5, float("inf"),
                                                                  True, 16]
    assert config_from_dict({"train": {"lr": parse_yaml("1e-3", "--set")}}).train.lr == 0.001


@pytest.mark.parametrize("key, yaml_value", [
    ("train.lr", ".nan"), ("train.weight_decay", ".inf"), ("train.time_budget", ".nan"),
    ("train.grad_clip", "-.inf"), ("train.warmup_epochs", ".inf"), ("model.dropout", ".nan"),
    ("model.ratio", ".inf"), ("train.min_lr", "1e400"),
])
def test_nan_and_infinity_are_refused_in_every_float_key(tmp_path, key, yaml_value):
    section, name = key.split(".")
    cfg = tmp_path / "c.yaml"
    cfg.write_text(f"model:\n  name: {MODEL}\n{section}:\n  {name}: {yaml_value}\n"
                   if section != "model" else f"model:\n  name: {MODEL}\n  {name}: {yaml_value}\n")
    with pytest.raises(ValueError, match=f"{key} must be a finite number"):
        load_config(cfg)
    with pytest.raises(ValueError, match=f"{key} must be a finite number"):
        load_config(None, [f"{key}={yaml_value}"])
