"""Checkpoints written before a submodule was renamed still load: a ``load_state_dict``
pre-hook that reads the old key prefix as the new one."""

from __future__ import annotations

from torch import nn


def accept_old_prefix(module: nn.Module, old: str, new: str) -> None:
    """Let ``module.load_state_dict`` take keys ``<old>...`` as ``<new>...`` (e.g. the
    ``backbone.`` of earlier PCT and GAT checkpoints, now ``encoder.``)."""

    def hook(state_dict, prefix, *args) -> None:
        for key in [k for k in state_dict if k.startswith(prefix + old)]:
            state_dict[prefix + new + key[len(prefix + old):]] = state_dict.pop(key)

    module._register_load_state_dict_pre_hook(hook)
