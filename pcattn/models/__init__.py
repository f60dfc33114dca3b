"""Whole networks and the registry. Model modules are imported here, explicitly."""

from pcattn.models import point_transformer  # noqa: F401  (registers its models)
from pcattn.models import point_transformer_seg  # noqa: F401
from pcattn.models import nadaraya_watson  # noqa: F401
from pcattn.models import gat  # noqa: F401
from pcattn.models import pct, ptv2, ptv3  # noqa: F401
from pcattn.models import pointnet  # noqa: F401
from pcattn.models.pct import PCTCls, PCTConfig, PCTSeg
from pcattn.models.pointnet import PointNetCls, PointNetConfig, PointNetSeg, PointNetSegConfig
from pcattn.models.point_transformer import PointTransformerCls, PointTransformerConfig
from pcattn.models.point_transformer_seg import PointTransformerSeg, PointTransformerSegConfig
from pcattn.models.ptv2 import PTv2Cls, PTv2Config, PTv2Seg
from pcattn.models.ptv3 import PTv3Cls, PTv3Config, PTv3Seg
from pcattn.models.registry import create_model, list_models, register_model

__all__ = [
    "PCTCls",
    "PCTConfig",
    "PCTSeg",
    "PointNetCls",
    "PointNetConfig",
    "PointNetSeg",
    "PointNetSegConfig",
    "PointTransformerCls",
    "PointTransformerConfig",
    "PointTransformerSeg",
    "PointTransformerSegConfig",
    "PTv2Cls",
    "PTv2Config",
    "PTv2Seg",
    "PTv3Cls",
    "PTv3Config",
    "PTv3Seg",
    "create_model",
    "list_models",
    "register_model",
]
