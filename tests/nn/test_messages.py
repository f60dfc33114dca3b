"""The exact error of each argument check of the blocks: block, argument, expected and
given shape (test_checks.py checks every block for the parts of a message; here the whole
text)."""

from __future__ import annotations

import pytest
import torch

from pcattn.nn import (
    AttentionPool,
    ClassificationHead,
    EfficientChannelAttention,
    FourierPositionalEncoding,
    GlobalSelfAttention,
    GlobalTokens,
    GraphAttention,
    GroupedVectorAttention,
    LearnedPositionalEncoding,
    LinearAttention,
    LocalSelfAttention,
    NadarayaWatsonLayer,
    NadarayaWatsonPool,
    NeighborEmbedding,
    OffsetAttention,
    PointEmbedding,
    PointTransformerBlock,
    PointTransformerLayer,
    RelativePositionalEncoding,
    SegmentationHead,
    SqueezeExcitation,
    TNet,
    TransitionDown,
    TransitionUp,
    global_max_pool,
    global_mean_pool,
)
from pcattn.nn.positional_encoding import apply_pos_encoding

LONG = torch.long


def _int(block, arg, got=0):
    return f"{block}: {arg} must be an integer >= 1, got {got}"


CONSTRUCTORS = [
    (lambda: PointEmbedding(0, 8), _int("PointEmbedding", "in_channels")),
    (lambda: PointEmbedding(3, 0), _int("PointEmbedding", "out_channels")),
    (lambda: PointEmbedding(3, 8, hidden_channels=0), _int("PointEmbedding", "hidden_channels")),
    (lambda: NeighborEmbedding(0, 8), _int("NeighborEmbedding", "in_channels")),
    (lambda: NeighborEmbedding(3, 0), _int("NeighborEmbedding", "out_channels")),
    (lambda: NeighborEmbedding(3, 8, hidden_channels=0),
     _int("NeighborEmbedding", "hidden_channels")),
    (lambda: NeighborEmbedding(3, 8, k=0), _int("NeighborEmbedding", "k")),
    (lambda: GraphAttention(0, 8), _int("GraphAttention", "in_channels")),
    (lambda: GraphAttention((0, 4), 8), _int("GraphAttention", "in_channels[0]")),
    (lambda: GraphAttention((4, 0), 8), _int("GraphAttention", "in_channels[1]")),
    (lambda: GraphAttention(4, 0), _int("GraphAttention", "out_channels")),
    (lambda: GraphAttention(4, 8, heads=0), _int("GraphAttention", "heads")),
    (lambda: GraphAttention(4, 8, edge_dim=0), _int("GraphAttention", "edge_dim")),
    (lambda: GraphAttention((4, 6), 8, share_weights=True),
     "GraphAttention: share_weights=True needs equal source and target sizes, got "
     "in_channels=(4, 6)"),
    (lambda: ClassificationHead(0, 3), _int("ClassificationHead", "in_channels")),
    (lambda: ClassificationHead(4, 0), _int("ClassificationHead", "num_classes")),
    (lambda: ClassificationHead(4, 3, hidden_channels=(8, 0)),
     _int("ClassificationHead", "hidden_channels[1]")),
    (lambda: SegmentationHead(0, 3), _int("SegmentationHead", "in_channels")),
    (lambda: SegmentationHead(4, 0), _int("SegmentationHead", "num_classes")),
    (lambda: SegmentationHead(4, 3, num_categories=0), _int("SegmentationHead", "num_categories")),
    (lambda: SegmentationHead(4, 3, hidden_channels=(0,)),
     _int("SegmentationHead", "hidden_channels[0]")),
    (lambda: NadarayaWatsonPool(sigma=0.0), "NadarayaWatsonPool: sigma must be > 0, got 0.0"),
    (lambda: NadarayaWatsonLayer(sigma=-1.0), "NadarayaWatsonLayer: sigma must be > 0, got -1.0"),
    (lambda: TNet(0), _int("TNet", "in_channels")),
    (lambda: TNet(3, dim=0), _int("TNet", "dim")),
    (lambda: TNet(3, point_channels=(0,)), _int("TNet", "point_channels[0]")),
    (lambda: TNet(3, global_channels=(4, 0)), _int("TNet", "global_channels[1]")),
    (lambda: TNet(3, point_channels=()),
     "TNet: point_channels and global_channels need one width each at least, got () and "
     "(512, 256)"),
    (lambda: TNet(3, global_channels=()),
     "TNet: point_channels and global_channels need one width each at least, got "
     "(64, 128, 1024) and ()"),
    (lambda: TransitionDown(0, 8), _int("TransitionDown", "in_channels")),
    (lambda: TransitionDown(3, 0), _int("TransitionDown", "out_channels")),
    (lambda: TransitionDown(3, 8, k=0), _int("TransitionDown", "k")),
    (lambda: TransitionUp(0, 8), _int("TransitionUp", "in_channels")),
    (lambda: TransitionUp(8, 0), _int("TransitionUp", "out_channels")),
    (lambda: TransitionUp(8, 4, skip_channels=0), _int("TransitionUp", "skip_channels")),
    (lambda: TransitionUp(8, 4, k=0), _int("TransitionUp", "k")),
    (lambda: AttentionPool(0), _int("AttentionPool", "in_channels")),
    (lambda: AttentionPool(4, 0), _int("AttentionPool", "out_channels")),
    (lambda: AttentionPool(4, heads=0), _int("AttentionPool", "heads")),
    (lambda: SqueezeExcitation(0), _int("SqueezeExcitation", "in_channels")),
    (lambda: SqueezeExcitation(8, reduction=0), _int("SqueezeExcitation", "reduction")),
    (lambda: SqueezeExcitation(8, pool="sum"),
     "SqueezeExcitation: pool must be one of ['max', 'mean'], got 'sum'"),
    (lambda: EfficientChannelAttention(0), _int("EfficientChannelAttention", "in_channels")),
    (lambda: EfficientChannelAttention(8, kernel_size=0),
     _int("EfficientChannelAttention", "kernel_size")),
    (lambda: EfficientChannelAttention(8, pool="sum"),
     "EfficientChannelAttention: pool must be one of ['max', 'mean'], got 'sum'"),
    (lambda: GlobalSelfAttention(0), _int("GlobalSelfAttention", "in_channels")),
    (lambda: GlobalSelfAttention(8, 0), _int("GlobalSelfAttention", "out_channels")),
    (lambda: GlobalSelfAttention(8, heads=0), _int("GlobalSelfAttention", "heads")),
    (lambda: GlobalTokens(0), _int("GlobalTokens", "in_channels")),
    (lambda: GlobalTokens(8, num_tokens=0), _int("GlobalTokens", "num_tokens")),
    (lambda: GlobalTokens(8, heads=0), _int("GlobalTokens", "heads")),
    (lambda: GroupedVectorAttention(0, 8), _int("GroupedVectorAttention", "in_channels")),
    (lambda: GroupedVectorAttention(8, 0), _int("GroupedVectorAttention", "out_channels")),
    (lambda: GroupedVectorAttention(8, 8, heads=0), _int("GroupedVectorAttention", "heads")),
    (lambda: LinearAttention(0), _int("LinearAttention", "in_channels")),
    (lambda: LinearAttention(8, 0), _int("LinearAttention", "out_channels")),
    (lambda: LinearAttention(8, heads=0), _int("LinearAttention", "heads")),
    (lambda: LinearAttention(8, 6, heads=4),
     "LinearAttention: out_channels=6 is not divisible by heads=4"),
    (lambda: OffsetAttention(0), _int("OffsetAttention", "in_channels")),
    (lambda: OffsetAttention(8, qk_channels=0), _int("OffsetAttention", "qk_channels")),
    (lambda: OffsetAttention(8, chunk_size=0), _int("OffsetAttention", "chunk_size")),
    (lambda: PointTransformerLayer(8, 0), _int("PointTransformerLayer", "out_channels")),
    (lambda: PointTransformerBlock(0), _int("PointTransformerBlock", "in_channels")),
]


@pytest.mark.parametrize("make, message", CONSTRUCTORS)
def test_constructor_messages(make, message):
    with pytest.raises(ValueError) as err:
        make()
    assert str(err.value) == message


def _emb(x, pos, batch=None, in_channels=3):
    return NeighborEmbedding(in_channels, 8, hidden_channels=4, k=2)(x, pos, batch)


def _gat(x, edge_index, **kw):
    return GraphAttention((4, 6), 8, heads=2, **kw)(x, edge_index)


def _edge_attr(edge_attr):
    layer = GraphAttention(4, 4, heads=2, edge_dim=3)
    return layer(torch.randn(3, 4), torch.tensor([[0, 1], [1, 2]]), edge_attr=edge_attr)


def _seg(category, num_categories=3):
    head = SegmentationHead(4, 5, num_categories=num_categories)
    return head(torch.randn(6, 4), torch.tensor([0, 0, 0, 1, 1, 1]), category=category)


def _nw(query=None, query_batch=None, batch=torch.tensor([0, 0, 0, 1, 1, 1])):
    return NadarayaWatsonPool()(torch.randn(6, 2), torch.randn(6, 3), batch, query=query,
                                query_batch=query_batch)


def _up(x=(4, 8), pos=(4, 3), batch=None, x_skip=(6, 8), query=(6, 3), query_batch=None):
    return TransitionUp(8, 4, skip_channels=8)(
        torch.randn(*x), torch.randn(*pos), batch, x_skip=torch.randn(*x_skip),
        query=torch.randn(*query), query_batch=query_batch)


FORWARDS = [
    (lambda: PointEmbedding(3, 8)(torch.randn(5, 4)),
     "PointEmbedding: x must be [5, 3] (in_channels=3), got [5, 4]"),
    (lambda: PointEmbedding(3, 8)(torch.randn(2, 5, 3)),
     "PointEmbedding: x must be [M, 3] (in_channels=3), got [2, 5, 3]"),
    (lambda: _emb(None, torch.randn(5, 2)), "NeighborEmbedding: pos must be [5, 3], got [5, 2]"),
    (lambda: _emb(None, torch.randn(5)), "NeighborEmbedding: pos must be [M, 3], got [5]"),
    (lambda: _emb(None, torch.randn(5, 3), in_channels=4),
     "NeighborEmbedding: x is None, so pos [M, 3] is embedded, but in_channels=4; pass x "
     "[M, 4]"),
    (lambda: _emb(None, torch.randn(5, 3), torch.zeros(4, dtype=LONG)),
     "NeighborEmbedding: batch must be [5] (one row per row of pos), got [4]"),
    (lambda: _gat((torch.randn(3, 5), torch.randn(2, 6)), torch.tensor([[0], [1]])),
     "GraphAttention: x[0] must be [3, 4] (in_channels=4), got [3, 5]"),
    (lambda: _gat((torch.randn(3, 4), torch.randn(2, 7)), torch.tensor([[0], [1]])),
     "GraphAttention: x[1] must be [2, 6] (in_channels=6), got [2, 7]"),
    (lambda: _gat((torch.randn(3, 4), torch.randn(2, 6)), torch.zeros(4, dtype=LONG)),
     "GraphAttention: edge_index must be [2, E], got [4]"),
    (lambda: _edge_attr(torch.randn(3, 3)),
     "GraphAttention: edge_attr must be [2, 3] (one row per row of edge_index's columns), "
     "got [3, 3]"),
    (lambda: ClassificationHead(4, 3)(torch.randn(2, 5)),
     "ClassificationHead: x must be [2, 4] (in_channels=4), got [2, 5]"),
    (lambda: ClassificationHead(4, 3)(torch.randn(4)),
     "ClassificationHead: x must be [B, 4] (in_channels=4), got [4]"),
    (lambda: _seg(torch.zeros(2, 1, dtype=LONG)), "SegmentationHead: category must be [B], got "
     "[2, 1]"),
    (lambda: _seg(None), "SegmentationHead: this head was built with num_categories=3; pass "
     "category [B]"),
    (lambda: _seg(torch.zeros(2, dtype=LONG), num_categories=None),
     "SegmentationHead: category given but the head was built without num_categories"),
    (lambda: _nw(batch=torch.zeros(5, dtype=LONG)),
     "NadarayaWatsonPool: batch must be [6] (one row per row of x), got [5]"),
    (lambda: _nw(query=torch.randn(2, 2), query_batch=torch.tensor([0, 1])),
     "NadarayaWatsonPool: query must be [2, 3] (xyz=3), got [2, 2]"),
    (lambda: _nw(query=torch.randn(2, 3), query_batch=torch.tensor([0, 1, 1])),
     "NadarayaWatsonPool: query_batch must be [2] (one row per row of query), got [3]"),
    (lambda: _nw(query_batch=torch.tensor([0, 1])),
     "NadarayaWatsonPool: query_batch given without query"),
    (lambda: _nw(query=torch.randn(2, 3)),
     "NadarayaWatsonPool: query_batch is needed with query when batch has several clouds"),
    (lambda: TransitionDown(3, 8, k=2)(torch.randn(5, 3), torch.randn(5, 3),
                                       torch.zeros(4, dtype=LONG)),
     "TransitionDown: batch must be [5] (one row per row of x), got [4]"),
    (lambda: _up(x=(4, 7)), "TransitionUp: x must be [4, 8] (in_channels=8), got [4, 7]"),
    (lambda: _up(pos=(5, 3)), "TransitionUp: pos must be [4, 3] (one row per row of x), got "
     "[5, 3]"),
    (lambda: _up(batch=torch.zeros(3, dtype=LONG)),
     "TransitionUp: batch must be [4] (one row per row of x), got [3]"),
    (lambda: _up(x_skip=(6, 9)),
     "TransitionUp: x_skip must be [6, 8] (skip_channels=8), got [6, 9]"),
    (lambda: _up(query=(5, 3)),
     "TransitionUp: query must be [6, 3] (one row per row of x_skip), got [5, 3]"),
    (lambda: _up(query_batch=torch.zeros(5, dtype=LONG)),
     "TransitionUp: query_batch must be [6] (one row per row of x_skip), got [5]"),
]

FORWARDS += [
    (lambda: GlobalTokens(8, num_tokens=2, heads=2)(torch.randn(5, 8), idx=torch.zeros(
        4, 2, dtype=LONG)), "GlobalTokens: idx must be [5, 2] (one row per row of x), got [4, 2]"),
    (lambda: GlobalTokens(8, num_tokens=2, heads=2).update_tokens(torch.randn(5, 7)),
     "GlobalTokens: x must be [5, 8] (in_channels=8), got [5, 7]"),
    (lambda: GlobalTokens(8, num_tokens=2, heads=2).update_tokens(
        torch.randn(5, 8), torch.zeros(4, dtype=LONG)),
     "GlobalTokens: batch must be [5] (one row per row of x), got [4]"),
    (lambda: global_max_pool(torch.randn(5)), "global_max_pool: x must be [M, C], got [5]"),
    (lambda: global_max_pool(torch.randn(5, 2), torch.zeros(4, dtype=LONG)),
     "global_max_pool: batch must be [5] (one row per row of x), got [4]"),
    (lambda: global_mean_pool(torch.randn(5)), "global_mean_pool: x must be [M, C], got [5]"),
    (lambda: global_mean_pool(torch.randn(5, 2), torch.zeros(4, dtype=LONG)),
     "global_mean_pool: batch must be [5] (one row per row of x), got [4]"),
]



def _pe(name):
    return f"{name} was built with pos_encoding=...; pass pos=[M, 3] to forward"


def _fourier():
    return FourierPositionalEncoding(2, out_channels=8)


FORWARDS += [
    (lambda: GlobalSelfAttention(8, heads=2, pos_encoding=_fourier())(torch.randn(5, 8)),
     _pe("GlobalSelfAttention")),
    (lambda: LinearAttention(8, heads=2, pos_encoding=_fourier())(torch.randn(5, 8)),
     _pe("LinearAttention")),
    (lambda: OffsetAttention(8, pos_encoding=_fourier())(torch.randn(5, 8)),
     _pe("OffsetAttention")),
    (lambda: GlobalTokens(8, num_tokens=2, heads=2, pos_encoding=_fourier())(
        torch.randn(5, 8), idx=torch.zeros(5, 2, dtype=LONG)), _pe("GlobalTokens")),
    (lambda: GlobalTokens(8, num_tokens=2, heads=2, pos_encoding=_fourier()).update_tokens(
        torch.randn(5, 8)), _pe("GlobalTokens")),
]

TYPE_ERRORS = [
    (lambda: _gat((torch.randn(3, 4), torch.randn(2, 6)), torch.zeros(2, 1)),
     "GraphAttention: edge_index must hold integer indices, got torch.float32; cast it with "
     "edge_index.long()"),
    (lambda: _seg(torch.zeros(2)),
     "SegmentationHead: category must hold integer indices, got torch.float32; cast it with "
     "category.long()"),
]


@pytest.mark.parametrize("call, message", FORWARDS)
def test_forward_messages(call, message):
    with pytest.raises(ValueError) as err:
        call()
    assert str(err.value) == message


@pytest.mark.parametrize("call, message", TYPE_ERRORS)
def test_forward_type_messages(call, message):
    with pytest.raises(TypeError) as err:
        call()
    assert str(err.value) == message


# local self-attention, the positional encodings and the shared checks (pcattn/nn/checks.py)
CONSTRUCTORS_2 = [
    (lambda: LocalSelfAttention(0, 8), _int("LocalSelfAttention", "in_channels")),
    (lambda: LocalSelfAttention(4, 0), _int("LocalSelfAttention", "out_channels")),
    (lambda: LocalSelfAttention(4, 8, heads=0), _int("LocalSelfAttention", "heads")),
    (lambda: LocalSelfAttention(4, 10, heads=4),
     "LocalSelfAttention: out_channels (10) must be divisible by heads (4)"),
    (lambda: FourierPositionalEncoding(0), _int("FourierPositionalEncoding", "num_frequencies")),
    (lambda: FourierPositionalEncoding(2, in_channels=0),
     _int("FourierPositionalEncoding", "in_channels")),
    (lambda: FourierPositionalEncoding(2, out_channels=0),
     _int("FourierPositionalEncoding", "out_channels")),
    (lambda: FourierPositionalEncoding(2, max_frequency=0.0, scale=1.0),
     "FourierPositionalEncoding: max_frequency and scale must be > 0, got 0.0 and 1.0"),
    (lambda: FourierPositionalEncoding(2, scale=0.0),
     "FourierPositionalEncoding: max_frequency and scale must be > 0, got 2.0 and 0.0"),
    (lambda: LearnedPositionalEncoding(0), _int("LearnedPositionalEncoding", "out_channels")),
    (lambda: LearnedPositionalEncoding(8, in_channels=0),
     _int("LearnedPositionalEncoding", "in_channels")),
    (lambda: LearnedPositionalEncoding(8, hidden_channels=0),
     _int("LearnedPositionalEncoding", "hidden_channels")),
    (lambda: RelativePositionalEncoding(0), _int("RelativePositionalEncoding", "out_channels")),
    (lambda: RelativePositionalEncoding(8, in_channels=0),
     _int("RelativePositionalEncoding", "in_channels")),
    (lambda: RelativePositionalEncoding(8, hidden_channels=0),
     _int("RelativePositionalEncoding", "hidden_channels")),
]


@pytest.mark.parametrize("make, message", CONSTRUCTORS_2)
def test_constructor_messages_of_local_attention_and_encodings(make, message):
    with pytest.raises(ValueError) as err:
        make()
    assert str(err.value) == message


def _local(x=(5, 4), pos=(5, 3), idx=None):
    """LocalSelfAttention(4, 8) on 5 nodes; a tuple is the shape of a random tensor."""
    x = torch.randn(*x) if isinstance(x, tuple) else x
    pos = torch.rand(*pos) if isinstance(pos, tuple) else pos
    idx = torch.zeros(5, 3, dtype=LONG) if idx is None else idx
    return LocalSelfAttention(4, 8, heads=2)(x, pos, idx)


def _rel(rel=(5, 3, 3), valid=None):
    return RelativePositionalEncoding(8)(torch.randn(*rel), valid)


FORWARDS += [
    (lambda: _local(idx=torch.zeros(4, 3, dtype=LONG)),
     "LocalSelfAttention: idx must be [5, 3] (one row per row of x), got [4, 3]"),
    (lambda: _local(idx=torch.zeros(5, dtype=LONG)),
     "LocalSelfAttention: idx must be [5, K] (one row per row of x), got [5]"),
    (lambda: FourierPositionalEncoding(2)(torch.randn(3)),
     "FourierPositionalEncoding: pos must be [M, 3] (in_channels=3 coordinates per point), "
     "got [3]"),
    (lambda: FourierPositionalEncoding(2)(torch.randn(4, 7, 2)),
     "FourierPositionalEncoding: pos must be [4, 7, 3] (in_channels=3 coordinates per point), "
     "got [4, 7, 2]"),
    (lambda: LearnedPositionalEncoding(8)(torch.randn(5, 2)),
     "LearnedPositionalEncoding: pos must be [5, 3] (in_channels=3 coordinates per point), "
     "got [5, 2]"),
    (lambda: _rel(rel=(5, 3)),
     "RelativePositionalEncoding: rel must be [M, K, 3] (in_channels=3), got [5, 3]"),
    (lambda: _rel(valid=torch.ones(5, 2, dtype=torch.bool)),
     "RelativePositionalEncoding: valid must be [5, 3] (one flag per neighbour of rel), "
     "got [5, 2]"),
    (lambda: RelativePositionalEncoding.offsets(torch.randn(5), torch.zeros(5, 2, dtype=LONG)),
     "RelativePositionalEncoding.offsets: pos must be [M, 3], got [5]"),
    (lambda: RelativePositionalEncoding.offsets(torch.randn(5, 3),
                                                torch.zeros(4, 2, dtype=LONG)),
     "RelativePositionalEncoding.offsets: idx must be [5, 2] (one row per row of pos), "
     "got [4, 2]"),
    (lambda: apply_pos_encoding(torch.randn(5, 8), None, _fourier()),
     "a block was built with pos_encoding=...; pass pos=[M, 3] to forward"),
    (lambda: GlobalSelfAttention(8, heads=2, pos_encoding=_fourier())(
        torch.randn(5, 8), pos=torch.randn(4, 3)),
     "GlobalSelfAttention: pos must be [5, 3] (one row per row of x), got [4, 3]"),
]

TYPE_ERRORS += [
    (lambda: FourierPositionalEncoding(2, out_channels="8"),
     "FourierPositionalEncoding: out_channels must be an integer >= 1 or None, got '8' (str)"),
    (lambda: ClassificationHead(4, 3, hidden_channels="ab"),
     "ClassificationHead: hidden_channels must be a sequence of integers >= 1, got 'ab' (str)"),
    (lambda: TNet(3, point_channels=64),
     "TNet: point_channels must be a sequence of integers >= 1, got 64 (int)"),
    (lambda: _local(x=[[0.0] * 4] * 5),
     "LocalSelfAttention: x must be a torch.Tensor [M, 4], got list"),
    (lambda: FourierPositionalEncoding(2)([0.0, 0.0, 0.0]),
     "FourierPositionalEncoding: pos must be a torch.Tensor [M, 3], got list"),
    (lambda: _local(pos=torch.zeros(5, 3, dtype=LONG)),
     "LocalSelfAttention: pos must be floating point, got torch.int64; cast it with "
     "pos.float()"),
    (lambda: _local(idx=torch.zeros(5, 3)),
     "LocalSelfAttention: idx must hold integer indices, got torch.float32; cast it with "
     "idx.long()"),
    (lambda: _local(idx=torch.zeros(5, 3, dtype=torch.bool)),
     "LocalSelfAttention: idx must hold integer indices, got torch.bool; cast it with "
     "idx.long()"),
    (lambda: _rel(valid=torch.ones(5, 3)),
     "RelativePositionalEncoding: valid must be a boolean mask, got torch.float32"),
    (lambda: global_max_pool(torch.randn(5, 2), torch.zeros(5)),
     "global_max_pool: batch must hold integer indices, got torch.float32; cast it with "
     "batch.long()"),
]
