"""``reset_parameters`` for composite blocks: every sub-module back to its own init."""

from __future__ import annotations

from torch import nn


def reset_children(module: nn.Module) -> None:
    """Call ``reset_parameters()`` on each sub-module that has one, recursing into those
    that do not (``nn.Sequential``...).

    A sub-block's own ``reset_parameters`` restores its custom init; its children are not
    visited again, so an outer reset never overwrites an inner block's custom init.
    """
    for child in module.children():
        reset = getattr(child, "reset_parameters", None)
        if callable(reset):
            reset()
        else:
            reset_children(child)
