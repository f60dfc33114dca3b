"""Argument checks of the blocks of ``pcattn.nn``.

Each raises one ``ValueError`` (``TypeError`` for a wrong type) that names the block, the
argument, the shape or value it expects and the one it got, e.g.
``PointTransformerLayer: pos must be [11, 3] (one row per row of x), got [10, 3]``, or
``PointTransformerLayer: pos must have x's dtype torch.float32, got torch.float64``.
They compare shapes and dtypes; values (the range of ``idx``) are read only where
:func:`~pcattn.ops.checks.may_read_values` allows it (CPU tensors in eager mode), so no
check synchronises with a GPU or breaks a ``torch.compile`` graph. Converting an
``edge_index`` (:func:`local_neighbors`) reads its largest in-degree.
"""

from __future__ import annotations

import numbers
from typing import Sequence

import torch
from torch import Tensor, nn

from pcattn.ops.batching import check_edge_index, check_neighbors, edge_index_to_neighbors

Dim = int | str  # a size, or a letter that matches any size (``"M"``, ``"K"``)


def check_int(block: str, name: str, value, *, minimum: int = 1, optional: bool = False
              ) -> int | None:
    """``value`` as a Python int ``>= minimum`` (``None`` passes when ``optional``)."""
    if value is None and optional:
        return None
    if isinstance(value, bool) or not isinstance(value, numbers.Integral):
        raise TypeError(f"{block}: {name} must be an integer >= {minimum}"
                        f"{' or None' if optional else ''}, got {value!r} "
                        f"({type(value).__name__})")
    if value < minimum:
        raise ValueError(f"{block}: {name} must be an integer >= {minimum}, got {value}")
    return int(value)


def check_ints(block: str, name: str, values: Sequence, *, minimum: int = 1) -> tuple[int, ...]:
    """Every entry of a sequence of widths (``hidden_channels=(256, 128)``) as an int."""
    if isinstance(values, (str, bytes)) or not isinstance(values, Sequence):
        raise TypeError(f"{block}: {name} must be a sequence of integers >= {minimum}, got "
                        f"{values!r} ({type(values).__name__})")
    return tuple(check_int(block, f"{name}[{i}]", v, minimum=minimum)
                 for i, v in enumerate(values))


def _shape(dims: Sequence) -> str:
    return "[" + ", ".join(str(d) for d in dims) + "]"


def check_tensor(block: str, name: str, t, shape: Sequence[Dim], *, dtype: str = "float",
                 note: str = "") -> Tensor:
    """Raise unless ``t`` is a tensor of ``shape`` (letters match any size) and of the
    ``dtype`` kind (``"float"``, ``"index"``: integer, ``"bool"``, ``"any"``); return it.

    ``note`` says where an expected size comes from (``"in_channels=64"``); the expected
    shape in the message shows the given sizes in place of the letters.
    """
    if not isinstance(t, Tensor):
        raise TypeError(f"{block}: {name} must be a torch.Tensor {_shape(shape)}, got "
                        f"{type(t).__name__}")
    letters = [isinstance(d, str) for d in shape]
    if t.dim() != len(shape) or any(not free and t.shape[i] != d
                                     for i, (d, free) in enumerate(zip(shape, letters))):
        # written only here: str() of a symbolic size would break a compiled graph
        want = _shape(shape)
        if t.dim() == len(shape):  # the sizes it should have had, letters filled in
            want = _shape(t.shape[i] if free else d for i, (d, free) in enumerate(zip(shape,
                                                                                     letters)))
        raise ValueError(f"{block}: {name} must be {want}{f' ({note})' if note else ''}, "
                         f"got {_shape(t.shape)}")
    if dtype == "float" and not t.dtype.is_floating_point:
        raise TypeError(f"{block}: {name} must be floating point, got {t.dtype}; cast it with "
                        f"{name}.float()")
    if dtype == "index" and (t.dtype.is_floating_point or t.dtype.is_complex
                             or t.dtype == torch.bool):
        raise TypeError(f"{block}: {name} must hold integer indices, got {t.dtype}; cast it "
                        f"with {name}.long()")
    if dtype == "bool" and t.dtype != torch.bool:
        raise TypeError(f"{block}: {name} must be a boolean mask, got {t.dtype}")
    return t


def check_features(block: str, x, channels: int | None, name: str = "x",
                   width_name: str = "in_channels") -> int:
    """Raise unless ``x`` is a floating ``[M, channels]`` tensor (any width when
    ``channels`` is ``None``); return ``M``."""
    check_tensor(block, name, x, ("M", "C" if channels is None else channels),
                 note="" if channels is None else f"{width_name}={channels}")
    return x.shape[0]


def check_rows(block: str, name: str, t, rows: int, width: Dim, *, of: str = "x",
               dtype: str = "float") -> Tensor:
    """Raise unless ``t`` is ``[rows, width]`` (``width=()``: ``[rows]``), one row per row
    of ``of``."""
    shape = (rows,) if width == () else (rows, width)
    return check_tensor(block, name, t, shape, dtype=dtype, note=f"one row per row of {of}")


def check_positions(block: str, pos, rows: int, *, name: str = "pos", of: str = "x",
                    like: Tensor | None = None) -> Tensor:
    """Raise unless ``pos`` is a floating ``[rows, 3]`` tensor, of ``like``'s dtype when
    ``like`` (the features ``of``) is given (see :func:`check_same_dtype`)."""
    check_rows(block, name, pos, rows, 3, of=of)
    if like is not None:
        check_same_dtype(block, name, pos, of, like)
    return pos


def check_same_dtype(block: str, name: str, t: Tensor, other_name: str, other: Tensor
                     ) -> None:
    """Raise a ``TypeError`` unless ``t`` has ``other``'s dtype; under autocast (where the
    block's matrix products cast their inputs) any floating dtypes mix."""
    if t.dtype == other.dtype or _autocast_on(t.device.type):
        return
    raise TypeError(f"{block}: {name} must have {other_name}'s dtype {other.dtype}, got "
                    f"{t.dtype}; cast it with {name}.to({other_name}.dtype)")


def check_parameter_dtype(block: nn.Module, name: str, t: Tensor) -> None:
    """Raise a ``TypeError`` unless ``t`` has the dtype of ``block``'s floating parameters
    (outside autocast)."""
    weight = next((p for p in block.parameters() if p.dtype.is_floating_point), None)
    if weight is None or t.dtype == weight.dtype or _autocast_on(t.device.type):
        return
    raise TypeError(f"{type(block).__name__}: {name} must have the block's dtype "
                    f"{weight.dtype} (its parameters), got {t.dtype}; cast it with "
                    f"{name}.to({weight.dtype}) or the block with .to({t.dtype})")


def _autocast_on(device_type: str) -> bool:
    try:
        return torch.is_autocast_enabled(device_type)
    except TypeError:  # torch < 2.4: no device argument
        return (torch.is_autocast_cpu_enabled() if device_type == "cpu"
                else torch.is_autocast_enabled())


def check_batch_rows(block: str, batch, rows: int, *, name: str = "batch", of: str = "x"
                     ) -> None:
    """Raise unless ``batch`` is ``None`` or an integer ``[rows]`` tensor."""
    if batch is not None:
        check_rows(block, name, batch, rows, (), of=of, dtype="index")


def check_points(block: str, x, pos, batch, channels: int | None) -> int:
    """The inputs of a block with positions: ``x [M, channels]`` (any width for ``None``),
    ``pos [M, 3]`` of ``x``'s dtype and ``batch [M]`` or ``None``; returns ``M``."""
    m = check_features(block, x, channels)
    check_positions(block, pos, m, like=x)
    check_batch_rows(block, batch, m)
    return m


def check_neighbor_rows(block: str, idx, rows: int, *, of: str = "x",
                        edge_index_keyword: bool = False) -> None:
    """Raise unless ``idx`` is an integer ``[rows, K]`` tensor. A ``[2, E]`` tensor where
    ``rows != 2`` is taken for a PyG ``edge_index`` and the error names the conversion (and
    the ``edge_index=`` keyword when the block has one)."""
    if isinstance(idx, Tensor) and idx.dim() == 2 and idx.shape[0] == 2 != rows:
        via = "pass it as edge_index=edge_index, or convert it with " if edge_index_keyword \
            else "convert it with "
        raise ValueError(
            f"{block}: idx must be [{rows}, K] (one row per row of {of}), got "
            f"{_shape(idx.shape)}, which looks like a PyG edge_index [2, E]; {via}"
            f"pcattn.ops.edge_index_to_neighbors(edge_index, {rows}, add_self_loops=True) "
            f"(add_self_loops: each node its own neighbour, as in PyG's convs)")
    check_rows(block, "idx", idx, rows, "K", of=of, dtype="index")


def local_neighbors(block: str, x, pos, idx, edge_index, channels: int | None, *,
                    add_self_loops: bool) -> Tensor:
    """The inputs of a local block's call, checked: ``x [M, channels]``, ``pos [M, 3]`` and
    the neighbourhoods ``idx [M, K]``, returned as given (the range of ``idx`` read where
    :func:`~pcattn.ops.checks.may_read_values`), or a PyG ``edge_index [2, E]`` converted
    by :func:`pcattn.ops.edge_index_to_neighbors` (with ``add_self_loops``). One of the two
    must be given."""
    if idx is None and edge_index is None:
        raise TypeError(f"{block}: no neighbourhoods given: pass idx [M, K] (e.g. "
                        f"pcattn.ops.knn(pos, k, batch)) or edge_index=[2, E]")
    if idx is not None and edge_index is not None:
        raise TypeError(f"{block}: got both idx and edge_index; pass one of them")
    m = check_features(block, x, channels)
    check_positions(block, pos, m, like=x)
    if edge_index is None:
        check_neighbor_rows(block, idx, m, edge_index_keyword=True)
        check_neighbors(idx, m)
        return idx
    try:
        check_edge_index(edge_index, m)
    except (TypeError, ValueError) as err:
        raise type(err)(f"{block}: {err}") from None
    return edge_index_to_neighbors(edge_index, m, add_self_loops=add_self_loops)
