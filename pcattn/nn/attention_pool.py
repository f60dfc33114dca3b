"""Multi-head attention pooling with a learned query, one vector per cloud."""

from __future__ import annotations

import math

import torch
from torch import Tensor, nn

from pcattn.nn.attention_map import AttentionMap
from pcattn.nn.checks import check_batch_rows, check_features, check_int
from pcattn.nn.reset import reset_children
from pcattn.ops.batching import batch_size, check_batch
from pcattn.ops.softmax import segment_softmax


class AttentionPool(nn.Module):
    r"""Pool each cloud with learned queries attending over its nodes.

    The pooling by multi-head attention of Set Transformer (PMA, Lee et al., ICML 2019),
    with one learned seed per head (CLIP's attention pool uses the same form):

    .. math::
        a_i^{(h)} = \operatorname{softmax}_{i \in b}
            \frac{q^{(h)} \cdot (W_k x_i)^{(h)}}{\sqrt{D}}, \qquad
        y_b = W_o \big\Vert_h \sum_{i \in b} a_i^{(h)} (W_v x_i)^{(h)}

    The softmax runs over the nodes of each cloud of the packed batch (no padding). It
    is permutation invariant, and a learned alternative to max/mean pooling and to the
    fixed-kernel :class:`~pcattn.nn.NadarayaWatsonPool`. It equals
    ``torch.nn.MultiheadAttention`` with a single query ``W_q s + b_q = q`` per cloud.

    Args:
        in_channels: node feature size ``C_in``.
        out_channels: pooled size ``C`` (default ``C_in``), divisible by ``heads``.
        heads: number of heads ``H``.
        bias: bias in the key and value maps.

    Shape:
        x: [M, C_in], batch: [M] (``None``: one cloud) -> [B, C]; with
        ``return_attention=True`` also a ``pool`` :class:`AttentionMap`: weights [M, H]
        (each head's weights sum to one over the nodes of a cloud) and ``batch``.
    """

    def __init__(self, in_channels: int, out_channels: int | None = None, *, heads: int = 4,
                 bias: bool = True) -> None:
        super().__init__()
        name = type(self).__name__
        in_channels = check_int(name, "in_channels", in_channels)
        out_channels = check_int(name, "out_channels", out_channels, optional=True)
        heads = check_int(name, "heads", heads)
        c = out_channels or in_channels
        if c % heads != 0:
            raise ValueError(f"{name}: out_channels ({c}) must be divisible by heads ({heads})")
        self.in_channels, self.out_channels, self.heads = in_channels, c, heads
        self.query = nn.Parameter(torch.empty(heads, c // heads))
        self._init_query()
        self.lin_k = nn.Linear(in_channels, c, bias=bias)
        self.lin_v = nn.Linear(in_channels, c, bias=bias)
        self.lin_out = nn.Linear(c, c)

    def _init_query(self) -> None:
        """Seed ``q ~ N(0, 1/D)``: the logits start at unit scale."""
        with torch.no_grad():
            self.query.copy_(torch.randn_like(self.query) * self.query.shape[1] ** -0.5)

    def reset_parameters(self) -> None:
        """Default inits of the projections; the seed ``q ~ N(0, 1/D)``."""
        reset_children(self)
        self._init_query()

    def forward(self, x: Tensor, batch: Tensor | None = None, *, num_clouds: int | None = None,
                return_attention: bool = False) -> Tensor | tuple[Tensor, AttentionMap]:
        name = type(self).__name__
        check_batch_rows(name, batch, check_features(name, x, self.in_channels))
        batch = check_batch(batch, x.shape[0], x.device)
        b = batch_size(batch) if num_clouds is None else num_clouds
        m, h, c = x.shape[0], self.heads, self.out_channels
        d = c // h
        key = self.lin_k(x).view(m, h, d)  # [M, H, D]
        value = self.lin_v(x).view(m, h, d)  # [M, H, D]
        logits = (key * self.query).sum(-1) / math.sqrt(d)  # [M, H]
        weight = segment_softmax(logits, batch, b)  # [M, H]
        out = x.new_zeros(b, h, d).index_add_(0, batch, weight[..., None] * value)  # [B, H, D]
        out = self.lin_out(out.reshape(b, c))  # [B, C]
        if not return_attention:
            return out
        return out, AttentionMap("pool", weight, batch=batch)  # weight [M, H]
