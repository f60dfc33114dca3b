"""What ``pcattn models`` prints, as plain data: the registered models with their task,
the parameters of their default config and the paper they follow.

It lies outside ``pcattn.models`` so that listing imports no model code (the models import
torch and torch_geometric: seconds on a busy machine). ``tests/models/test_catalog.py`` builds every
registered model and fails, printing the rows to paste here, when this table and the
registry differ.
"""

from __future__ import annotations

GAT = "Brody et al. 2022, How Attentive are Graph Attention Networks? (GATv2)"
NW = "Nadaraya 1964; Watson 1964 (kernel regression baseline)"
PCT = "Guo et al. 2021, PCT: Point Cloud Transformer"
PN = "Qi et al. 2017, PointNet: Deep Learning on Point Sets for 3D Classification and " \
     "Segmentation"
PT = "Zhao et al. 2021, Point Transformer"
PTV2 = "Wu et al. 2022, Point Transformer V2"
PTV3 = "Wu et al. 2024, Point Transformer V3"

# name, task, parameters of the default config, paper
MODELS: tuple[tuple[str, str, int, str], ...] = (
    ("gat_cls", "classification", 37130, GAT),
    ("gat_cls_base", "classification", 3364106, GAT),
    ("gat_seg", "part_segmentation", 49418, GAT),
    ("gat_seg_base", "part_segmentation", 3757322, GAT),
    ("nw_cls", "classification", 96170, NW),
    ("nw_cls_base", "classification", 2536234, NW),
    ("nw_seg", "part_segmentation", 110634, NW),
    ("nw_seg_base", "part_segmentation", 3460394, NW),
    ("pct_cls", "classification", 209514, PCT),
    ("pct_cls_base", "classification", 3395658, PCT),
    ("pct_seg", "part_segmentation", 251690, PCT),
    ("pct_seg_base", "part_segmentation", 3953930, PCT),
    ("point_transformer_cls", "classification", 227658, PT),
    ("point_transformer_seg", "part_segmentation", 1087058, PT),
    ("pointnet_cls", "classification", 811914, PN),
    ("pointnet_seg", "part_segmentation", 1020978, PN),
    ("ptv2_cls", "classification", 190058, PTV2),
    ("ptv2_cls_base", "classification", 10266838, PTV2),
    ("ptv2_seg", "part_segmentation", 229546, PTV2),
    ("ptv2_seg_base", "part_segmentation", 11866418, PTV2),
    ("ptv3_cls", "classification", 894410, PTV3),
    ("ptv3_cls_base", "classification", 38817194, PTV3),
    ("ptv3_seg", "part_segmentation", 1106346, PTV3),
    ("ptv3_seg_base", "part_segmentation", 45940970, PTV3),
)


def format_table(rows: tuple[tuple[str, str, int, str], ...] = MODELS) -> str:
    """One line per model: name, task, parameters in millions, paper."""
    lines = [f"{'name':<24} {'task':<18} {'params':>8}  paper"]
    lines += [f"{name:<24} {task:<18} {params / 1e6:>7.2f}M  {paper}"
              for name, task, params, paper in rows]
    return "\n".join(lines)
