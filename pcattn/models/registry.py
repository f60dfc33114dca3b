"""The model registry: ``create_model``, ``list_models``, ``register_model``.

The built-in models are the rows of :data:`pcattn.model_configs.MODELS` (config dataclass,
``module:Class``, task, paper); a model's module is imported when it is first built.
``register_model`` adds a user's own model under a new name, with the same calling convention.
"""

from __future__ import annotations

import importlib
from typing import TYPE_CHECKING, Any, Callable

from pcattn.model_configs import MODELS
from pcattn.model_configs.values import build_config

if TYPE_CHECKING:
    from torch import nn

_REGISTRY: dict[str, tuple[type[nn.Module], type]] = {}  # user-registered models
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
        if name in _REGISTRY or name in MODELS:
            raise ValueError(f"model {name!r} is already registered")
        _REGISTRY[name] = (cls, config_cls)
        _INFO[name] = {"task": task, "paper": paper}
        return cls

    return wrap


def model_task(name: str) -> str:
    """What a registered model predicts: ``"classification"`` or ``"part_segmentation"``."""
    if name in MODELS:
        return MODELS[name].task
    _lookup(name)
    return _INFO[name]["task"]


def model_info(name: str) -> dict[str, Any]:
    """``name``, ``task``, ``paper`` and ``parameters`` (of the default config) of a model."""
    _lookup(name)
    info = ({"task": MODELS[name].task, "paper": MODELS[name].paper} if name in MODELS
            else _INFO[name])
    params = sum(p.numel() for p in create_model(name).parameters())
    return {"name": name, **info, "parameters": params}


def list_models() -> list[str]:
    """Names of all registered models (built-in and user-registered), sorted."""
    return sorted(set(MODELS) | set(_REGISTRY))


def model_config_class(name: str) -> type:
    """The config dataclass of a registered model."""
    return MODELS[name].config if name in MODELS else _lookup(name)[1]


def model_class(name: str) -> type[nn.Module]:
    """The class that builds model ``name`` (a built-in's module is imported here)."""
    return _lookup(name)[0]


def create_model(name: str, config: Any = None, **overrides: Any) -> nn.Module:
    """Build a registered model from its default config updated by ``overrides``, or from
    ``config``, an instance of its config dataclass (used as given: not copied or rebuilt)."""
    cls, config_cls = _lookup(name)
    if config is None:
        return cls(build_config(config_cls, overrides, f"the config of model {name!r}"))
    if overrides or type(config) is not config_cls:
        raise TypeError(f"create_model({name!r}, config): config must be a "
                        f"{config_cls.__name__} and comes without keyword overrides (give "
                        f"one or the other), got {type(config).__name__}"
                        + (f" and {sorted(overrides)}" if overrides else ""))
    return cls(config)


def _lookup(name: str) -> tuple[type[nn.Module], type]:
    if name in MODELS:
        entry = MODELS[name]
        module, _, cls = entry.target.partition(":")
        return getattr(importlib.import_module(module), cls), entry.config
    if name not in _REGISTRY:
        raise ValueError(f"unknown model {name!r}; available: {list_models()}")
    return _REGISTRY[name]
