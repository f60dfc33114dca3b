"""``pcattn predict``: a trained classifier's class probabilities for cloud files."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import torch
from torch_geometric.data import Batch

from pcattn.data.base import downsample, normalize_unit_sphere
from pcattn.data.io import read_cloud
from pcattn.engine.checkpoint import checkpoint_path, load_checkpoint
from pcattn.engine.config import config_from_dict
from pcattn.engine.distributed import resolve_device
from pcattn.models.registry import create_model


@torch.no_grad()
def predict_files(ckpt: str | Path, files: list[str | Path], *, device: str = "auto",
                  top: int = 5) -> list[dict]:
    """For each file (anything :func:`~pcattn.data.read_cloud` reads): the ``top`` classes
    and their probabilities. The cloud is prepared as the run's data was: ``num_points``
    points (farthest-point sampled), centred and scaled to the unit sphere when
    ``data.normalize``, normals when ``data.use_normals``."""
    path = checkpoint_path(ckpt, "best.pt")
    state = load_checkpoint(path)
    if state.get("task") != "classification":
        raise ValueError(f"{path} holds a {state.get('task')} model; pcattn predict handles "
                         "classifiers")
    run = config_from_dict(state["config"])
    dev = resolve_device(device)
    model = create_model(run.model_name, **vars(run.model))
    model.load_state_dict(state["model"])
    model.to(dev).eval()
    names = state["class_names"] or [str(i) for i in range(run.model.num_classes)]
    out = []
    for f in files:
        data = read_cloud(f, num_points=run.data.num_points, seed=run.data.seed)
        keep = downsample(data.pos.numpy(), run.data.num_points, "fps",
                          np.random.default_rng(run.data.seed))
        pos = data.pos[torch.as_tensor(keep)]  # [N, 3]
        if run.data.normalize:
            pos = torch.from_numpy(normalize_unit_sphere(pos.numpy())).float()
        x = None
        if run.data.use_normals:
            if data.x is None:
                raise ValueError(f"{f} has no normals, and the model was trained with them "
                                 "(data.use_normals); give a mesh or a cloud with normals")
            x = data.x[torch.as_tensor(keep)]  # [N, 3]
        batch = Batch.from_data_list([type(data)(pos=pos, x=x)]).to(dev)
        probs = model(batch).float().softmax(-1)[0]  # [num_classes]
        p, idx = probs.topk(min(top, probs.numel()))
        out.append({"file": str(f), "class": names[int(idx[0])],
                    "top": [{"class": names[int(i)], "probability": float(q)}
                            for q, i in zip(p, idx)]})
    return out
