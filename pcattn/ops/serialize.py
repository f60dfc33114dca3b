"""Serialization of point clouds: grid quantization, space-filling-curve codes, orders.

Point Transformer V3 (Wu et al., CVPR 2024) orders the points of a cloud along a
space-filling curve so that a contiguous run of the order is a compact patch of space. Here:

- :func:`grid_coords` quantizes each cloud on a grid whose origin is the cloud's minimum
  corner: ``c = floor((p - min_b) / g)``, ``0 <= c < 2**bits`` per axis.
- :func:`encode` maps grid coordinates to a code along one curve: ``"z"`` (Morton order,
  bits interleaved ``x y z`` from the most significant), ``"hilbert"`` (Skilling's
  transposed Hilbert index, 2004), and ``"z-trans"`` / ``"hilbert-trans"``, the same curves
  with the x and y axes swapped. The cloud id sits above the ``3 * bits`` bits of the curve,
  so sorting the codes of a batch sorts by cloud first.
- :func:`serialize` does both for several orders and returns each order as a permutation
  and its inverse.

Codes are ``int64``: ``3 * bits + cloud_bits <= 63`` where ``cloud_bits`` holds the largest
cloud id; one cloud can use 21 bits per axis (PTv3's reference stops at 16).
"""

from __future__ import annotations

import math
from typing import NamedTuple

import torch
from torch import Tensor

from pcattn.ops.batching import batch_size, check_batch, counts_and_ptr
from pcattn.ops.checks import check_points

ORDERS = ("z", "z-trans", "hilbert", "hilbert-trans")
CODE_BITS = 63  # usable bits of an int64 code
MAX_BITS = 21  # bits per axis of one cloud: 3 * 21 = 63


class Serialization(NamedTuple):
    """The orders of a batch of clouds along space-filling curves.

    ``code[o]`` is the code of each point along ``orders[o]`` (cloud id in the high bits);
    ``order[o]`` sorts the points by it (clouds stay contiguous and in id order) and
    ``inverse[o]`` undoes that: ``order[o][inverse[o]] == arange(M)``. ``coords`` are the
    grid coordinates, ``batch`` the cloud ids, ``bits`` the bits per axis of the codes and
    ``grid_size`` the cell size of each cloud; ``cells``, when asked for, the occupied
    cells and their 27 neighbours (:func:`~pcattn.ops.grid_neighbors`).

    Shape:
        code, order, inverse: [O, M]; coords: [M, 3]; batch: [M]; grid_size: [B]
    """

    orders: tuple[str, ...]
    code: Tensor
    order: Tensor
    inverse: Tensor
    coords: Tensor
    batch: Tensor
    bits: int
    grid_size: Tensor
    cells: tuple[Tensor, Tensor] | None = None  # (cell [M], neighbors [V, 27]) if asked

    def index(self, name: str) -> int:
        """Row of the order called ``name``, with an error naming the available ones."""
        if name not in self.orders:
            raise ValueError(f"this serialization holds the orders {list(self.orders)}, not "
                             f"{name!r}; pass orders= including it to serialize()")
        return self.orders.index(name)


def cloud_bits(num_clouds: int) -> int:
    """Bits that the largest cloud id ``num_clouds - 1`` needs above the curve's bits."""
    return max(num_clouds - 1, 0).bit_length()


def available_bits(num_clouds: int) -> int:
    """Most bits per axis that the codes of ``num_clouds`` clouds can use."""
    return min(MAX_BITS, (CODE_BITS - cloud_bits(num_clouds)) // 3)


def _check_bits(bits, num_clouds: int, name: str = "bits") -> int:
    most = available_bits(num_clouds)
    if bits is None:
        return most
    if isinstance(bits, bool) or not isinstance(bits, int) or bits < 1:
        raise ValueError(f"{name} must be an integer >= 1, got {bits!r}")
    if bits > most:
        raise ValueError(f"{name}={bits} per axis leaves no room for the cloud id of "
                         f"{num_clouds} clouds in a 63-bit code (3 * {name} + "
                         f"{cloud_bits(num_clouds)} > 63); pass {name}={most} or fewer, or "
                         "serialize fewer clouds at once")
    return bits


def grid_coords(
    pos: Tensor, batch: Tensor | None = None, *, grid_size: float | Tensor | None = None,
    bits: int | None = None,
) -> tuple[Tensor, Tensor, int]:
    """Integer grid coordinates of each point, per cloud from its minimum corner.

    Args:
        pos: point positions.
        batch: cloud id of each point (sorted); ``None``: one cloud.
        grid_size: cell size, the same for every cloud, or one per cloud (a ``[B]``
            tensor, e.g. :func:`point_spacing`); ``None``: for each cloud the finest cell
            that keeps its extent within ``bits`` per axis.
        bits: bits per axis (default: the most the cloud count leaves, at most 21).

    Returns:
        ``(coords [M, 3] int64, grid_size [B] float64, bits)``. A given ``grid_size`` that
        needs more than ``bits`` along some axis is an error naming the smallest that fits.

    Shape:
        pos: [M, 3], batch: [M] -> ([M, 3], [B], int)
    """
    check_points(pos)
    batch = check_batch(batch, pos.shape[0], pos.device)
    num = batch_size(batch)
    bits = _check_bits(bits, num)
    cells = 1 << bits
    p = pos.detach().double()  # float32 loses cells of large or far-from-origin clouds
    if num == 0:
        return torch.zeros(0, 3, dtype=torch.long, device=pos.device), p.new_zeros(0), bits
    index = batch[:, None].expand(-1, 3)
    lo = p.new_full((num, 3), math.inf).scatter_reduce(0, index, p, "amin")  # [B, 3]
    hi = p.new_full((num, 3), -math.inf).scatter_reduce(0, index, p, "amax")  # [B, 3]
    extent = (hi - lo).amax(1)  # [B]
    if grid_size is None:
        size = torch.where(extent > 0, extent / (cells - 1), torch.ones_like(extent))  # [B]
    else:
        size = _grid_sizes(grid_size, num).to(p.device)  # [B]
        need = torch.floor(extent / size) + 1  # [B] cells along each cloud's widest axis
        if bool((need > cells).any()):
            b = int(torch.argmax(need))
            raise ValueError(
                f"grid_size={float(size[b]):.6g} cuts cloud {b} (extent "
                f"{float(extent[b]):.6g}) into {int(need[b])} cells along an axis, more than "
                f"the 2**{bits} = {cells} that {bits} bits per axis hold; pass grid_size >= "
                f"{float(extent[b]) / (cells - 1):.6g} or grid_size=None to choose the finest "
                "that fits")
    coords = torch.floor((p - lo[batch]) / size[batch, None]).long()  # [M, 3]
    return coords.clamp_(0, cells - 1), size, bits  # clamp: rounding at the far corner


def _grid_sizes(grid_size, num: int) -> Tensor:
    """``grid_size`` (a number or a ``[B]`` tensor) as ``[B]`` float64, checked > 0."""
    if isinstance(grid_size, Tensor):
        if grid_size.shape not in ((num,), ()) or not grid_size.dtype.is_floating_point:
            raise ValueError(f"grid_size must be a number or a float tensor [B] with one size "
                             f"per cloud ({num}), got {grid_size.dtype} "
                             f"{tuple(grid_size.shape)}")
        size = grid_size.detach().double().expand(num)
    elif isinstance(grid_size, bool) or not isinstance(grid_size, (int, float)):
        raise ValueError(f"grid_size must be a finite number > 0 or None, got {grid_size!r}")
    else:
        size = torch.full((num,), float(grid_size), dtype=torch.float64)
    if not bool((torch.isfinite(size) & (size > 0)).all()):
        raise ValueError(f"grid_size must be finite and > 0, got {size.tolist()}")
    return size


def point_spacing(pos: Tensor, batch: Tensor | None = None) -> Tensor:
    """Typical distance between neighbouring points of each cloud: ``(V / N)^(1/d)`` over
    the ``d`` axes along which its bounding box of volume ``V`` has extent (1.0 for a
    cloud of one position). A grid of this size holds about one point per cell.

    Shape:
        pos: [M, 3], batch: [M] -> [B] float64
    """
    check_points(pos)
    batch = check_batch(batch, pos.shape[0], pos.device)
    num = batch_size(batch)
    p, index = pos.detach().double(), batch[:, None].expand(-1, 3)
    lo = p.new_full((num, 3), math.inf).scatter_reduce(0, index, p, "amin")
    hi = p.new_full((num, 3), -math.inf).scatter_reduce(0, index, p, "amax")
    extent = hi - lo  # [B, 3]
    flat = extent <= extent.amax(1, keepdim=True) * 1e-9  # axes a cloud does not span
    dims = (~flat).sum(1)  # [B]
    count = torch.bincount(batch, minlength=num).double().clamp(min=1)
    log_volume = torch.where(flat, 0.0, extent.clamp(min=1e-300).log()).sum(1)
    spacing = ((log_volume - count.log()) / dims.clamp(min=1)).exp()
    return torch.where(dims > 0, spacing, torch.ones_like(spacing))


def _spread3(v: Tensor) -> Tensor:
    """The low 21 bits of ``v`` moved to every third bit (bit ``i`` -> bit ``3 i``)."""
    v = v & 0x1FFFFF
    v = (v | (v << 32)) & 0x1F00000000FFFF
    v = (v | (v << 16)) & 0x1F0000FF0000FF
    v = (v | (v << 8)) & 0x100F00F00F00F00F
    v = (v | (v << 4)) & 0x10C30C30C30C30C3
    return (v | (v << 2)) & 0x1249249249249249


def _interleave(x: Tensor, y: Tensor, z: Tensor) -> Tensor:
    """Morton code: at each bit level, x's bit above y's above z's."""
    return (_spread3(x) << 2) | (_spread3(y) << 1) | _spread3(z)


def _hilbert_transpose(x: Tensor, y: Tensor, z: Tensor, bits: int) -> list[Tensor]:
    """Skilling's ``AxestoTranspose`` (AIP Conf. Proc. 707, 2004) on 3 axes: the Hilbert
    index in transposed form, whose bits interleave (axis 0 highest) into the index."""
    a = [x.clone(), y.clone(), z.clone()]
    q = 1 << (bits - 1)
    while q > 1:  # undo the excess work of the inverse transform
        p = q - 1
        for i in range(3):
            set_ = (a[i] & q) != 0
            if i == 0:
                a[0] = torch.where(set_, a[0] ^ p, a[0])
                continue
            t = (a[0] ^ a[i]) & p
            a[0] = torch.where(set_, a[0] ^ p, a[0] ^ t)
            a[i] = torch.where(set_, a[i], a[i] ^ t)
        q >>= 1
    a[1] = a[1] ^ a[0]  # Gray encode
    a[2] = a[2] ^ a[1]
    t = torch.zeros_like(a[2])
    q = 1 << (bits - 1)
    while q > 1:
        t = torch.where((a[2] & q) != 0, t ^ (q - 1), t)
        q >>= 1
    return [v ^ t for v in a]


def encode(coords: Tensor, batch: Tensor | None = None, *, order: str = "z",
           bits: int | None = None) -> Tensor:
    """Code of each grid cell along the curve ``order``, the cloud id in the high bits.

    Args:
        coords: integer grid coordinates in ``[0, 2**bits)``.
        batch: cloud id of each point; ``None``: one cloud.
        order: one of ``"z"``, ``"z-trans"``, ``"hilbert"``, ``"hilbert-trans"``.
        bits: bits per axis (default: the most the cloud count leaves).

    Shape:
        coords: [M, 3], batch: [M] -> [M] int64
    """
    if order not in ORDERS:
        raise ValueError(f"order must be one of {list(ORDERS)}, got {order!r}")
    if not isinstance(coords, Tensor) or coords.dim() != 2 or coords.shape[1] != 3:
        raise ValueError(f"coords must be an integer tensor [M, 3], got "
                         f"{tuple(coords.shape) if isinstance(coords, Tensor) else coords!r}")
    if coords.dtype.is_floating_point or coords.dtype == torch.bool:
        raise TypeError(f"coords must hold integers, got {coords.dtype}; quantize positions "
                        "with grid_coords()")
    batch = check_batch(batch, coords.shape[0], coords.device)
    bits = _check_bits(bits, batch_size(batch))
    coords = coords.long()
    if coords.numel():
        lo, hi = torch.stack(torch.aminmax(coords)).tolist()
        if lo < 0 or hi >= 1 << bits:
            raise ValueError(f"coords hold {lo if lo < 0 else hi}, outside [0, 2**{bits}) for "
                             f"bits={bits}; pass a larger bits (at most "
                             f"{available_bits(batch_size(batch))}) or quantize coarser")
    x, y, z = coords.unbind(1)
    if order.endswith("-trans"):
        x, y = y, x
    if order.startswith("hilbert"):
        x, y, z = _hilbert_transpose(x, y, z, bits)
    return (batch << (3 * bits)) | _interleave(x, y, z)


def serialize(
    pos: Tensor, batch: Tensor | None = None, *, orders: tuple[str, ...] | str = ORDERS,
    grid_size: float | Tensor | None = None, bits: int | None = None, neighbors: bool = False,
) -> Serialization:
    """Quantize each cloud (:func:`grid_coords`), encode it along each of ``orders``
    (:func:`encode`) and sort: the orders PTv3's blocks attend in.

    Points that share a cell are ordered by their position on the finest grid the bits
    allow (a Morton order), so the orders follow a permutation of the input exactly unless
    two points sit at one position. ``neighbors=True``
    also finds the occupied cells and their 27 neighbours (``Serialization.cells``).

    Shape:
        pos: [M, 3], batch: [M] -> :class:`Serialization` with ``code, order, inverse``
        [O, M]
    """
    orders = (orders,) if isinstance(orders, str) else tuple(orders)
    bad = [o for o in orders if o not in ORDERS]
    if not orders or bad:
        raise ValueError(f"orders must be a non-empty list of {list(ORDERS)}, got {orders}")
    check_points(pos)
    batch = check_batch(batch, pos.shape[0], pos.device)
    coords, size, bits = grid_coords(pos, batch, grid_size=grid_size, bits=bits)
    code = torch.stack([encode(coords, batch, order=o, bits=bits) for o in orders])  # [O, M]
    fine = encode(grid_coords(pos, batch, bits=bits)[0], batch, bits=bits)  # [M] tie-break
    first = torch.argsort(fine)  # [M]; then a stable sort by the code keeps it among ties
    order = first[torch.argsort(code[:, first], dim=1, stable=True)]  # [O, M]
    cells = None
    if neighbors:
        from pcattn.ops.serialize_neighbors import grid_neighbors  # it imports encode

        cells = grid_neighbors(coords, batch, bits=bits)
    return Serialization(orders, code, order, inverse_permutation(order), coords, batch,
                         bits, size, cells)


def patches(order: Tensor, batch: Tensor, patch_size: int) -> tuple[Tensor, Tensor]:
    """Cut an order into patches of ``patch_size`` points, each within one cloud.

    Each cloud's run of the order fills ``ceil(N / P)`` patches; the last one is padded
    with ``-1``. Returns ``(idx [NP, P], slot [M])``: ``idx`` holds the node index at each
    slot of each patch, and node ``i`` sits at ``idx.view(-1)[slot[i]]``.

    Shape:
        order: [M] (sorted by cloud, e.g. a row of ``Serialization.order``), batch: [M]
        -> ([NP, P], [M])
    """
    m, device = order.shape[0], order.device
    counts, ptr = counts_and_ptr(batch)  # [B], [B + 1]
    per_cloud = (counts + patch_size - 1) // patch_size  # [B] patches of each cloud
    start = (torch.cumsum(per_cloud, 0) - per_cloud) * patch_size  # [B] first slot
    cloud = batch[order]  # [M] sorted
    rank_slot = start[cloud] + torch.arange(m, device=device) - ptr[cloud]  # [M] by rank
    idx = torch.full((int(per_cloud.sum()) * patch_size,), -1, dtype=torch.long,
                     device=device)
    idx[rank_slot] = order
    slot = torch.empty_like(rank_slot).scatter_(0, order, rank_slot)  # [M] by node
    return idx.view(-1, patch_size), slot


def inverse_permutation(order: Tensor) -> Tensor:
    """``inverse`` with ``order[..., inverse] == arange`` along the last axis.

    Shape:
        order: [*, M] -> [*, M]
    """
    arange = torch.arange(order.shape[-1], device=order.device).expand_as(order)
    return torch.empty_like(order).scatter_(-1, order, arange)
