"""Whole networks and the registry. Model modules are imported here, explicitly."""

from pcattn.models import pct, point_transformer, ptv2  # noqa: F401  (register models)
from pcattn.models.pct import PCTCls, PCTConfig, PCTSeg
from pcattn.models.point_transformer import PointTransformerCls, PointTransformerConfig
from pcattn.models.ptv2 import PTv2Cls, PTv2Config, PTv2Seg
from pcattn.models.registry import create_model, list_models, register_model

__all__ = [
    "PCTCls",
    "PCTConfig",
    "PCTSeg",
    "PointTransformerCls",
    "PointTransformerConfig",
    "PTv2Cls",
    "PTv2Config",
    "PTv2Seg",
    "create_model",
    "list_models",
    "register_model",
]
