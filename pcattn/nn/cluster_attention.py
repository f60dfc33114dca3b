"""Attention inside k-means clusters of keys (Routing Transformer, Roy et al., TACL 2021)."""

from __future__ import annotations

from typing import Callable

import torch
import torch.nn.functional as F
from torch import Tensor, nn

from pcattn.nn.attention_map import AttentionMap
from pcattn.nn.checks import check_int
from pcattn.nn.global_base import GlobalAttentionBase
from pcattn.ops.batching import batch_size, unpack


class ClusterAttention(GlobalAttentionBase):
    r"""Multi-head attention restricted to the nodes of one cluster, per cloud and head.

    After the Routing Transformer (Roy, Saffar, Vaswani, Grangier, TACL 2021): per head,
    ``n_c`` unit centroids :math:`\mu^h_c` route every node to the cluster of its unit key,
    :math:`c^h(i) = \arg\max_c \mu^h_c \cdot k^h_i / \lVert k^h_i\rVert`, and each query
    attends to the keys of its own cluster (its query and key share the node's cluster, as
    with Reformer's shared query-key routing, so every query sees at least its own key):

    .. math::
        y_i = W_o \big\Vert_h \sum_{j:\, c^h(j) = c^h(i)}
              \operatorname{softmax}_j\Big(\frac{q^h_i \cdot k^h_j}{\sqrt D}\Big)\, v^h_j

    with ``j`` over ``i``'s cloud. The centroids are made for point sets and for eval at
    any step: they start as orthonormal directions (deterministic under the seed, not set
    on the first backward as in the Routing Transformer's code), and each training forward
    moves them by an exponential moving average of their members' mean unit key
    (:math:`\mu \leftarrow \mathrm{normalize}(\lambda \mu + (1 - \lambda)\bar k)`, decay
    :math:`\lambda`); eval never changes them. Each training forward also keeps the
    Routing Transformer's commitment loss in ``commitment_loss``, the mean squared distance
    of every unit key to its (fixed) centroid over the ``M`` nodes and ``H`` heads,

    .. math::
        L_{commit} = \frac{1}{M H} \sum_{i, h}
                     \big\lVert \hat k^h_i - \mu^h_{c^h(i)} \big\rVert^2,
        \qquad \hat k^h_i = k^h_i / \lVert k^h_i \rVert,

    a scalar with gradient to the key projection (``None`` after an eval forward) that a
    training adds with a weight (``train.commitment_weight``) to pull the keys toward their
    centroids. Clusters take any size and any number of nodes: no length has to divide a
    bucket size. Each cluster is padded to the next power of two and clusters of one padded
    length run as one ``scaled_dot_product_attention`` with a key mask, so the work is at
    most 4x the exact :math:`\sum_c n_c^2 D` and memory O(M H D) (no ``[N, N]`` matrix);
    with ``return_attention=True`` the masked ``[B, H, N, N]`` softmax is computed
    explicitly instead (same numbers). The output is permutation-equivariant.

    Args:
        in_channels: ``C_in``.
        out_channels: ``C`` (default ``C_in``), divisible by ``heads``.
        heads: ``H``; ``D = C / H``.
        num_clusters: ``n_c`` per head.
        decay: ``lambda`` of the centroids' moving average (Routing Transformer: 0.999).
        bias: biases in the projections.
        pos_encoding: absolute encoding ``[M, 3] -> [M, C_in]``; the block then works on
            ``x + pos_encoding(pos)`` and ``forward`` needs ``pos=``.

    Shape:
        x: [M, C_in], batch: [M] (``None``: one cloud) -> [M, C]; the buffer ``centroids``
        is [H, n_c, D] and ``commitment_loss`` a scalar; with ``return_attention=True``
        also a ``global`` :class:`AttentionMap`: weights [B, H, N_max, N_max] (zero outside
        each query's cluster and at padding) and the mask [B, N_max]. :meth:`assign` gives
        the clusters.
    """

    def __init__(self, in_channels: int, out_channels: int | None = None, *,
                 heads: int = 4, num_clusters: int = 8, decay: float = 0.999,
                 bias: bool = True, pos_encoding: Callable | None = None) -> None:
        super().__init__(in_channels, out_channels, heads=heads, bias=bias,
                         pos_encoding=pos_encoding)
        name = type(self).__name__
        num_clusters = check_int(name, "num_clusters", num_clusters)
        if not 0.0 <= decay < 1.0:
            raise ValueError(f"{name}: decay must be in [0, 1), got {decay}")
        self.num_clusters, self.decay = num_clusters, decay
        self.register_buffer("centroids", torch.empty(self.heads, num_clusters,
                                                      self.out_channels // self.heads))
        self._init_centroids()
        self.commitment_loss: Tensor | None = None  # of the last training forward

    def _init_centroids(self) -> None:
        """Orthonormal unit centroids per head (``n_c > D``: unit rows of an orthogonal
        ``[n_c, D]`` matrix)."""
        with torch.no_grad():
            for mu in self.centroids:
                nn.init.orthogonal_(mu)
            self.centroids.copy_(F.normalize(self.centroids, dim=-1))

    def __getstate__(self) -> dict:
        """Copies and pickles without the last forward's ``commitment_loss`` (a tensor of
        that forward's graph, which ``copy.deepcopy`` refuses)."""
        return {**super().__getstate__(), "commitment_loss": None}

    def reset_parameters(self) -> None:
        """Default inits of the projections (and ``pos_encoding``); fresh centroids."""
        super().reset_parameters()
        self._init_centroids()

    def forward(self, x: Tensor, batch: Tensor | None = None, *, pos: Tensor | None = None,
                return_attention: bool = False) -> Tensor | tuple[Tensor, AttentionMap]:
        x, batch = self._inputs(x, batch, pos)
        h, c = self.heads, self.out_channels
        q, k, v = self._project(x)  # [M, H, D] each
        k_hat = F.normalize(k, dim=-1)  # [M, H, D]
        unit = k_hat.detach().to(self.centroids.dtype)  # [M, H, D]
        cluster = torch.einsum("mhd,hcd->mhc", unit, self.centroids).argmax(-1)  # [M, H]
        if self.training:
            mu = self.centroids[torch.arange(h, device=x.device), cluster]  # [M, H, D]
            self.commitment_loss = (k_hat - mu).square().sum(-1).mean()  # before the EMA step
            self._update_centroids(unit, cluster)
        else:
            self.commitment_loss = None
        if not return_attention:
            out = _attend_in_clusters(q, k, v, cluster, batch, self.num_clusters)  # [M, H, D]
            return self._output(out)  # [M, C]
        qd, mask = unpack(q, batch)  # [B, N, H, D], [B, N]
        kd, _ = unpack(k, batch)  # [B, N, H, D]
        vd, _ = unpack(v, batch)  # [B, N, H, D]
        cd = unpack(cluster, batch, fill_value=-1)[0].transpose(1, 2)  # [B, H, N]
        logits = torch.einsum("bihd,bjhd->bhij", qd, kd) * (c // h) ** -0.5  # [B, H, N, N]
        allowed = (cd[..., :, None] == cd[..., None, :]) & mask[:, None, None, :]
        allowed = allowed | ~mask[:, None, :, None]  # padded rows: no empty softmax
        weight = torch.softmax(logits.masked_fill(~allowed, float("-inf")), dim=-1)
        weight = weight * mask[:, None, :, None]  # [B, H, N, N]
        out = torch.einsum("bhij,bjhd->bihd", weight, vd)[mask]  # [M, H, D]
        return self._output(out), AttentionMap("global", weight, mask=mask)

    def assign(self, x: Tensor, batch: Tensor | None = None, *, pos: Tensor | None = None
               ) -> Tensor:
        """The cluster of every node in every head (what ``forward`` attends within).

        Shape:
            x: [M, C_in] -> [M, H]
        """
        x, _ = self._inputs(x, batch, pos)  # [M, C_in]
        k = self._project(x)[1]  # [M, H, D]
        unit = F.normalize(k.detach(), dim=-1).to(self.centroids.dtype)
        return torch.einsum("mhd,hcd->mhc", unit, self.centroids).argmax(-1)

    @torch.no_grad()
    def _update_centroids(self, unit: Tensor, cluster: Tensor) -> None:
        """One EMA step of every centroid that has members; the others stay."""
        h, nc, d = self.centroids.shape
        flat = (torch.arange(h, device=unit.device) * nc + cluster).reshape(-1)  # [M H]
        sums = unit.new_zeros(h * nc, d).index_add_(0, flat, unit.reshape(-1, d))
        counts = torch.bincount(flat, minlength=h * nc)[:, None]  # [H n_c, 1]
        mu = self.centroids.view(h * nc, d)
        moved = F.normalize(self.decay * mu + (1 - self.decay) * sums / counts.clamp(min=1),
                            dim=-1)
        mu.copy_(torch.where(counts > 0, moved, mu))


def _attend_in_clusters(q: Tensor, k: Tensor, v: Tensor, cluster: Tensor, batch: Tensor,
                        num_clusters: int) -> Tensor:
    """Exact attention within each (cloud, head, cluster) group, groups padded to powers
    of two and batched by padded length.

    Shape:
        q, k, v: [M, H, D], cluster: [M, H], batch: [M] -> [M, H, D]
    """
    m, h, d = q.shape
    group = ((batch[:, None] * h + torch.arange(h, device=q.device)) * num_clusters
             + cluster).reshape(-1)  # [M H]: group of each (node, head)
    order = torch.argsort(group, stable=True)  # [M H]: members of a group contiguous
    sizes = torch.bincount(group, minlength=batch_size(batch) * h * num_clusters)  # [G]
    start = torch.cumsum(sizes, 0) - sizes  # [G]
    qf, kf, vf = q.reshape(m * h, d), k.reshape(m * h, d), v.reshape(m * h, d)
    rows, outs = [], []
    for size in sorted({1 << (int(s) - 1).bit_length() for s in sizes.unique().tolist()
                        if s > 0}):
        groups = ((sizes > size // 2) & (sizes <= size)).nonzero()[:, 0]  # [G_p]
        slot = torch.arange(size, device=q.device)  # [P]
        valid = slot[None, :] < sizes[groups, None]  # [G_p, P]
        member = order[(start[groups, None] + slot).clamp(max=m * h - 1)]  # [G_p, P]
        o = F.scaled_dot_product_attention(qf[member][:, None], kf[member][:, None],
                                           vf[member][:, None],
                                           attn_mask=valid[:, None, None, :])  # [G_p,1,P,D]
        rows.append(member[valid])
        outs.append(o[:, 0][valid])  # [n, D]
    if not rows:
        return q.new_zeros(m, h, d)
    out = q.new_zeros(m * h, d).index_copy(0, torch.cat(rows), torch.cat(outs))
    return out.view(m, h, d)
