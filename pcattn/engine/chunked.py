"""Segmentation of clouds too large for one forward: overlapping ball crops, every point
labelled by the crop whose centre is nearest to it."""

from __future__ import annotations

import math

import torch
from torch import Tensor, nn
from torch_geometric.data import Batch, Data


@torch.no_grad()
def predict_in_chunks(model: nn.Module, data, chunk_points: int) -> Tensor:
    """Per-point logits of a segmenter, each cloud above ``chunk_points`` points in crops.

    For such a cloud: take the first point not yet covered (in Hilbert order, so the result
    follows a permutation of the points), run ``model`` on its ``chunk_points`` nearest
    points, centred in x and y as training crops of scenes are, and repeat until every
    point lies in a crop; each point keeps the logits of the crop whose centre is nearest
    to it (the crop that sees most around it). Smaller clouds run whole.

    Shape:
        data.pos: [M, 3] (and the model's other inputs), data.batch: [M] -> [M, num_classes]
    """
    clouds = data.to_data_list() if isinstance(data, Batch) else [data]
    if max(d.num_nodes for d in clouds) <= chunk_points:
        return model(data)
    return torch.cat([_cloud(model, d, chunk_points) for d in clouds])


def _cloud(model: nn.Module, data: Data, chunk_points: int) -> Tensor:
    from pcattn.ops import serialize

    n, pos = data.num_nodes, data.pos
    if n <= chunk_points:
        return model(Batch.from_data_list([data]))
    order = serialize(pos, orders="hilbert").order[0]  # [N]
    nearest = pos.new_full((n,), math.inf)  # distance to the centre of the crop kept
    covered = torch.zeros(n, dtype=torch.bool, device=pos.device)
    logits = None
    while not bool(covered.all()):
        centre = order[int((~covered[order]).nonzero()[0])]
        dist = (pos - pos[centre]).norm(dim=1)  # [N]
        idx = torch.topk(dist, chunk_points, largest=False).indices.sort().values  # [K]
        out = model(Batch.from_data_list([_crop(data, idx)]))  # [K, classes]
        logits = out.new_zeros(n, out.shape[1]) if logits is None else logits
        better = dist[idx] < nearest[idx]
        logits[idx[better]] = out[better]
        nearest[idx[better]] = dist[idx][better]
        covered[idx] = True
    return logits


def _crop(data: Data, idx: Tensor) -> Data:
    out = Data()
    for key, value in data.items():
        out[key] = value[idx] if data.is_node_attr(key) else value
    lo, hi = out.pos.amin(0), out.pos.amax(0)
    out.pos = out.pos - torch.cat([(lo[:2] + hi[:2]) / 2, lo.new_zeros(1)])
    return out
