"""Run configuration: YAML with sections ``model``, ``data``, ``train``.

The keys of ``data`` and ``train`` are exactly the fields of :class:`~pcattn.data.registry.DataConfig`
and :class:`TrainConfig`; the keys of ``model`` are ``name`` plus the fields of that model's
config dataclass. Unknown keys and wrongly typed values are errors that say what is valid.
"""

from __future__ import annotations

import dataclasses
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import yaml

from pcattn.config_check import build_config, parse_yaml
from pcattn.data.registry import DataConfig
from pcattn.devices import check_device_name


@dataclass
class TrainConfig:
    """Optimisation and bookkeeping."""

    epochs: int = 8
    batch_size: int = 16
    lr: float = 2e-3
    weight_decay: float = 1e-4
    warmup_epochs: float = 0.5
    label_smoothing: float = 0.0
    seed: int = 0
    device: str = "auto"  # "auto", "cpu", "cuda", "cuda:1", ...
    num_workers: int = 0
    out_dir: str = "runs"
    run_name: str = ""  # default: the config file's stem

    def __post_init__(self) -> None:
        if self.epochs < 1 or self.batch_size < 1 or self.lr <= 0:
            raise ValueError("train.epochs and train.batch_size must be >= 1 and train.lr > 0, "
                             f"got {self.epochs}, {self.batch_size}, {self.lr}")
        check_device_name(self.device, "train.device")


@dataclass
class RunConfig:
    model_name: str
    model: Any  # the model's config dataclass
    data: DataConfig = field(default_factory=DataConfig)
    train: TrainConfig = field(default_factory=TrainConfig)

    def to_dict(self) -> dict:
        model = {"name": self.model_name, **_plain(dataclasses.asdict(self.model))}
        return {"model": model, "data": dataclasses.asdict(self.data),
                "train": dataclasses.asdict(self.train)}


def load_config(path: str | Path | None, overrides: list[str] = (), **defaults) -> RunConfig:
    """Read a YAML run config and apply ``section.key=value`` overrides (YAML values)."""
    raw: dict = {}
    if path is not None:
        path = Path(path)
        if not path.is_file():
            raise FileNotFoundError(f"config file not found: {path} (see configs/ for examples)")
        raw = parse_yaml(path.read_text(), str(path)) or {}
        if not isinstance(raw, dict):
            raise ValueError(f"{path}: expected a mapping with sections model/data/train")
        defaults.setdefault("run_name", path.stem)
    for item in overrides:
        key, sep, value = item.partition("=")
        section, dot, name = key.partition(".")
        if not sep or not dot or not name:
            raise ValueError(f"--set expects section.key=value (e.g. train.epochs=2), got {item!r}")
        raw.setdefault(section, {})
        if not isinstance(raw[section], dict):
            raise ValueError(f"section {section!r} must be a mapping")
        raw[section][name] = parse_yaml(value, f"--set {item}")
    return config_from_dict(raw, **defaults)


def config_from_dict(raw: dict, run_name: str = "") -> RunConfig:
    sections = {"model", "data", "train"}
    unknown = sorted(set(raw) - sections)
    if unknown:
        raise ValueError(f"unknown section(s) {unknown}; valid sections: {sorted(sections)}")
    train = build_config(TrainConfig, raw.get("train") or {}, "train", "train.")
    data = build_config(DataConfig, raw.get("data") or {}, "data", "data.")
    from pcattn.models.registry import model_config_class  # imports torch and the models

    model = dict(raw.get("model") or {})
    name = model.pop("name", "point_transformer_cls")
    model_cls = model_config_class(name)
    run = RunConfig(model_name=name, data=data, train=train,
                    model=build_config(model_cls, model, f"model ({name})", "model."))
    if not run.train.run_name:
        run.train.run_name = run_name or "run"
    return run


def _plain(d: dict) -> dict:
    return {k: list(v) if isinstance(v, tuple) else v for k, v in d.items()}


def save_config(run: RunConfig, path: str | Path) -> None:
    Path(path).write_text(yaml.safe_dump(run.to_dict(), sort_keys=False))
