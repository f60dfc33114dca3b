"""Packages whose public names load on first use (PEP 562), so that ``pcattn models`` or a
config error does not import open3d, h5py or torch_geometric."""

from __future__ import annotations

import importlib
import importlib.util
import sys
from typing import Callable


def lazy_exports(package: str, exports: dict[str, tuple[str, ...]]
                 ) -> tuple[Callable[[str], object], Callable[[], list[str]], list[str]]:
    """``(__getattr__, __dir__, __all__)`` for ``package``: each name of
    ``{module: (name, ...)}`` imports its module when first read, then stays in the package.

    A public name may not be the name of one of the package's submodules (importing that
    submodule would bind it over the name): that is an error here, not a surprise later.
    """
    where = {name: module for module, names in exports.items() for name in names}
    clash = sorted(n for n in where if importlib.util.find_spec(f"{package}.{n}") is not None)
    if clash:
        raise ValueError(f"{package}: the public names {clash} are also submodules; rename "
                         "the submodules")

    def __getattr__(name: str) -> object:
        if name not in where:
            raise AttributeError(f"module {package!r} has no attribute {name!r}")
        value = getattr(importlib.import_module(where[name]), name)
        setattr(sys.modules[package], name, value)  # later look-ups skip this
        return value

    def __dir__() -> list[str]:
        return sorted(set(vars(sys.modules[package])) | set(where))

    return __getattr__, __dir__, sorted(where)
