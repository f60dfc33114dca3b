"""What a run is made of: datasets, the model sized from the data, loaders, run folders."""

from __future__ import annotations

import dataclasses
from pathlib import Path

import torch
from torch import nn
from torch_geometric.loader import DataLoader

from pcattn.data.transforms import generators
from pcattn.engine.config import RunConfig
from pcattn.engine.distributed import DistEnv, ResumableSampler, shard
from pcattn.engine.rng import seed_worker
from pcattn.engine.tasks import Task
from pcattn.fileio import output_folder
from pcattn.models.registry import create_model, model_task

# config fields the engine fills from the data
FILLED_FIELDS = ("num_classes", "num_categories", "feature_channels")


def data_fields(dataset) -> dict[str, int]:
    """``num_classes``, ``num_categories`` (segmentation sets) and the width of ``data.x``."""
    x = getattr(dataset[0], "x", None)
    width = 0 if x is None else int(x.shape[-1])
    out = {"num_classes": int(dataset.num_classes), "feature_channels": width}
    categories = getattr(dataset, "num_categories", None)
    if categories is None and hasattr(dataset, "categories"):
        categories = len(dataset.categories)
    if categories is not None:
        out["num_categories"] = int(categories)
    return out


def dataset_info(dataset) -> dict:
    """What prediction needs of the training data: class and category names, and the
    category -> parts mask of part-segmentation sets (those the dataset has)."""
    info = {key: [str(v) for v in getattr(dataset, key)] for key in ("classes", "categories")
            if getattr(dataset, key, None) is not None}
    if getattr(dataset, "part_mask", None) is not None:
        info["part_mask"] = dataset.part_mask
    return info


def fill_model_config(run: RunConfig, dataset) -> None:
    """Set the model config fields it has among :data:`FILLED_FIELDS` from ``dataset``."""
    values = {k: v for k, v in data_fields(dataset).items() if hasattr(run.model, k)}
    run.model = dataclasses.replace(run.model, **values)


def build_model(run: RunConfig, task: Task) -> nn.Module:
    """The registered model of ``run``; a segmentation model needs a per-point dataset."""
    seg_model = model_task(run.model_name) == "part_segmentation"
    if seg_model != (task.name != "classification"):
        needs = "a part-segmentation dataset (a label per point, e.g. synthetic_parts, " \
                "shapenetpart)" if seg_model else "a classification dataset (a label per " \
                "cloud, e.g. synthetic_shapes, modelnet40)"
        raise ValueError(f"model {run.model_name!r} needs {needs}; data.name="
                         f"{run.data.name!r} is a {task.name} dataset")
    return create_model(run.model_name, run.model)


def augmentation_generators(dataset) -> list[torch.Generator]:
    """The generators a dataset's seeded resampling and augmentation draw from."""
    return (generators(getattr(dataset, "resample", None))
            + generators(getattr(dataset, "transform", None)))


def train_loader(dataset, run: RunConfig, env: DistEnv, generator: torch.Generator
                 ) -> tuple[DataLoader, ResumableSampler]:
    """Shuffled by epoch (``sampler.set_epoch``), ``batch_size`` clouds per process, the
    incomplete last batch dropped."""
    cfg = run.train
    sampler = ResumableSampler(dataset, env, seed=cfg.seed)
    loader = DataLoader(dataset, batch_size=cfg.batch_size, sampler=sampler, drop_last=True,
                        **_worker_options(cfg.num_workers, generator))
    if len(loader) == 0:
        raise ValueError(f"the train split has {len(dataset)} clouds, fewer than the "
                         f"{env.world} x train.batch_size={cfg.batch_size} one step needs")
    return loader, sampler


def eval_loader(dataset, run: RunConfig, env: DistEnv) -> DataLoader:
    """In order, this process's shard only (no padding: each cloud is counted once)."""
    return DataLoader(shard(dataset, env), batch_size=run.train.batch_size,
                      **_worker_options(run.train.num_workers,
                                        torch.Generator().manual_seed(run.train.seed + 1)))


def _worker_options(num_workers: int, generator: torch.Generator) -> dict:
    return dict(num_workers=num_workers, persistent_workers=num_workers > 0,
                worker_init_fn=seed_worker, generator=generator)


def fresh_run_dir(out_dir: Path, name: str) -> Path:
    """``out_dir/name``, or ``name-2``, ``name-3``... if it already holds a run: a new run
    never overwrites an earlier run's checkpoint or metrics."""
    output_folder(out_dir, "train.out_dir")  # a file there, or no way to make it: one line
    for i in range(1, 10_000):
        path = out_dir / (name if i == 1 else f"{name}-{i}")
        try:
            path.mkdir(parents=True)
            return path
        except FileExistsError:
            if path.is_dir() and not any(path.iterdir()):
                return path
    raise ValueError(f"{out_dir} holds 9999 runs named {name!r}; set train.run_name")
