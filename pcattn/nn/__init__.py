"""Importable blocks: embeddings, attention layers, pooling, transitions and heads."""

from pcattn.nn.embedding import PointEmbedding
from pcattn.nn.head import ClassificationHead
from pcattn.nn.mlp import mlp
from pcattn.nn.point_transformer import (
    PointTransformerBlock,
    PointTransformerLayer,
    masked_softmax,
)
from pcattn.nn.pool import global_max_pool, global_mean_pool
from pcattn.nn.transition import TransitionDown

__all__ = [
    "ClassificationHead",
    "PointEmbedding",
    "PointTransformerBlock",
    "PointTransformerLayer",
    "TransitionDown",
    "global_max_pool",
    "global_mean_pool",
    "masked_softmax",
    "mlp",
]
