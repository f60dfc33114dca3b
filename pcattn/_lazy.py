"""Packages whose public names load on first use (PEP 562), so that ``pcattn models`` or a
config error does not import open3d, h5py or torch_geometric."""

from __future__ import annotations

import importlib
import sys
import types


def lazy_package(package: str, exports: dict[str, tuple[str, ...]]) -> list[str]:
    """Make the names of ``{module: (name, ...)}`` attributes of ``package`` that import their
    module on first use; returns ``__all__``.

    A submodule named like one of its public names (``pcattn.engine.train`` and
    ``train()``) does not replace that name when it is imported, as with eager imports.
    """
    where = {name: module for module, names in exports.items() for name in names}

    class LazyPackage(types.ModuleType):
        def __getattr__(self, name: str) -> object:
            if name not in where:
                raise AttributeError(f"module {package!r} has no attribute {name!r}")
            value = getattr(importlib.import_module(where[name]), name)
            types.ModuleType.__setattr__(self, name, value)  # later look-ups skip this
            return value

        def __setattr__(self, name: str, value: object) -> None:
            if name in where and getattr(value, "__name__", None) == f"{package}.{name}":
                return  # the import system binding the submodule over the public name
            super().__setattr__(name, value)

        def __dir__(self) -> list[str]:
            return sorted(set(vars(self)) | set(where))

    sys.modules[package].__class__ = LazyPackage
    return sorted(where)
