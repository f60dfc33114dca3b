"""GATv2 graph attention on any ``edge_index`` (Brody, Alon, Yahav, ICLR 2022)."""

from __future__ import annotations

import torch
import torch.nn.functional as F
from torch import Tensor, nn
from torch_geometric.nn import MessagePassing
from torch_geometric.utils import add_self_loops, remove_self_loops, softmax

from pcattn.nn.attention_map import AttentionMap
from pcattn.nn.checks import check_features, check_int, check_rows, check_tensor
from pcattn.nn.chunking import RECOMPUTE_ABOVE, check_chunking, chunked_rows
from pcattn.ops.gather import gather_padded


class GraphAttention(MessagePassing):
    r"""Multi-head GATv2 attention over the edges of a graph.

    From "How Attentive are Graph Attention Networks?" (Brody, Alon, Yahav, ICLR 2022),
    PyG's ``GATv2Conv`` formula, for each edge ``j -> i`` of ``edge_index`` and head ``h``:

    .. math::
        e_{ij}^{(h)} = a^{(h)\top} \operatorname{LeakyReLU}\big(W_s x_j + W_t x_i
                       + W_e e_{ij}\big)^{(h)}, \qquad
        \alpha_{ij}^{(h)} = \operatorname{softmax}_{j \in N(i)} e_{ij}^{(h)}, \qquad
        y_i^{(h)} = \sum_{j \in N(i)} \alpha_{ij}^{(h)} (W_s x_j)^{(h)}

    then the heads are concatenated (``concat=True``) or averaged, plus a bias (and
    ``W_r x_i`` with ``residual=True``). The graph can be anything: a kNN graph
    (``pcattn.ops.neighbors_to_edge_index(pcattn.ops.knn(pos, k, batch))``), a mesh or a
    molecule. Edge features ``edge_attr [E, edge_dim]`` enter the scores; the relative
    position ``pos[j] - pos[i]`` is a good one for geometric graphs.

    Differences from ``GATv2Conv`` (the test checks the two agree once these are matched):

    * ``out_channels`` is the output width, as in every pcattn block: with ``concat=True``
      each head has ``out_channels // heads`` channels, so
      ``GATv2Conv(C_in, C // H, heads=H)`` is ``GraphAttention(C_in, C, heads=H)``.
    * ``add_self_loops`` defaults to ``False``: the graph is taken as given (a kNN graph
      from ``pcattn.ops.knn`` has each node as its own first neighbour already). With
      ``add_self_loops=True`` the layer does what ``GATv2Conv`` does by default: it removes
      the graph's self loops and adds one per node (edge features ``fill_value``), and the
      map returned holds that graph. A node without incoming edges gets zero aggregation
      (only the bias).
    * The parameters ``lin_l`` / ``lin_r`` are ``lin_src`` / ``lin_dst`` here; a
      ``GATv2Conv`` ``state_dict`` loads as it is (the names are mapped), and
      :meth:`from_pyg` builds the layer of a conv.

    Args:
        in_channels: input size ``C_in``; a pair ``(C_src, C_dst)`` for bipartite graphs.
        out_channels: output size ``C``.
        heads: number of heads ``H``.
        concat: concatenate the heads (``H * D = C``) or average them (``D = C``).
        edge_dim: size of ``edge_attr`` (``None``: no edge features).
        negative_slope: slope of the LeakyReLU.
        dropout: dropout on the attention weights (training only; the weights returned
            are the ones used, after dropout).
        share_weights: use one matrix for ``W_s`` and ``W_t``.
        bias: learn a bias (in ``W_s``, ``W_t`` and the output).
        residual: add ``W_r x_i`` to the output.
        add_self_loops: remove the graph's self loops and add one per node, as
            ``GATv2Conv`` (where ``True`` is the default).
        fill_value: ``edge_attr`` of the added self loops (``"mean"``: the mean of the
            node's incoming edges; a number or a tensor; see PyG's ``add_self_loops``).
        chunk_size, recompute_above: on a graph with ``K`` edges into every target (a kNN
            graph), the targets are processed in chunks of rows, each chunk's ``[R, K, C]``
            edge intermediates recomputed in backward when the whole ``[M, K, C]`` would
            exceed ``recompute_above`` elements, as in the local attention blocks
            (:func:`pcattn.nn.chunking.chunked_rows`); a wide layer on a large graph then
            keeps its memory bounded.

    Shape:
        x: [M, C_in] (or ([M_src, C_src], [M_dst, C_dst])), edge_index: [2, E] (row 0
        source ``j``, row 1 target ``i``), edge_attr: [E, edge_dim] -> [M, C];
        with ``return_attention=True`` also a ``graph`` :class:`AttentionMap`: weights
        [E, H] on ``edge_index`` (each target's weights sum to 1, before dropout).
    """

    def __init__(
        self, in_channels: int | tuple[int, int], out_channels: int, *, heads: int = 4,
        concat: bool = True, edge_dim: int | None = None, negative_slope: float = 0.2,
        dropout: float = 0.0, share_weights: bool = False, bias: bool = True,
        residual: bool = False, add_self_loops: bool = False,
        fill_value: float | Tensor | str = "mean", chunk_size: int | str | None = "auto",
        recompute_above: int | None = RECOMPUTE_ABOVE,
    ) -> None:
        super().__init__(aggr="add", node_dim=0)
        name = type(self).__name__
        self.chunk_size, self.recompute_above = check_chunking(
            name, chunk_size, recompute_above)
        if isinstance(in_channels, tuple):
            in_channels = (check_int(name, "in_channels[0]", in_channels[0]),
                           check_int(name, "in_channels[1]", in_channels[1]))
        else:
            in_channels = check_int(name, "in_channels", in_channels)
        out_channels = check_int(name, "out_channels", out_channels)
        heads = check_int(name, "heads", heads)
        edge_dim = check_int(name, "edge_dim", edge_dim, optional=True)
        if concat and out_channels % heads != 0:
            raise ValueError(f"{name}: out_channels ({out_channels}) must be divisible by heads "
                             f"({heads}) with concat=True")
        self.in_channels, self.out_channels, self.heads = in_channels, out_channels, heads
        self.concat, self.edge_dim = concat, edge_dim
        self.negative_slope, self.dropout = negative_slope, dropout
        self.share_weights = share_weights
        self.add_self_loops, self.fill_value = add_self_loops, fill_value
        c_src, c_dst = (in_channels, in_channels) if isinstance(in_channels, int) else in_channels
        if share_weights and c_src != c_dst:
            raise ValueError(f"{name}: share_weights=True needs equal source and target sizes, "
                             f"got in_channels={in_channels}")
        d = out_channels // heads if concat else out_channels
        self.head_channels = d
        self.lin_src = nn.Linear(c_src, heads * d, bias=bias)
        self.lin_dst = self.lin_src if share_weights else nn.Linear(c_dst, heads * d, bias=bias)
        self.att = nn.Parameter(torch.empty(1, heads, d))
        self.lin_edge = nn.Linear(edge_dim, heads * d, bias=False) if edge_dim else None
        self.res = nn.Linear(c_dst, out_channels, bias=False) if residual else None
        self.bias = nn.Parameter(torch.empty(out_channels)) if bias else None
        self.reset_parameters()
        self.register_load_state_dict_pre_hook(_load_pyg_names)

    @classmethod
    def from_pyg(cls, conv: nn.Module) -> "GraphAttention":
        """The layer of a PyG ``GATv2Conv``: same hyper-parameters (``out_channels`` here
        is the conv's ``heads * out_channels`` with ``concat=True``) and a copy of its
        weights; outputs agree with the conv's."""
        c_out = conv.heads * conv.out_channels if conv.concat else conv.out_channels
        weight = conv.lin_l.weight
        layer = cls(conv.in_channels, c_out, heads=conv.heads, concat=conv.concat,
                    edge_dim=conv.edge_dim, negative_slope=conv.negative_slope,
                    dropout=conv.dropout, share_weights=conv.share_weights,
                    bias=conv.bias is not None, residual=conv.res is not None,
                    add_self_loops=conv.add_self_loops, fill_value=conv.fill_value,
                    ).to(device=weight.device, dtype=weight.dtype)
        layer.load_state_dict(conv.state_dict())
        return layer

    def reset_parameters(self) -> None:
        """Glorot weights and zero biases, as ``GATv2Conv``."""
        for lin in (self.lin_src, self.lin_dst, self.lin_edge, self.res):
            if lin is not None:
                nn.init.xavier_uniform_(lin.weight)
                if lin.bias is not None:
                    nn.init.zeros_(lin.bias)
        nn.init.xavier_uniform_(self.att)
        if self.bias is not None:
            nn.init.zeros_(self.bias)

    def forward(
        self, x: Tensor | tuple[Tensor, Tensor], edge_index: Tensor,
        edge_attr: Tensor | None = None, *, return_attention: bool = False,
        return_attention_weights: None = None,
    ) -> Tensor | tuple[Tensor, AttentionMap]:
        name = type(self).__name__
        if return_attention_weights is not None:  # GATv2Conv's flag, by PyG habit
            raise TypeError(f"{name}: return_attention_weights is GATv2Conv's flag; pass "
                            f"return_attention=True, which returns (out, AttentionMap) whose "
                            f"edge_index and weight are PyG's (edge_index, alpha)")
        c_src, c_dst = self.lin_src.in_features, self.lin_dst.in_features
        if isinstance(x, Tensor):
            check_features(name, x, c_src)
        else:
            check_features(name, x[0], c_src, name="x[0]")
            check_features(name, x[1], c_dst, name="x[1]")
        check_tensor(name, "edge_index", edge_index, (2, "E"), dtype="index")
        if (edge_attr is None) != (self.lin_edge is None):
            raise ValueError(f"{name}: edge_attr is {'missing' if edge_attr is None else 'given'} "
                             f"but the layer was built with edge_dim={self.edge_dim}")
        h, d = self.heads, self.head_channels
        x_src, x_dst = (x, x) if isinstance(x, Tensor) else x
        if edge_attr is not None:
            check_rows(name, "edge_attr", edge_attr, edge_index.shape[1], self.edge_dim,
                       of="edge_index's columns")
        h_src = self.lin_src(x_src).view(-1, h, d)  # [M_src, H, D]
        h_dst = (h_src if self.share_weights and x_dst is x_src
                 else self.lin_dst(x_dst).view(-1, h, d))  # [M_dst, H, D]
        edge_index = edge_index.long()
        if self.add_self_loops:  # as GATv2Conv: once per node of the smaller side
            edge_index, edge_attr = remove_self_loops(edge_index, edge_attr)
            edge_index, edge_attr = add_self_loops(
                edge_index, edge_attr, fill_value=self.fill_value,
                num_nodes=min(h_src.shape[0], h_dst.shape[0]))
        k = _regular_degree(edge_index, h_dst.shape[0])
        if k is not None:  # a kNN graph: dense [M, K] neighbourhoods, no scatter
            src = edge_index[0].view(-1, k)  # [M, K]
            rows = (src, h_dst) if edge_attr is None else (
                src, h_dst, edge_attr.view(-1, k, self.edge_dim))  # [M, K], [M, H, D], [M, K, F]
            out, alpha = chunked_rows(
                self._attend_regular, rows, (), tables=(h_src,), index=0,
                chunk_size=self.chunk_size, row_elems=k * h * d,
                keep=(True, return_attention), recompute_above=self.recompute_above)
        else:
            alpha = self.edge_updater(edge_index, x=(h_src, h_dst), edge_attr=edge_attr,
                                      size=(h_src.shape[0], h_dst.shape[0]))
            out = self.propagate(edge_index, x=(h_src, h_dst), alpha=alpha,
                                 size=(h_src.shape[0], h_dst.shape[0]))  # [M_dst, H, D]
        out = out.reshape(-1, h * d) if self.concat else out.mean(dim=1)  # [M_dst, C]
        if self.res is not None:
            out = out + self.res(x_dst)
        if self.bias is not None:
            out = out + self.bias
        if not return_attention:
            return out
        return out, AttentionMap("graph", alpha, edge_index=edge_index,
                                 num_sources=h_src.shape[0])  # weight [E, H]

    def _attend_regular(self, src: Tensor, h_dst: Tensor, *rest: Tensor
                        ) -> tuple[Tensor, Tensor]:
        """The same attention for a chunk of targets ``i`` with the ``K`` sources ``src[i]``
        each (edges in target order): the scatter softmax and sum become a softmax and a
        sum over ``K``. ``rest`` is the chunk's edge features ``[R, K, edge_dim]`` (if any)
        and then its window of the source table ``[W + 1, H, D]``, ending in a zero row."""
        *edge, table = rest
        m, k = src.shape
        x_j = gather_padded(table, src)  # [R, K, H, D]
        e = x_j + h_dst.unsqueeze(1)  # [R, K, H, D]
        if edge:
            e = e + self.lin_edge(edge[0]).view(m, k, self.heads, self.head_channels)
        e = F.leaky_relu(e, self.negative_slope)
        alpha = torch.softmax((e * self.att).sum(dim=-1), dim=1)  # [R, K, H]
        alpha = F.dropout(alpha, p=self.dropout, training=self.training)
        out = (alpha.unsqueeze(-1) * x_j).sum(dim=1)  # [R, H, D] (faster than a bmm of 1 x K)
        return out, alpha.reshape(m * k, self.heads)

    def edge_update(self, x_j: Tensor, x_i: Tensor, edge_attr: Tensor | None, index: Tensor,
                    ptr: Tensor | None, dim_size: int | None) -> Tensor:
        e = x_i + x_j  # [E, H, D]
        if edge_attr is not None:
            e = e + self.lin_edge(edge_attr).view(-1, self.heads, self.head_channels)  # [E, H, D]
        e = F.leaky_relu(e, self.negative_slope)
        score = (e * self.att).sum(dim=-1)  # [E, H]
        alpha = softmax(score, index, ptr, dim_size)  # [E, H], sums to 1 per target
        return F.dropout(alpha, p=self.dropout, training=self.training)

    def message(self, x_j: Tensor, alpha: Tensor) -> Tensor:
        return x_j * alpha.unsqueeze(-1)  # [E, H, D]

    def __repr__(self) -> str:
        return (f"{self.__class__.__name__}({self.in_channels}, {self.out_channels}, "
                f"heads={self.heads}, concat={self.concat})")


def _load_pyg_names(layer: GraphAttention, state_dict: dict, prefix: str, *args) -> None:
    """Before ``GraphAttention.load_state_dict``: ``GATv2Conv``'s ``lin_l`` / ``lin_r`` become
    ``lin_src`` / ``lin_dst``, and a conv of another total width is one error naming
    the width to build."""
    renamed = {prefix + "lin_l.": prefix + "lin_src.", prefix + "lin_r.": prefix + "lin_dst."}
    for key in [k for k in state_dict if k.startswith(tuple(renamed))]:
        head = key[:len(prefix) + 6]  # prefix + "lin_l." or "lin_r."
        state_dict[renamed[head] + key[len(head):]] = state_dict.pop(key)
    att = state_dict.get(prefix + "att")
    if att is not None and att.shape != layer.att.shape and att.dim() == 3:
        h, d = att.shape[1:]
        width = h * d if layer.concat else d
        raise ValueError(
            f"{type(layer).__name__}: the state_dict has {h} heads of {d} channels "
            f"(GATv2Conv(..., {d}, heads={h})); this layer has {layer.heads} of "
            f"{layer.head_channels}: out_channels is the whole output width here, so build "
            f"GraphAttention({layer.in_channels}, {width}, heads={h}"
            f"{'' if layer.concat else ', concat=False'}), or use GraphAttention.from_pyg")


def _regular_degree(edge_index: Tensor, num_targets: int) -> int | None:
    """``K`` when ``edge_index`` holds ``K`` edges into each of the ``num_targets`` targets,
    target after target (``edge_index[1] == [0]*K + [1]*K + ...``: the layout of
    :func:`pcattn.ops.neighbors_to_edge_index` of a kNN without padding); else ``None``.
    Under ``torch.compile`` and on ``meta`` the targets cannot be read: ``None`` (scatter)."""
    e = edge_index.shape[1]
    if (num_targets == 0 or e == 0 or e % num_targets or torch.compiler.is_compiling()
            or edge_index.device.type == "meta"):
        return None
    k = e // num_targets
    want = torch.arange(num_targets, device=edge_index.device).repeat_interleave(k)
    return k if torch.equal(edge_index[1], want) else None
