"""Multi-head attention inside patches of a space-filling-curve order (Point Transformer V3)."""

from __future__ import annotations

import math

import torch
import torch.nn.functional as F
from torch import Tensor, nn

from pcattn.nn.attention_map import AttentionMap
from pcattn.nn.checks import check_int, check_points
from pcattn.nn.reset import reset_children
from pcattn.nn.serialized_encoding import GridConvEncoding, KnnConvEncoding
from pcattn.ops.gather import gather_padded, pad_zero_row
from pcattn.ops.serialize import ORDERS, Serialization, patches, point_spacing, serialize

POS_ENCODINGS = ("grid", "knn", None)


class SerializedAttention(nn.Module):
    r"""Dense multi-head attention within patches of ``P`` consecutive points of an order.

    Point Transformer V3 (Wu et al., CVPR 2024): the points of each cloud are sorted along
    a space-filling curve (:func:`pcattn.ops.serialize`), the order is cut into patches of
    ``patch_size`` points (a cloud's last patch padded and masked; no patch holds two
    clouds) and every point attends to the points of its patch:

    .. math::
        h = x + \mathrm{cpe}(x), \qquad
        a_{ij}^{(h)} = \operatorname{softmax}_{j \in \mathcal{P}(i)}
            \frac{q_i^{(h)} \cdot k_j^{(h)}}{\sqrt{D}}, \qquad
        y_i = W_o \big\Vert_h \sum_{j \in \mathcal{P}(i)} a_{ij}^{(h)} v_j^{(h)}

    with ``q, k, v = W_{q,k,v} h``, ``P(i)`` the patch of ``i`` and ``cpe`` the conditional
    positional encoding: ``"grid"`` (:class:`~pcattn.nn.serialized_encoding.GridConvEncoding`,
    PTv3's submanifold 3x3x3 convolution), ``"knn"``
    (:class:`~pcattn.nn.serialized_encoding.KnnConvEncoding`, a depthwise kNN point
    convolution), a module ``(x, pos, serialization) -> [M, C_in]``, or ``None``. Work is
    ``[NP, H, P, D]`` through ``scaled_dot_product_attention``: ``O(M P C)``, no kNN search.

    A network passes one :class:`~pcattn.ops.Serialization` of a level to all its blocks and
    gives each block another ``order`` so that patches mix from block to block.

    Args:
        in_channels: input feature size ``C_in``.
        out_channels: output feature size ``C``, divisible by ``heads``.
        heads: number of heads ``H``.
        patch_size: points per patch ``P`` (keys per query).
        order: the curve used when ``forward`` gets no ``order``: one of
            ``"z", "z-trans", "hilbert", "hilbert-trans"``.
        grid_size: cell size of the serialization this block makes when ``forward`` gets
            none; ``None``: each cloud's point spacing (:func:`pcattn.ops.point_spacing`).
        pos_encoding: ``"grid"``, ``"knn"``, a module, or ``None``.
        k: neighbours of the ``"knn"`` encoding.
        bias: bias in the query, key and value maps.

    Shape:
        x: [M, C_in], pos: [M, 3], batch: [M] -> [M, C];
        with ``return_attention=True`` also a ``patch`` :class:`AttentionMap`: weights
        [NP, H, P, P] on ``idx`` [NP, P] (``-1`` at padding).
    """

    def __init__(
        self, in_channels: int, out_channels: int, *, heads: int = 4, patch_size: int = 128,
        order: str = "z", grid_size: float | None = None, pos_encoding: str | nn.Module | None
        = "grid", k: int = 16, bias: bool = True,
    ) -> None:
        super().__init__()
        name = type(self).__name__
        in_channels = check_int(name, "in_channels", in_channels)
        out_channels = check_int(name, "out_channels", out_channels)
        self.heads = check_int(name, "heads", heads)
        self.patch_size = check_int(name, "patch_size", patch_size)
        k = check_int(name, "k", k)  # read by the kNN encoding; checked whichever is chosen
        if out_channels % heads:
            raise ValueError(f"{name}: out_channels ({out_channels}) must be divisible by heads "
                             f"({heads})")
        if order not in ORDERS:
            raise ValueError(f"{name}: order must be one of {list(ORDERS)}, got {order!r}")
        if grid_size is not None and not (isinstance(grid_size, (int, float))
                                          and math.isfinite(grid_size) and grid_size > 0):
            raise ValueError(f"{name}: grid_size must be a number > 0 or None, got "
                             f"{grid_size!r}")
        self.in_channels, self.out_channels = in_channels, out_channels
        self.order, self.grid_size = order, grid_size
        if isinstance(pos_encoding, nn.Module):
            self.pos_encoding = pos_encoding
        elif pos_encoding == "grid":
            self.pos_encoding = GridConvEncoding(in_channels)
        elif pos_encoding == "knn":
            self.pos_encoding = KnnConvEncoding(in_channels, k=k)
        elif pos_encoding is None:
            self.pos_encoding = None
        else:
            raise ValueError(f"{name}: pos_encoding must be one of {list(POS_ENCODINGS)} or a "
                             f"module, got {pos_encoding!r}")
        self.lin_qkv = nn.Linear(in_channels, 3 * out_channels, bias=bias)
        self.lin_out = nn.Linear(out_channels, out_channels)

    def reset_parameters(self) -> None:
        """Default inits of the linear maps and of the positional encoding."""
        reset_children(self)

    def serialize(self, pos: Tensor, batch: Tensor | None = None) -> Serialization:
        """The serialization this block makes for itself: its ``order`` on its grid, the
        cells when the encoding reads them."""
        size = self.grid_size if self.grid_size is not None else point_spacing(pos, batch)
        return serialize(pos, batch, orders=self.order, grid_size=size,
                         neighbors=isinstance(self.pos_encoding, GridConvEncoding))

    def forward(
        self, x: Tensor, pos: Tensor, batch: Tensor | None = None, *,
        serialization: Serialization | None = None, order: str | None = None,
        return_attention: bool = False,
    ) -> Tensor | tuple[Tensor, AttentionMap]:
        name = type(self).__name__
        m = check_points(name, x, pos, batch, self.in_channels)
        s = serialization if serialization is not None else self.serialize(pos, batch)
        if s.order.shape[1] != m:
            raise ValueError(f"{name}: serialization orders {s.order.shape[1]} points but x "
                             f"has {m} rows; serialize this level's pos and batch")
        row = s.index(order if order is not None else (
            self.order if self.order in s.orders else s.orders[0]))
        h = x if self.pos_encoding is None else x + self.pos_encoding(x, pos, s)  # [M, C_in]
        idx, slot = patches(s.order[row], s.batch, self.patch_size)  # [NP, P], [M]
        n, p, c, heads = idx.shape[0], self.patch_size, self.out_channels, self.heads
        qkv = gather_padded(pad_zero_row(self.lin_qkv(h)), idx)  # [NP, P, 3C]
        q, k, v = qkv.view(n, p, 3, heads, c // heads).permute(2, 0, 3, 1, 4)  # [NP, H, P, D]
        valid = idx >= 0  # [NP, P]
        mask = None if bool(valid.all()) else valid[:, None, None, :]  # [NP, 1, 1, P]
        if return_attention:  # the same attention, its weights kept
            logits = q @ k.transpose(-1, -2) / math.sqrt(c // heads)  # [NP, H, P, P]
            if mask is not None:
                logits = logits.masked_fill(~mask, -math.inf)
            weight = torch.softmax(logits, -1)  # [NP, H, P, P]
            out = weight @ v  # [NP, H, P, D]
        else:
            out = F.scaled_dot_product_attention(q, k, v, attn_mask=mask)  # [NP, H, P, D]
        out = out.transpose(1, 2).reshape(n * p, c)[slot]  # [M, C], input order
        out = self.lin_out(out)
        if not return_attention:
            return out
        return out, AttentionMap("patch", weight * valid[:, None, :, None], idx=idx)
