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

from pcattn.data.registry import DataConfig, has_val_split
from pcattn.devices import check_device_name
from pcattn.fileio import atomic_write_text
from pcattn.model_configs import config_class
from pcattn.model_configs.values import build_config, parse_yaml


OPTIMIZERS = ("adamw", "sgd")
SCHEDULES = ("cosine", "step")
AMP_MODES = ("none", "bf16", "fp16")
EVAL_SPLITS = ("test", "val")


@dataclass
class TrainConfig:
    """Optimisation and bookkeeping (the ``train:`` section of a run)."""

    epochs: int = 8
    batch_size: int = 16  # per process: the global batch under torchrun is N x batch_size
    optimizer: str = "adamw"  # "adamw" or "sgd"
    lr: float = 2e-3
    weight_decay: float = 1e-4
    momentum: float = 0.9  # sgd only
    nesterov: bool = False  # sgd only
    schedule: str = "cosine"  # "cosine" (to min_lr) or "step" (x step_gamma every step_epochs)
    warmup_epochs: float = 0.5  # linear warm-up from lr / (warm-up steps), either schedule
    min_lr: float = 0.0  # cosine: the lr at the last step
    step_epochs: int = 30  # step: epochs between decays
    step_gamma: float = 0.1  # step: the decay factor
    label_smoothing: float = 0.0
    grad_clip: float = 0.0  # max global gradient norm; 0 = no clipping
    sad_weight: float = 0.0  # > 0: self-attention distillation between stages (SAD: 0.1)
    sad_start: float = 0.0  # the epoch SAD switches on at (its warm-up)
    commitment_weight: float = 0.0  # > 0: ClusterAttention's commitment loss (1e-4..1)
    amp: str = "none"  # "none", "bf16" (CPU and CUDA) or "fp16" (CUDA, with a GradScaler)
    compile: bool = False  # torch.compile the training forward (clouds of equal size)
    eval_every: int = 1  # evaluate every N epochs (and always after the last one)
    eval_split: str = "test"  # the split best.pt is chosen on: "test" or "val" (then test once)
    eval_chunk_points: int = 0  # > 0: segment larger clouds in crops of this many points
    time_budget: float = 0.0  # minutes; > 0: fit the schedule into it (see README)
    stop_after: int = 0  # > 0: stop cleanly after this epoch, resumable (cluster time limits)
    seed: int = 0
    device: str = "auto"  # "auto", "cpu", "cuda", "cuda:1", ...
    num_workers: int = 0
    threads: int | str = "auto"  # CPU threads per process; "auto": see pcattn.engine.threads
    out_dir: str = "runs"
    run_name: str = ""  # default: the config file's stem

    def __post_init__(self) -> None:
        if self.epochs < 1 or self.batch_size < 1 or self.lr <= 0 or self.eval_every < 1:
            raise ValueError("train.epochs, train.batch_size and train.eval_every must be >= 1 "
                             f"and train.lr > 0, got {self.epochs}, {self.batch_size}, "
                             f"{self.eval_every}, {self.lr}")
        for key, valid in (("optimizer", OPTIMIZERS), ("schedule", SCHEDULES),
                           ("amp", AMP_MODES), ("eval_split", EVAL_SPLITS)):
            if getattr(self, key) not in valid:
                raise ValueError(f"unknown train.{key} {getattr(self, key)!r}; valid: "
                                 f"{list(valid)}")
        if self.eval_chunk_points < 0:
            raise ValueError(f"train.eval_chunk_points must be >= 0 (0: whole clouds), got "
                             f"{self.eval_chunk_points}")
        if self.time_budget < 0 or self.stop_after < 0 or self.grad_clip < 0:
            raise ValueError("train.time_budget, train.stop_after and train.grad_clip must be "
                             f">= 0, got {self.time_budget}, {self.stop_after}, {self.grad_clip}")
        if self.sad_weight < 0 or self.sad_start < 0:
            raise ValueError("train.sad_weight and train.sad_start must be >= 0, got "
                             f"{self.sad_weight}, {self.sad_start}")
        if self.commitment_weight < 0:
            raise ValueError(f"train.commitment_weight must be >= 0, got "
                             f"{self.commitment_weight}")
        if self.step_epochs < 1 or not 0.0 <= self.label_smoothing < 1.0:
            raise ValueError("need train.step_epochs >= 1 and 0 <= train.label_smoothing < 1, "
                             f"got {self.step_epochs}, {self.label_smoothing}")
        check_device_name(self.device, "train.device")
        if self.threads != "auto" and (isinstance(self.threads, str) or self.threads < 1):
            raise ValueError(f"train.threads must be 'auto' or an integer >= 1, got "
                             f"{self.threads!r}")


@dataclass
class RunConfig:
    model_name: str
    model: Any  # the model's config dataclass
    data: DataConfig = field(default_factory=DataConfig)
    train: TrainConfig = field(default_factory=TrainConfig)

    def __post_init__(self) -> None:
        if self.train.eval_split == "val" and not has_val_split(self.data):
            raise ValueError(f"train.eval_split: val needs a val split, but data.val_fraction "
                             f"is 0 and {self.data.name!r} has no val split of its own; set "
                             "data.val_fraction (e.g. 0.1: a tenth of each class of the train "
                             "split is held out) or train.eval_split: test")

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
    return config_from_dict(apply_overrides(raw, overrides), **defaults)


def apply_overrides(raw: dict, overrides: list[str]) -> dict:
    """``raw`` (a config mapping, changed in place) with ``section.key=value`` overrides."""
    for item in overrides:
        key, sep, value = item.partition("=")
        section, dot, name = key.partition(".")
        if not sep or not dot or not name:
            raise ValueError(f"--set expects section.key=value (e.g. train.epochs=2), got {item!r}")
        raw.setdefault(section, {})
        if not isinstance(raw[section], dict):
            raise ValueError(f"section {section!r} must be a mapping")
        raw[section][name] = parse_yaml(value, f"--set {item}")
    return raw


def config_from_dict(raw: dict, run_name: str = "") -> RunConfig:
    sections = {"model", "data", "train"}
    unknown = sorted(set(raw) - sections)
    if unknown:
        raise ValueError(f"unknown section(s) {unknown}; valid sections: {sorted(sections)}")
    train = build_config(TrainConfig, raw.get("train") or {}, "train", "train.")
    data = build_config(DataConfig, raw.get("data") or {}, "data", "data.")
    model = dict(raw.get("model") or {})
    name = model.pop("name", "point_transformer_cls")
    model_cls = config_class(name)
    run = RunConfig(model_name=name, data=data, train=train,
                    model=build_config(model_cls, model, f"model ({name})", "model."))
    if not run.train.run_name:
        run.train.run_name = run_name or "run"
    return run


def _plain(d: dict) -> dict:
    return {k: list(v) if isinstance(v, tuple) else v for k, v in d.items()}


def save_config(run: RunConfig, path: str | Path) -> None:
    atomic_write_text(yaml.safe_dump(run.to_dict(), sort_keys=False), path)


def config_differences(a: dict, b: dict) -> list[str]:
    """``section.key`` of every value that differs between two ``RunConfig.to_dict()``."""
    keys = sorted({(s, k) for d in (a, b) for s in d for k in (d[s] or {})})
    return [f"{s}.{k}" for s, k in keys
            if _norm((a.get(s) or {}).get(k)) != _norm((b.get(s) or {}).get(k))]


def _norm(value):
    return list(value) if isinstance(value, tuple) else value
