"""Geometry on tensors: neighbourhoods, sampling, gathering, interpolation, layouts."""

from pcattn.ops.batching import (
    edge_index_to_neighbors,
    neighbors_to_edge_index,
    pack,
    unpack,
)
from pcattn.ops.gather import gather
from pcattn.ops.interpolate import interpolate
from pcattn.ops.knn import ball_query, knn, knn_with_distance
from pcattn.ops.sampling import farthest_point_sample

__all__ = [
    "ball_query",
    "edge_index_to_neighbors",
    "farthest_point_sample",
    "gather",
    "interpolate",
    "knn",
    "knn_with_distance",
    "neighbors_to_edge_index",
    "pack",
    "unpack",
]
