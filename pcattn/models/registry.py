"""A small explicit model registry: ``register_model``, ``create_model``, ``list_models``.

Each entry pairs a model class with its config dataclass; ``create_model(name, **overrides)``
builds the config from the overrides (unknown keys are an error naming the valid ones).
"""

from __future__ import annotations

from typing import TYPE_CHECKING, Any, Callable

from pcattn.config_check import build_config

if TYPE_CHECKING:
    from torch import nn

_REGISTRY: dict[str, tuple[type[nn.Module], type]] = {}
_INFO: dict[str, dict[str, str]] = {}
TASKS = ("classification", "part_segmentation")


def register_model(name: str, config_cls: type, *, task: str | None = None,
                   paper: str = "") -> Callable[[type[nn.Module]], type[nn.Module]]:
    """Class decorator: register ``cls(config)`` under ``name`` with its config class.

    ``task``: what the model predicts (one of ``TASKS``; default from the name:
    ``part_segmentation`` for ``*_seg*``, else ``classification``); ``paper``: the work
    it follows (``pcattn models`` prints both).
    """
    if task is None:
        task = "part_segmentation" if "_seg" in name else "classification"
    if task not in TASKS:
        raise ValueError(f"task must be one of {TASKS}, got {task!r}")

    def wrap(cls: type[nn.Module]) -> type[nn.Module]:
        if name in _REGISTRY:
            raise ValueError(f"model {name!r} is already registered")
        _REGISTRY[name] = (cls, config_cls)
        _INFO[name] = {"task": task, "paper": paper}
        return cls

    return wrap


def model_task(name: str) -> str:
    """What a registered model predicts: ``"classification"`` or ``"part_segmentation"``."""
    _lookup(name)
    return _INFO[name]["task"]


def model_info(name: str) -> dict[str, Any]:
    """``name``, ``task``, ``paper`` and ``parameters`` (of the default config) of a model."""
    _lookup(name)
    params = sum(p.numel() for p in create_model(name).parameters())
    return {"name": name, **_INFO[name], "parameters": params}


def list_models() -> list[str]:
    """Names of all registered models, sorted."""
    return sorted(_REGISTRY)


def model_config_class(name: str) -> type:
    """The config dataclass of a registered model."""
    return _lookup(name)[1]


def create_model(name: str, **overrides: Any) -> nn.Module:
    """Build a registered model from its default config updated by ``overrides``."""
    cls, config_cls = _lookup(name)
    return cls(build_config(config_cls, overrides, f"the config of model {name!r}"))


def _lookup(name: str) -> tuple[type[nn.Module], type]:
    if name not in _REGISTRY:
        raise ValueError(f"unknown model {name!r}; available: {list_models()}")
    return _REGISTRY[name]
