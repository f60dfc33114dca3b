"""Whole networks and the registry. The built-in models are the rows of
:data:`pcattn.model_configs.MODELS`; a model's module is imported when it is first built
(``create_model``) or one of its names below is first used."""

from pcattn._lazy import lazy_exports
from pcattn.models.registry import create_model, list_models, register_model

_EXPORTS = {
    "pcattn.model_configs": ("PCTConfig", "PointNetConfig", "PointNetSegConfig",
                             "PointTransformerConfig", "PointTransformerSegConfig",
                             "PTv2Config", "PTv3Config"),
    "pcattn.models.pct": ("PCTCls", "PCTSeg"),
    "pcattn.models.pointnet": ("PointNetCls", "PointNetSeg"),
    "pcattn.models.point_transformer": ("PointTransformerCls",),
    "pcattn.models.point_transformer_seg": ("PointTransformerSeg",),
    "pcattn.models.ptv2": ("PTv2Cls", "PTv2Seg"),
    "pcattn.models.ptv3": ("PTv3Cls", "PTv3Seg"),
}

__getattr__, __dir__, _lazy = lazy_exports(__name__, _EXPORTS)
__all__ = _lazy + ["create_model", "list_models", "register_model"]
