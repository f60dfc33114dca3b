"""The one check of config values, for YAML files and Python calls alike.

``create_model(name, k=16.5)`` and ``model: {k: 16.5}`` in a YAML file go through
:func:`check_config_values`, so both give the same error: unknown keys name the valid ones,
and each value must match its field's annotation (``int``, ``float``, ``bool``, ``str``,
``tuple[int, ...]``, ``X | None``); ints are accepted for floats, lists for tuples, and a
float must be finite (NaN and infinity pass every range check).
"""

from __future__ import annotations

import dataclasses
import difflib
import math
import numbers
import re
import types
import typing
from typing import Any

_NAMES = {bool: "true or false", int: "an integer", float: "a finite number",
          str: "a string"}


def build_config(config_cls: type, values: dict[str, Any], where: str, label: str = "") -> Any:
    """``config_cls(**values)`` after :func:`check_config_values` (the one path for YAML
    sections and ``create_model`` keywords alike)."""
    return config_cls(**check_config_values(config_cls, values, where, label))


def check_config_values(config_cls: type, values: dict[str, Any], where: str,
                        label: str = "") -> dict[str, Any]:
    """``values`` converted to the field types of the dataclass ``config_cls``.

    Args:
        config_cls: a dataclass whose fields all have defaults.
        values: field name -> value (from YAML or keyword arguments).
        where: what the values configure, for messages (``"model (point_transformer_cls)"``).
        label: prefix of each key in messages (``"model."`` for a YAML section).

    Raises:
        ValueError: an unknown key (naming the valid ones) or a value of the wrong type
            (naming the key, the expected type, an example and the value given).
    """
    fields = {f.name: f for f in dataclasses.fields(config_cls)}
    unknown = sorted(set(values) - set(fields))
    if unknown:
        close = {k: difflib.get_close_matches(k, fields, n=1) for k in unknown}
        hint = "".join(f" (did you mean {m[0]!r} for {k!r}?)" for k, m in close.items() if m)
        raise ValueError(f"unknown key(s) {unknown} in {where}{hint}; valid keys: "
                         f"{sorted(fields)}")
    hints = typing.get_type_hints(config_cls)
    defaults = config_cls()
    out = {}
    for key, value in values.items():
        ok, converted = _convert(hints.get(key, Any), value)
        if not ok:
            raise ValueError(f"{label}{key} must be {_describe(hints.get(key, Any))} (like "
                             f"{_plain(getattr(defaults, key))!r}), got {value!r}"
                             + ("" if label else f" ({where})"))
        out[key] = converted
    return out


# YAML 1.2 floats: PyYAML follows YAML 1.1, which reads ``1e-3`` (no dot) as a string
_FLOAT = re.compile(r"""^(?:[-+]?[0-9][0-9_]*\.[0-9_]*(?:[eE][-+]?[0-9]+)?
    |[-+]?[0-9][0-9_]*[eE][-+]?[0-9]+
    |[-+]?\.[0-9_]+(?:[eE][-+]?[0-9]+)?
    |[-+]?\.(?:inf|Inf|INF)
    |\.(?:nan|NaN|NAN))$""", re.X)


def _loader():
    import yaml

    class Loader(yaml.SafeLoader):
        """``yaml.SafeLoader`` that also reads ``1e-3`` as a float, as YAML 1.2 does."""

    Loader.add_implicit_resolver("tag:yaml.org,2002:float", _FLOAT, list("-+0123456789."))
    return Loader


def parse_yaml(text: str, source: str) -> Any:
    """``yaml.safe_load(text)``, with ``1e-3`` a float (YAML 1.2) rather than a string; a
    syntax error names ``source`` (a file or a ``--set`` item), the line and the column, on
    one line."""
    import yaml

    try:
        return yaml.load(text, Loader=_loader())  # noqa: S506  (a SafeLoader)
    except yaml.YAMLError as err:
        mark = getattr(err, "problem_mark", None)
        where = f"{source}, line {mark.line + 1}, column {mark.column + 1}" if mark else source
        problem = getattr(err, "problem", None) or str(err).splitlines()[0]
        raise ValueError(f"{where}: YAML syntax error: {problem}") from None


def _convert(hint, value) -> tuple[bool, Any]:
    """(whether ``value`` fits ``hint``, the value converted: int -> float, list -> tuple)."""
    origin, args = typing.get_origin(hint), typing.get_args(hint)
    if hint is Any:
        return True, value
    if origin in (typing.Union, types.UnionType):
        if value is None and type(None) in args:
            return True, None
        for arg in args:
            if arg is not type(None):
                ok, out = _convert(arg, value)
                if ok:
                    return True, out
        return False, value
    if hint is bool:
        return isinstance(value, bool), value
    if hint is int:
        ok = isinstance(value, numbers.Integral) and not isinstance(value, bool)
        return ok, int(value) if ok else value
    if hint is float:  # NaN and infinity pass every range check: no option means them
        ok = (isinstance(value, numbers.Real) and not isinstance(value, bool)
              and math.isfinite(value))
        return ok, float(value) if ok else value
    if hint is str:
        return isinstance(value, str), value
    if hint in (tuple, list) or origin in (tuple, list):
        if not isinstance(value, (list, tuple)):
            return False, value
        item = args[0] if args and (len(args) == 1 or args[1] is Ellipsis) else Any
        items = [_convert(item, v) for v in value]
        if not all(ok for ok, _ in items):
            return False, value
        return True, tuple(v for _, v in items)
    return isinstance(value, hint) if isinstance(hint, type) else True, value


def _describe(hint) -> str:
    origin, args = typing.get_origin(hint), typing.get_args(hint)
    if origin in (typing.Union, types.UnionType):
        parts = [_describe(a) for a in args if a is not type(None)]
        return " or ".join(parts) + (" or null" if type(None) in args else "")
    if hint in (tuple, list) or origin in (tuple, list):
        item = args[0] if args and (len(args) == 1 or args[1] is Ellipsis) else Any
        return "a list" if item is Any else f"a list of {_describe(item).split(' ', 1)[-1]}s"
    if hint in _NAMES:
        return _NAMES[hint]
    return f"a {getattr(hint, '__name__', hint)}"


def _plain(value):
    return list(value) if isinstance(value, tuple) else value
