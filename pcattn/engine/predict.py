"""Predictions of a checkpoint on users' files: a class with its top-5, or a part per point
written as a coloured PLY."""

from __future__ import annotations

import colorsys
from pathlib import Path

import numpy as np
import torch
from torch import nn
from torch_geometric.data import Batch

from pcattn.data.io import read_cloud
from pcattn.data.transforms import NormalizeUnitSphere
from pcattn.devices import resolve_device
from pcattn.engine.checkpoint import checkpoint_path, load_checkpoint
from pcattn.engine.config import RunConfig, config_from_dict
from pcattn.models.registry import create_model, model_task


def load_model(path: str | Path, device: str = "auto") -> tuple[nn.Module, RunConfig, dict]:
    """The eval-mode model of a checkpoint (or of a run folder's ``best.pt``), its run config
    and the checkpoint dict."""
    ckpt = load_checkpoint(checkpoint_path(path, "best.pt"))
    run = config_from_dict(ckpt["config"])
    model = create_model(run.model_name, **vars(run.model))
    model.load_state_dict(ckpt["model"])
    return model.to(resolve_device(device)).eval(), run, ckpt


def part_colors(num: int) -> np.ndarray:
    """``num`` well-separated RGB colours in [0, 1] (golden-ratio hues). Shape: [num, 3]."""
    return np.array([colorsys.hsv_to_rgb((i * 0.618033988749895) % 1.0, 0.75, 0.95)
                     for i in range(num)])


def _category_index(category: str | int | None, names: list[str] | None, needed: int) -> int:
    if category is None:
        raise ValueError(f"this is a part-segmentation model over {needed} object categories"
                         f"{' ' + str(names) if names else ''}: pass --category NAME")
    if names and str(category) in names:
        return names.index(str(category))
    lookup = {n.lower(): i for i, n in enumerate(names or [])}
    if str(category).lower() in lookup:
        return lookup[str(category).lower()]
    if str(category).isdigit() and int(category) < needed:
        return int(category)
    raise ValueError(f"unknown category {category!r}; the model knows "
                     f"{names or list(range(needed))}")


@torch.no_grad()
def predict_file(checkpoint: str | Path, file: str | Path, *, out: str | Path | None = None,
                 category: str | int | None = None, num_points: int | None = None,
                 device: str = "auto") -> dict:
    """Predict on one file ``read_cloud`` reads (centred and scaled to the unit sphere, as
    the datasets are).

    Classification: ``{"class", "top5": [(name, probability)...]}``. Part segmentation (pass
    ``category``): writes ``out`` (default ``FILE.parts.ply``), a PLY coloured by predicted
    part, and returns ``{"out", "part_counts": {part: points}}``.
    """
    model, run, ckpt = load_model(checkpoint, device)
    info = ckpt.get("dataset", {})
    dev = next(model.parameters()).device
    data = read_cloud(file, num_points=num_points or run.data.num_points)
    data = NormalizeUnitSphere()(data)
    want = getattr(run.model, "feature_channels", 0)
    if want == 0:
        data.x = None
    elif data.x is None or data.x.shape[1] != want:
        raise ValueError(f"{file}: the model reads {want} feature channels (normals) per point "
                         "but the file has none; use a file with normals or a model trained "
                         "with data.use_normals=false")
    num_categories = getattr(run.model, "num_categories", 0)
    if num_categories:
        data.category = torch.tensor([_category_index(category, info.get("categories"),
                                                      num_categories)])
    logits = model(Batch.from_data_list([data]).to(dev)).cpu()
    if model_task(run.model_name) == "classification":  # one label for the cloud
        classes = info.get("classes") or [str(i) for i in range(logits.shape[-1])]
        prob = logits.softmax(-1)[0]
        top = prob.topk(min(5, prob.numel()))
        return {"file": str(file), "class": classes[int(top.indices[0])],
                "top5": [(classes[int(i)], float(p)) for p, i in zip(top.values, top.indices)]}
    mask = info.get("part_mask")
    if mask is not None and num_categories:  # parts of other categories are ruled out
        logits = logits.masked_fill(~mask[data.category[0]], float("-inf"))
    pred = logits.argmax(-1)  # [N]
    out = Path(out) if out is not None else Path(f"{file}.parts.ply")
    _write_ply(out, data.pos.numpy(), part_colors(logits.shape[-1])[pred.numpy()])
    counts = torch.bincount(pred, minlength=logits.shape[-1])
    return {"file": str(file), "out": str(out), "points": int(pred.numel()),
            "part_counts": {str(p): int(c) for p, c in enumerate(counts.tolist()) if c}}


def _write_ply(path: Path, xyz: np.ndarray, rgb: np.ndarray) -> None:
    import open3d as o3d

    cloud = o3d.geometry.PointCloud(o3d.utility.Vector3dVector(xyz.astype(np.float64)))
    cloud.colors = o3d.utility.Vector3dVector(rgb.astype(np.float64))
    path.parent.mkdir(parents=True, exist_ok=True)
    if not o3d.io.write_point_cloud(str(path), cloud):
        raise OSError(f"open3d could not write {path}")
