"""Importable blocks: embeddings, attention layers and the residual blocks around them,
pooling, transitions and heads."""

from pcattn.nn.anchor_attention import AnchorAttention
from pcattn.nn.attention_map import AttentionMap, LayerAttention
from pcattn.nn.attention_pool import AttentionPool
from pcattn.nn.cluster_attention import ClusterAttention
from pcattn.nn.channel_attention import EfficientChannelAttention, SqueezeExcitation
from pcattn.nn.distillation import activation_map, attention_distillation_loss
from pcattn.nn.embedding import NeighborEmbedding, PointEmbedding
from pcattn.nn.global_attention import GlobalSelfAttention
from pcattn.nn.global_tokens import GlobalTokens
from pcattn.nn.graph_attention import GraphAttention
from pcattn.nn.grouped_vector_attention import GroupedVectorAttention
from pcattn.nn.head import ClassificationHead, SegmentationHead
from pcattn.nn.induced_attention import InducedSetAttention
from pcattn.nn.linear_attention import LinearAttention
from pcattn.nn.local_attention import LocalSelfAttention
from pcattn.nn.mlp import mlp
from pcattn.nn.nadaraya_watson import NadarayaWatsonPool
from pcattn.nn.nadaraya_watson import NadarayaWatsonLayer
from pcattn.nn.offset_attention import OffsetAttention
from pcattn.nn.point_transformer import PointTransformerLayer
from pcattn.nn.pool import global_max_pool, global_mean_pool
from pcattn.nn.positional_encoding import (
    FourierPositionalEncoding,
    LearnedPositionalEncoding,
    RelativePositionalEncoding,
)
from pcattn.nn.residual_blocks import (
    GraphAttentionBlock,
    NadarayaWatsonBlock,
    PointTransformerBlock,
    PTv2Block,
    PTv3Block,
)
from pcattn.nn.serialized_attention import SerializedAttention
from pcattn.nn.sinkhorn_attention import SinkhornAttention
from pcattn.nn.tnet import TNet, apply_transform, orthogonality_loss
from pcattn.nn.transition import TransitionDown, TransitionUp
from pcattn.ops.softmax import masked_softmax, segment_softmax

__all__ = [
    "AnchorAttention",
    "AttentionMap",
    "AttentionPool",
    "ClassificationHead",
    "ClusterAttention",
    "EfficientChannelAttention",
    "FourierPositionalEncoding",
    "GlobalSelfAttention",
    "GlobalTokens",
    "GraphAttention",
    "GraphAttentionBlock",
    "GroupedVectorAttention",
    "InducedSetAttention",
    "LayerAttention",
    "LearnedPositionalEncoding",
    "LinearAttention",
    "LocalSelfAttention",
    "NadarayaWatsonBlock",
    "NadarayaWatsonLayer",
    "NadarayaWatsonPool",
    "NeighborEmbedding",
    "OffsetAttention",
    "PointEmbedding",
    "PointTransformerBlock",
    "PointTransformerLayer",
    "PTv2Block",
    "PTv3Block",
    "RelativePositionalEncoding",
    "SegmentationHead",
    "SerializedAttention",
    "SinkhornAttention",
    "SqueezeExcitation",
    "TNet",
    "TransitionDown",
    "TransitionUp",
    "activation_map",
    "apply_transform",
    "attention_distillation_loss",
    "global_max_pool",
    "global_mean_pool",
    "masked_softmax",
    "mlp",
    "orthogonality_loss",
    "segment_softmax",
]
