"""The config dataclass of every built-in model, importable without torch.

``pcattn train`` checks a run's ``model:`` section against these before it imports any model
code, so a config error is reported in a fraction of a second. The model modules import their
configs from here; ``tests/models/test_catalog.py`` checks this table against the registry.
"""

from __future__ import annotations

import sys

from pcattn.model_configs.gat import GraphAttentionBaseConfig, GraphAttentionConfig
from pcattn.model_configs.nadaraya_watson import NadarayaWatsonBaseConfig, NadarayaWatsonConfig
from pcattn.model_configs.pct import PCTBaseConfig, PCTConfig, PCTSegBaseConfig, PCTSegConfig
from pcattn.model_configs.point_transformer import (
    PointTransformerConfig,
    PointTransformerSegConfig,
)
from pcattn.model_configs.pointnet import PointNetConfig, PointNetSegConfig
from pcattn.model_configs.ptv2 import PTv2BaseConfig, PTv2Config
from pcattn.model_configs.ptv3 import PTv3BaseConfig, PTv3Config

BUILTIN_CONFIGS: dict[str, type] = {
    "gat_cls": GraphAttentionConfig,
    "gat_cls_base": GraphAttentionBaseConfig,
    "gat_seg": GraphAttentionConfig,
    "gat_seg_base": GraphAttentionBaseConfig,
    "nw_cls": NadarayaWatsonConfig,
    "nw_cls_base": NadarayaWatsonBaseConfig,
    "nw_seg": NadarayaWatsonConfig,
    "nw_seg_base": NadarayaWatsonBaseConfig,
    "pct_cls": PCTConfig,
    "pct_cls_base": PCTBaseConfig,
    "pct_seg": PCTSegConfig,
    "pct_seg_base": PCTSegBaseConfig,
    "point_transformer_cls": PointTransformerConfig,
    "point_transformer_seg": PointTransformerSegConfig,
    "pointnet_cls": PointNetConfig,
    "pointnet_seg": PointNetSegConfig,
    "ptv2_cls": PTv2Config,
    "ptv2_cls_base": PTv2BaseConfig,
    "ptv2_seg": PTv2Config,
    "ptv2_seg_base": PTv2BaseConfig,
    "ptv3_cls": PTv3Config,
    "ptv3_cls_base": PTv3BaseConfig,
    "ptv3_seg": PTv3Config,
    "ptv3_seg_base": PTv3BaseConfig,
}



def config_class(name: str) -> type:
    """The config dataclass of model ``name``: from the table above for a built-in model (no
    torch import), else from the registry (a model registered with ``register_model``)."""
    if name in BUILTIN_CONFIGS:
        return BUILTIN_CONFIGS[name]
    if "pcattn.models.registry" not in sys.modules:  # nothing else can have been registered
        raise ValueError(f"unknown model {name!r}; available: {sorted(BUILTIN_CONFIGS)}")
    from pcattn.models.registry import model_config_class

    return model_config_class(name)


__all__ = ["BUILTIN_CONFIGS", "config_class", "GraphAttentionBaseConfig", "GraphAttentionConfig",
           "NadarayaWatsonBaseConfig", "NadarayaWatsonConfig", "PCTBaseConfig", "PCTConfig",
           "PCTSegBaseConfig", "PCTSegConfig", "PTv2BaseConfig", "PTv2Config",
           "PTv3BaseConfig", "PTv3Config",
           "PointNetConfig", "PointNetSegConfig", "PointTransformerConfig",
           "PointTransformerSegConfig"]
