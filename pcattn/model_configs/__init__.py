"""The config dataclass of every built-in model, importable without torch.

``pcattn train`` checks a run's ``model:`` section against these before it imports any model
code, so a config error is reported in a fraction of a second. :data:`MODELS` is the table of
the built-in models (config, class, task, paper); ``pcattn.models.create_model`` imports a
model's module when it is first built. :mod:`pcattn.model_configs.values` checks the values
of any config section (``model:``, ``train:``, ``data:``, or ``create_model`` keywords) and
reads YAML.
"""

from __future__ import annotations

import sys
from dataclasses import dataclass

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

CLS, SEG = "classification", "part_segmentation"
GAT = "Brody et al. 2022, How Attentive are Graph Attention Networks? (GATv2)"
NW = "Nadaraya 1964; Watson 1964 (kernel regression baseline)"
PCT = "Guo et al. 2021, PCT: Point Cloud Transformer"
PN = "Qi et al. 2017, PointNet: Deep Learning on Point Sets for 3D Classification and " \
     "Segmentation"
PT = "Zhao et al. 2021, Point Transformer"
PTV2 = "Wu et al. 2022, Point Transformer V2"
PTV3 = "Wu et al. 2024, Point Transformer V3"


@dataclass(frozen=True)
class ModelEntry:
    """A built-in model: its config dataclass, the class that builds it (``module:Class``,
    imported on first use), what it predicts and the work it follows."""

    config: type
    target: str
    task: str
    paper: str


def _entry(config: type, target: str, task: str, paper: str) -> ModelEntry:
    return ModelEntry(config, f"pcattn.models.{target}", task, paper)


# The only list of the built-in models: ``pcattn models``, the config check, ``create_model``
# and the docs' model table read it. A new model: docs/models.md, "Adding a built-in model".
MODELS: dict[str, ModelEntry] = {
    "gat_cls": _entry(GraphAttentionConfig, "gat:GraphAttentionCls", CLS, GAT),
    "gat_cls_base": _entry(GraphAttentionBaseConfig, "gat:GraphAttentionCls", CLS, GAT),
    "gat_seg": _entry(GraphAttentionConfig, "gat:GraphAttentionSeg", SEG, GAT),
    "gat_seg_base": _entry(GraphAttentionBaseConfig, "gat:GraphAttentionSeg", SEG, GAT),
    "nw_cls": _entry(NadarayaWatsonConfig, "nadaraya_watson:NadarayaWatsonCls", CLS, NW),
    "nw_cls_base": _entry(NadarayaWatsonBaseConfig, "nadaraya_watson:NadarayaWatsonCls", CLS,
                          NW),
    "nw_seg": _entry(NadarayaWatsonConfig, "nadaraya_watson:NadarayaWatsonSeg", SEG, NW),
    "nw_seg_base": _entry(NadarayaWatsonBaseConfig, "nadaraya_watson:NadarayaWatsonSeg", SEG,
                          NW),
    "pct_cls": _entry(PCTConfig, "pct:PCTCls", CLS, PCT),
    "pct_cls_base": _entry(PCTBaseConfig, "pct:PCTCls", CLS, PCT),
    "pct_seg": _entry(PCTSegConfig, "pct:PCTSeg", SEG, PCT),
    "pct_seg_base": _entry(PCTSegBaseConfig, "pct:PCTSeg", SEG, PCT),
    "point_transformer_cls": _entry(PointTransformerConfig,
                                    "point_transformer:PointTransformerCls", CLS, PT),
    "point_transformer_seg": _entry(PointTransformerSegConfig,
                                    "point_transformer_seg:PointTransformerSeg", SEG, PT),
    "pointnet_cls": _entry(PointNetConfig, "pointnet:PointNetCls", CLS, PN),
    "pointnet_seg": _entry(PointNetSegConfig, "pointnet:PointNetSeg", SEG, PN),
    "ptv2_cls": _entry(PTv2Config, "ptv2:PTv2Cls", CLS, PTV2),
    "ptv2_cls_base": _entry(PTv2BaseConfig, "ptv2:PTv2Cls", CLS, PTV2),
    "ptv2_seg": _entry(PTv2Config, "ptv2:PTv2Seg", SEG, PTV2),
    "ptv2_seg_base": _entry(PTv2BaseConfig, "ptv2:PTv2Seg", SEG, PTV2),
    "ptv3_cls": _entry(PTv3Config, "ptv3:PTv3Cls", CLS, PTV3),
    "ptv3_cls_base": _entry(PTv3BaseConfig, "ptv3:PTv3Cls", CLS, PTV3),
    "ptv3_seg": _entry(PTv3Config, "ptv3:PTv3Seg", SEG, PTV3),
    "ptv3_seg_base": _entry(PTv3BaseConfig, "ptv3:PTv3Seg", SEG, PTV3),
}


def format_table(params: dict[str, int] | None = None) -> str:
    """``pcattn models``: one line per built-in model (name, task, paper), with the parameters
    of its default config when ``params`` gives them."""
    head = f"{'name':<24} {'task':<18} " + ("  params  " if params else "") + "paper"
    lines = [head]
    for name, e in MODELS.items():
        count = f"{params[name] / 1e6:>7.2f}M  " if params else ""
        lines.append(f"{name:<24} {e.task:<18} {count}{e.paper}")
    return "\n".join(lines)


def config_class(name: str) -> type:
    """The config dataclass of model ``name``: from :data:`MODELS` for a built-in model (no
    torch import), else from the registry (a model registered with ``register_model``)."""
    if name in MODELS:
        return MODELS[name].config
    if "pcattn.models.registry" not in sys.modules:  # nothing else can have been registered
        raise ValueError(f"unknown model {name!r}; available: {sorted(MODELS)}")
    from pcattn.models.registry import model_config_class

    return model_config_class(name)


__all__ = ["MODELS", "ModelEntry", "config_class", "format_table",
           "GraphAttentionBaseConfig", "GraphAttentionConfig", "NadarayaWatsonBaseConfig",
           "NadarayaWatsonConfig", "PCTBaseConfig", "PCTConfig", "PCTSegBaseConfig",
           "PCTSegConfig", "PTv2BaseConfig", "PTv2Config", "PTv3BaseConfig", "PTv3Config",
           "PointNetConfig", "PointNetSegConfig", "PointTransformerConfig",
           "PointTransformerSegConfig"]
