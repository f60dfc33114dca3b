"""Predictions of a checkpoint on users' files: a class with its top-5, or a part per point
written as a coloured PLY."""

from __future__ import annotations

import colorsys
from pathlib import Path
from typing import Callable

import numpy as np
import torch
from torch_geometric.data import Batch

from pcattn.engine.run_folder import load_model
from pcattn.engine.user_cloud import category_index, load_user_cloud, propagate
from pcattn.fileio import output_file
from pcattn.models.registry import model_task


def part_colors(num: int) -> np.ndarray:
    """``num`` well-separated RGB colours in [0, 1] (golden-ratio hues). Shape: [num, 3]."""
    return np.array([colorsys.hsv_to_rgb((i * 0.618033988749895) % 1.0, 0.75, 0.95)
                     for i in range(num)])


@torch.no_grad()
def predict_file(checkpoint: str | Path, file: str | Path, *, out: str | Path | None = None,
                 category: str | int | None = None, max_points: int | None = None,
                 sampling: str = "auto", device: str = "auto",
                 say: Callable[[str], None] | None = None, loaded: tuple | None = None) -> dict:
    """Predict on one file ``read_cloud`` reads (centred and scaled to the unit sphere, as
    the datasets are; more than ``max_points`` points are down-sampled by ``sampling``, see
    :mod:`pcattn.engine.user_cloud`, which also says what is refused and what is warned).

    Classification: ``{"class", "top5": [(name, probability)...]}``. Part segmentation (pass
    ``category``): writes ``out`` (default ``FILE.parts.ply``), a PLY of every input point at
    the file's coordinates, coloured by predicted part (a down-sampled cloud's parts reach
    every input point from its nearest sampled point), and returns ``{"out", "points", "part_counts": {part: points}}``.
    ``say`` gets a line per long step; ``loaded``: the :func:`load_model` result to reuse.
    """
    model, run, ckpt = loaded or load_model(checkpoint, device)
    info = ckpt.get("dataset", {})
    num_categories = getattr(run.model, "num_categories", 0)
    segmenter = model_task(run.model_name) != "classification"
    _check_options(run, segmenter, num_categories, out=out, category=category)
    dev = next(model.parameters()).device
    cloud = load_user_cloud(file, run, max_points=max_points, sampling=sampling, say=say)
    data = cloud.data
    if num_categories:
        data.category = torch.tensor([category_index(category, info.get("categories"),
                                                     num_categories)])
    if say is not None and cloud.keep is not None:
        say(f"{file}: running {run.model_name} on {data.pos.shape[0]} points")
    logits = model(Batch.from_data_list([data]).to(dev)).cpu()
    if not segmenter:  # one label for the cloud
        classes = info.get("classes") or [str(i) for i in range(logits.shape[-1])]
        prob = logits.softmax(-1)[0]
        top = prob.topk(min(5, prob.numel()))
        return {"file": str(file), "class": classes[int(top.indices[0])],
                "top5": [(classes[int(i)], float(p)) for p, i in zip(top.values, top.indices)],
                "points": int(cloud.pos.shape[0]), "model_points": int(data.pos.shape[0]),
                "sampling": cloud.sampling}
    mask = info.get("part_mask")
    if mask is not None and num_categories:  # parts of other categories are ruled out
        logits = logits.masked_fill(~mask[data.category[0]], float("-inf"))
    pred = logits.argmax(-1)  # [S]
    if cloud.keep is not None:  # every input point takes its nearest sampled point's part
        if say is not None:
            say(f"{file}: carrying the parts to all {cloud.pos.shape[0]} points")
        pred = propagate(pred, data.pos, cloud.pos)  # [N]
    out = output_file(out if out is not None else f"{file}.parts.ply", "--out", ".ply")
    _write_ply(out, cloud.file_pos.numpy(), part_colors(logits.shape[-1])[pred.numpy()])
    counts = torch.bincount(pred, minlength=logits.shape[-1])
    return {"file": str(file), "out": str(out), "points": int(pred.numel()),
            "model_points": int(data.pos.shape[0]), "sampling": cloud.sampling,
            "part_counts": {str(p): int(c) for p, c in enumerate(counts.tolist()) if c}}


def _check_options(run, segmenter: bool, num_categories: int, **given) -> None:
    """An option that cannot apply to this checkpoint's model is an error."""
    if segmenter:
        if given.get("category") is not None and not num_categories:
            raise ValueError(f"--category does not apply: {run.model_name} segments without "
                             "an object category; leave --category out")
        return
    used = [f"--{k}" for k in ("out", "category") if given.get(k) is not None]
    if used:
        raise ValueError(f"{' and '.join(used)} {'do' if len(used) > 1 else 'does'} not apply: "
                         f"{run.model_name} is a classifier (one class per cloud, no parts, "
                         "no file written); leave it out")


def _write_ply(path: Path, xyz: np.ndarray, rgb: np.ndarray) -> None:
    import open3d as o3d

    cloud = o3d.geometry.PointCloud(o3d.utility.Vector3dVector(xyz.astype(np.float64)))
    cloud.colors = o3d.utility.Vector3dVector(rgb.astype(np.float64))
    path.parent.mkdir(parents=True, exist_ok=True)
    if not o3d.io.write_point_cloud(str(path), cloud):
        raise OSError(f"open3d could not write {path}")
