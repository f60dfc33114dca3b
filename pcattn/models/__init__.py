"""Whole networks and the registry. Model modules are imported here, explicitly."""

from pcattn.models import point_transformer  # noqa: F401  (registers its models)
from pcattn.models import point_transformer_seg  # noqa: F401
from pcattn.models import nadaraya_watson  # noqa: F401
from pcattn.models import gat  # noqa: F401
from pcattn.models.point_transformer import PointTransformerCls, PointTransformerConfig
from pcattn.models.point_transformer_seg import PointTransformerSeg, PointTransformerSegConfig
from pcattn.models.registry import create_model, list_models, register_model

__all__ = [
    "PointTransformerCls",
    "PointTransformerConfig",
    "PointTransformerSeg",
    "PointTransformerSegConfig",
    "create_model",
    "list_models",
    "register_model",
]
