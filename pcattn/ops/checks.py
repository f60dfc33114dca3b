"""Argument checks shared by the ops: each raises one ``ValueError`` (``TypeError`` for a
wrong type) that names the argument, what it got and what to pass.

They cost one pass over the tensor at most. The checks that read values (finiteness, index
range) run in eager mode on CPU tensors only (:func:`may_read_values`): elsewhere a read
would synchronise with the device or break a ``torch.compile`` graph, and on ``meta``
tensors there are no values.
"""

from __future__ import annotations

import operator

import torch
from torch import Tensor


def check_count(value, name: str) -> int:
    """``value`` as a Python int >= 1 (a count such as ``k``, ``num`` or ``dilation``)."""
    if isinstance(value, bool) or isinstance(value, float):
        raise TypeError(f"{name} must be an integer >= 1, got {value!r}")
    try:
        out = operator.index(value)
    except TypeError:
        raise TypeError(f"{name} must be an integer >= 1, got {value!r} "
                        f"({type(value).__name__})") from None
    if out < 1:
        raise ValueError(f"{name} must be an integer >= 1, got {out}")
    return out


def may_read_values(t: Tensor) -> bool:
    """Whether a check may read ``t``'s values: a CPU tensor outside ``torch.compile``.

    On CUDA a read would wait for the device (a host synchronisation per check), while
    ``torch.compile`` traces it would break the graph, and ``meta`` tensors hold no values.
    There an index out of range fails inside torch's own indexing instead.
    """
    return t.device.type == "cpu" and not torch.compiler.is_compiling()


def check_points(pos: Tensor, name: str = "pos") -> Tensor:
    """Raise unless ``pos`` is a finite floating-point ``[M, 3]`` tensor; return it.

    Shape:
        pos: [M, 3]
    """
    if not isinstance(pos, Tensor):
        raise TypeError(f"{name} must be a torch.Tensor [M, 3], got {type(pos).__name__}")
    if pos.dim() != 2 or pos.shape[1] != 3:
        raise ValueError(f"{name} must be [M, 3] (x, y, z per point), got {tuple(pos.shape)}")
    if not pos.dtype.is_floating_point:
        raise TypeError(f"{name} must be floating point (float32 or float64), got {pos.dtype}; "
                        f"cast it with {name}.float()")
    if pos.numel() and may_read_values(pos) and not bool(torch.isfinite(pos).all()):
        row = int(torch.nonzero(~torch.isfinite(pos).all(1))[0, 0])
        raise ValueError(f"{name} holds NaN or infinite coordinates (first at row {row}: "
                         f"{pos[row].tolist()}); remove or repair those points")
    return pos


def check_index_range(idx: Tensor, num_nodes: int, name: str = "idx") -> None:
    """Raise unless every entry of ``idx`` is ``-1`` (padding) or in ``[0, num_nodes)``
    (checked where :func:`may_read_values`)."""
    if idx.numel() == 0 or not may_read_values(idx):
        return
    lo, hi = torch.stack(torch.aminmax(idx)).tolist()  # one read-back
    if lo < -1 or hi >= num_nodes:
        bad = lo if lo < -1 else hi
        raise ValueError(f"{name} holds {bad}, outside [0, {num_nodes}) for {num_nodes} nodes; "
                         "only -1 marks padding")
