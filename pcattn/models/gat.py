"""Graph attention networks on point clouds and meshes (GATv2 layers, Brody et al. 2022).

The graph is the input's own ``data.edge_index`` when it has one (a mesh's edges, a
molecule's bonds), else each point's ``k`` nearest neighbours. Where the nodes have
positions, the relative position ``p_j - p_i`` of each edge is an edge feature of the
attention scores, so the layers see geometry and not only the features.
"""

from __future__ import annotations

import torch
from torch import Tensor, nn
from torch_geometric.utils import add_self_loops, remove_self_loops

from pcattn.model_configs.gat import GraphAttentionConfig
from pcattn.models.base import Classifier, Segmenter
from pcattn.models.inputs import batch_of, equal_clouds, num_clouds, point_features
from pcattn.models.renamed import accept_old_prefix
from pcattn.nn import (
    ClassificationHead,
    GraphAttentionBlock,
    PointEmbedding,
    SegmentationHead,
    global_max_pool,
    global_mean_pool,
)
from pcattn.nn.attention_map import LayerAttention
from pcattn.ops.batching import neighbors_to_edge_index
from pcattn.ops.knn import knn


class GraphAttentionEncoder(nn.Module):
    """Embedding and graph attention blocks on the input's graph (or a kNN graph).

    ``forward`` returns the output of every block and the list of ``LayerAttention`` (every
    map is over the input nodes, so ``query_index = source_index = arange(M)``).

    Shape:
        data.pos: [M, 3], data.x: [M, F] or None, data.edge_index: [2, E] or None
        -> list of [M, C_l]
    """

    def __init__(self, cfg: GraphAttentionConfig) -> None:
        super().__init__()
        self.config = cfg
        self.embed = PointEmbedding(3 + cfg.feature_channels, cfg.channels[0])
        widths = (cfg.channels[0],) + cfg.channels
        self.blocks = nn.ModuleList(
            GraphAttentionBlock(widths[i], widths[i + 1], heads=cfg.heads,
                                edge_dim=3 if cfg.edge_features else None,
                                dropout=cfg.attn_dropout)
            for i in range(len(cfg.channels)))

    def graph(self, data) -> tuple[Tensor, Tensor | None]:
        """``edge_index [2, E]`` (source, target) and the edge features ``[E, 3]``."""
        pos = data.pos
        edge_index = getattr(data, "edge_index", None)
        b = equal_clouds(data)
        if edge_index is None and b is None:
            edge_index = neighbors_to_edge_index(knn(pos, self.config.k, batch_of(data)))
        elif edge_index is None:
            # clouds of N points: every row holds min(k, N) neighbours, then -1s (no mask)
            idx = knn(pos, self.config.k, batch_of(data), equal_clouds=b)
            idx = idx[:, :min(idx.shape[1], pos.shape[0] // b)]  # [M, K']
            centre = torch.arange(idx.shape[0], device=idx.device)[:, None].expand_as(idx)
            edge_index = torch.stack([idx.reshape(-1), centre.reshape(-1)])  # [2, M K']
        elif self.config.self_loops:
            edge_index, _ = remove_self_loops(edge_index.long())
            edge_index, _ = add_self_loops(edge_index, num_nodes=pos.shape[0])
        edge_attr = pos[edge_index[0]] - pos[edge_index[1]] if self.config.edge_features else None
        return edge_index, edge_attr  # [2, E], [E, 3]

    def forward(self, data, return_attention: bool = False
                ) -> tuple[list[Tensor], list[LayerAttention]]:
        feats = point_features(data, self.config.feature_channels)  # [M, 3 + F]
        edge_index, edge_attr = self.graph(data)
        x = self.embed(feats)  # [M, C0]
        nodes = torch.arange(x.shape[0], device=x.device)  # [M]
        outs, maps = [], []
        for i, block in enumerate(self.blocks):
            if return_attention:
                x, amap = block(x, edge_index, edge_attr=edge_attr, return_attention=True)
                maps.append(LayerAttention(f"blocks.{i}", amap, nodes, nodes))
            else:
                x = block(x, edge_index, edge_attr=edge_attr)  # [M, C_i]
            outs.append(x)
        return outs, maps


class GraphAttentionCls(Classifier):
    """Graph attention classifier: the blocks, max and mean pooling of the last block's
    nodes (concatenated), an MLP head.

    Shape:
        data.pos: [M, 3], data.x: [M, F] or None, data.batch: [M], data.edge_index: [2, E]
        or None -> logits [B, num_classes]
    """

    def __init__(self, config: GraphAttentionConfig) -> None:
        super().__init__()
        self.config = cfg = config
        self.encoder = GraphAttentionEncoder(cfg)
        accept_old_prefix(self, "backbone.", "encoder.")
        self.head = ClassificationHead(2 * cfg.channels[-1], cfg.num_classes,
                                       hidden_channels=cfg.head_hidden, dropout=cfg.dropout)

    def forward_features(self, data, return_attention: bool = False) -> dict:
        """``{"pooled": [B, 2 C], "blocks": [[M, C_l], ...]}`` and with
        ``return_attention=True`` ``"attention"``: one graph map per block."""
        outs, maps = self.encoder(data, return_attention)
        batch, b = batch_of(data), num_clouds(data)
        pooled = torch.cat([global_max_pool(outs[-1], batch, num_clouds=b),
                            global_mean_pool(outs[-1], batch, num_clouds=b)], dim=-1)  # [B, 2C]
        out = {"pooled": pooled, "blocks": outs}
        if return_attention:
            out["attention"] = maps
        return out


class GraphAttentionSeg(Segmenter):
    """Graph attention part segmenter: every block's output and the cloud's max-pooled last
    block, concatenated per node (as DGCNN's segmentation network), then a per-node head
    with the category one-hot.

    Shape:
        data.pos: [M, 3], data.x: [M, F] or None, data.batch: [M], data.category: [B]
        -> logits [M, num_classes]
    """

    def __init__(self, config: GraphAttentionConfig) -> None:
        super().__init__()
        self.config = cfg = config
        self.encoder = GraphAttentionEncoder(cfg)
        accept_old_prefix(self, "backbone.", "encoder.")
        self.head = SegmentationHead(sum(cfg.channels) + cfg.channels[-1], cfg.num_classes,
                                     num_categories=cfg.num_categories or None,
                                     hidden_channels=cfg.head_hidden, dropout=cfg.dropout)

    def forward_features(self, data, return_attention: bool = False) -> dict:
        """``{"point": [M, sum C + C_last], "blocks": [...]}`` and with
        ``return_attention=True`` ``"attention"``: one graph map per block."""
        outs, maps = self.encoder(data, return_attention)
        batch = batch_of(data)
        glob = global_max_pool(outs[-1], batch, num_clouds=num_clouds(data))[batch]  # [M, C_last]
        out = {"point": torch.cat(outs + [glob], dim=-1), "blocks": outs}
        if return_attention:
            out["attention"] = maps
        return out
