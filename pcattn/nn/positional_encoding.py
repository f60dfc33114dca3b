"""Positional encodings of coordinates: Fourier (sinusoidal), learned absolute, relative.

Convention shared by the global blocks of pcattn (``GlobalSelfAttention``,
``OffsetAttention``, ``LinearAttention``, ``GlobalTokens``): an *absolute* encoding is
passed at construction as ``pos_encoding=`` (any module ``[M, 3] -> [M, C_in]``) and the
block replaces its input by ``x + pos_encoding(pos)`` on entry, so ``forward(..., pos=pos)``
must then be given. Without ``pos_encoding`` a block ignores ``pos``. Writing
``block(x + pe(pos), batch)`` by hand is the same computation. A *relative* encoding
(``RelativePositionalEncoding``, Point Transformer's ``delta``) works on neighbourhoods
``p_i - p_j [M, K, 3]`` and is injected into local blocks as ``pos_nn=``.
"""

from __future__ import annotations

import math
from typing import Callable

import torch
from torch import Tensor, nn

from pcattn.nn.checks import (
    check_int,
    check_neighbor_rows,
    check_parameter_dtype,
    check_positions,
    check_tensor,
)
from pcattn.nn.mlp import mlp
from pcattn.nn.reset import reset_children
from pcattn.ops.gather import gather


class FourierPositionalEncoding(nn.Module):
    r"""Sinusoidal encoding of coordinates at geometrically spaced frequencies.

    The encoding of "Attention Is All You Need" (Vaswani et al., 2017), applied to each
    coordinate (as in NeRF, Mildenhall et al., 2020):

    .. math::
        \gamma(p) = \big[p,\ \sin(\omega_0 p), \dots, \sin(\omega_{L-1} p),
                    \cos(\omega_0 p), \dots, \cos(\omega_{L-1} p)\big],
        \qquad \omega_k = s \cdot f_{max}^{\,k / (L - 1)}

    so the frequencies run geometrically from ``scale`` to ``scale * max_frequency``.
    The defaults (``scale=pi``, ``max_frequency=2**(L-1)``) give NeRF's ``2^k pi``, suited
    to coordinates in ``[-1, 1]``; ``scale=10000**(-(L-1)/L)`` with
    ``max_frequency=10000**((L-1)/L)`` gives Vaswani's ``1 / 10000^{2i/d}``, ``d = 2L``
    (in reverse order), suited to integer positions.

    Args:
        num_frequencies: ``L``, frequencies per coordinate.
        in_channels: coordinates per point ``P`` (3 for xyz).
        max_frequency: ratio of the highest to the lowest frequency (default ``2**(L-1)``).
        scale: lowest frequency ``s``.
        include_input: prepend the raw coordinates.
        out_channels: if given, a ``Linear`` maps the features to this size (so the
            encoding can be added to ``C``-channel features).

    Attributes:
        out_channels: output size: ``out_channels`` if given, else
            ``2 * L * P + P * include_input`` (51 for the defaults with xyz, L=8).

    Shape:
        pos: [*, P] -> [*, out_channels]
    """

    def __init__(self, num_frequencies: int = 8, *, in_channels: int = 3,
                 max_frequency: float | None = None, scale: float = math.pi,
                 include_input: bool = True, out_channels: int | None = None) -> None:
        super().__init__()
        name = type(self).__name__
        num_frequencies = check_int(name, "num_frequencies", num_frequencies)
        in_channels = check_int(name, "in_channels", in_channels)
        out_channels = check_int(name, "out_channels", out_channels, optional=True)
        if max_frequency is None:
            max_frequency = 2.0 ** (num_frequencies - 1)
        if max_frequency <= 0 or scale <= 0:
            raise ValueError(f"{name}: max_frequency and scale must be > 0, got "
                             f"{max_frequency} and {scale}")
        exponent = torch.arange(num_frequencies, dtype=torch.float64)
        exponent = exponent / max(1, num_frequencies - 1)
        freqs = scale * max_frequency ** exponent  # [L]
        self.register_buffer("freqs", freqs.float(), persistent=False)
        self.in_channels, self.include_input = in_channels, include_input
        feat = 2 * num_frequencies * in_channels + (in_channels if include_input else 0)
        self.proj = nn.Linear(feat, out_channels) if out_channels is not None else None
        self.out_channels = out_channels if out_channels is not None else feat

    def reset_parameters(self) -> None:
        """Default init of ``proj`` (the frequencies are fixed)."""
        reset_children(self)

    def forward(self, pos: Tensor) -> Tensor:
        _check_coordinates(self, pos)
        arg = pos[..., :, None] * self.freqs.to(pos.dtype)  # [*, P, L]
        arg = arg.flatten(-2)  # [*, P * L]
        parts = ([pos] if self.include_input else []) + [arg.sin(), arg.cos()]
        out = torch.cat(parts, dim=-1)  # [*, 2 P L (+ P)]
        return self.proj(out) if self.proj is not None else out


class LearnedPositionalEncoding(nn.Module):
    """Learned absolute encoding: an MLP on each point's coordinates.

    ``Linear(P, H) -> LayerNorm -> ReLU -> Linear(H, C)``, or any module given as ``nn``.

    Args:
        out_channels: ``C``.
        in_channels: coordinates per point ``P``.
        hidden_channels: ``H`` (default ``C``).
        nn: replaces the default MLP (``[*, P] -> [*, C]``).

    Shape:
        pos: [*, P] -> [*, C]
    """

    def __init__(self, out_channels: int, *, in_channels: int = 3,
                 hidden_channels: int | None = None, nn: Callable | None = None) -> None:
        super().__init__()
        self.in_channels, self.out_channels = _check_widths(self, in_channels, out_channels,
                                                            hidden_channels)
        self.nn = nn if nn is not None else mlp(
            [in_channels, hidden_channels or out_channels, out_channels])

    def reset_parameters(self) -> None:
        """Default inits of the MLP."""
        reset_children(self)

    def forward(self, pos: Tensor) -> Tensor:
        return self.nn(_check_coordinates(self, pos))


class RelativePositionalEncoding(nn.Module):
    r"""Relative encoding of neighbourhood offsets, Point Transformer's ``delta``.

    From Zhao et al. (ICCV 2021): :math:`\delta_{ij} = \theta(p_i - p_j)` with ``theta``
    an MLP (``Linear(3, H) -> LayerNorm -> ReLU -> Linear(H, C)`` by default). Usable as
    ``pos_nn=`` of :class:`~pcattn.nn.PointTransformerLayer`. :meth:`offsets` builds
    ``p_i - p_j`` from ``idx``; with ``valid`` the encoding is zero at ``-1`` neighbours.

    Args:
        out_channels: ``C``.
        hidden_channels: ``H`` (default ``C``).
        in_channels: coordinates per point.
        nn: replaces the default MLP.

    Shape:
        rel: [M, K, 3], valid: [M, K] (optional) -> [M, K, C]
    """

    def __init__(self, out_channels: int, *, hidden_channels: int | None = None,
                 in_channels: int = 3, nn: Callable | None = None) -> None:
        super().__init__()
        self.in_channels, self.out_channels = _check_widths(self, in_channels, out_channels,
                                                            hidden_channels)
        self.nn = nn if nn is not None else mlp(
            [in_channels, hidden_channels or out_channels, out_channels])

    @staticmethod
    def offsets(pos: Tensor, idx: Tensor) -> Tensor:
        """``p_i - p_j`` for each neighbour ``j = idx[i, k]`` (zero where ``-1``).

        Shape:
            pos: [M, 3], idx: [M, K] -> [M, K, 3]
        """
        check_tensor("RelativePositionalEncoding.offsets", "pos", pos, ("M", 3))
        check_neighbor_rows("RelativePositionalEncoding.offsets", idx, pos.shape[0], of="pos")
        rel = pos[:, None, :] - gather(pos, idx)  # [M, K, 3]
        return rel * (idx >= 0)[..., None]

    def reset_parameters(self) -> None:
        """Default inits of the MLP."""
        reset_children(self)

    def forward(self, rel: Tensor, valid: Tensor | None = None) -> Tensor:
        name = type(self).__name__
        check_tensor(name, "rel", rel, ("M", "K", self.in_channels),
                     note=f"in_channels={self.in_channels}")
        check_parameter_dtype(self, "rel", rel)
        if valid is not None:
            check_tensor(name, "valid", valid, rel.shape[:2], dtype="bool",
                         note="one flag per neighbour of rel")
        out = self.nn(rel)  # [M, K, C]
        return out if valid is None else out * valid[..., None]


def _check_widths(block: nn.Module, in_channels, out_channels, hidden_channels
                  ) -> tuple[int, int]:
    name = type(block).__name__
    check_int(name, "hidden_channels", hidden_channels, optional=True)
    return check_int(name, "in_channels", in_channels), check_int(name, "out_channels",
                                                                  out_channels)


def _check_coordinates(block: nn.Module, pos: Tensor) -> Tensor:
    """``pos [..., P]`` with ``P`` the block's ``in_channels``."""
    name, p = type(block).__name__, block.in_channels
    lead = ("M",) * (pos.dim() - 1) if isinstance(pos, Tensor) and pos.dim() > 1 else ("M",)
    check_tensor(name, "pos", pos, lead + (p,), note=f"in_channels={p} coordinates per point")
    check_parameter_dtype(block, "pos", pos)
    return pos


def apply_pos_encoding(x: Tensor, pos: Tensor | None, pos_encoding: Callable | None,
                       block: str = "a block") -> Tensor:
    """``x + pos_encoding(pos)``: the entry step of every global block (see module doc).

    Shape:
        x: [M, C], pos: [M, 3] -> [M, C]
    """
    if pos_encoding is None:
        return x
    if pos is None:
        raise ValueError(f"{block} was built with pos_encoding=...; pass pos=[M, 3] "
                         "to forward")
    check_positions(block, pos, x.shape[0], like=x)
    pe = pos_encoding(pos)  # [M, C]
    if pe.shape != x.shape:
        raise ValueError(f"{block}: pos_encoding gives {tuple(pe.shape)} but x is "
                         f"{tuple(x.shape)}; set its out_channels to x's channels")
    return x + pe
