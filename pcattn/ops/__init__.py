"""Geometry on tensors: neighbourhoods, sampling, gathering, interpolation, layouts,
serialization along space-filling curves."""

from pcattn.ops.backend import has_open3d
from pcattn.ops.batching import (
    edge_index_to_neighbors,
    neighbors_to_edge_index,
    pack,
    unpack,
)
from pcattn.ops.gather import gather
from pcattn.ops.interpolate import interpolate, interpolation_weights
from pcattn.ops.knn import ball_query, knn, knn_with_distance
from pcattn.ops.sampling import farthest_point_sample
from pcattn.ops.serialize import (
    ORDERS,
    Serialization,
    encode,
    grid_coords,
    patches,
    point_spacing,
    serialize,
)
from pcattn.ops.serialize_neighbors import grid_neighbors
from pcattn.ops.softmax import masked_softmax, segment_softmax

__all__ = [
    "ORDERS",
    "Serialization",
    "ball_query",
    "edge_index_to_neighbors",
    "encode",
    "farthest_point_sample",
    "gather",
    "grid_coords",
    "grid_neighbors",
    "has_open3d",
    "interpolate",
    "interpolation_weights",
    "knn",
    "knn_with_distance",
    "masked_softmax",
    "neighbors_to_edge_index",
    "pack",
    "patches",
    "point_spacing",
    "segment_softmax",
    "serialize",
    "unpack",
]
