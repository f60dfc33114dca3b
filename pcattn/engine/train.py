"""Training and evaluation loops; the task (classification or part segmentation) comes from
the dataset (:func:`pcattn.engine.tasks.task_for`)."""

from __future__ import annotations

import json
import math
import random
import time
from pathlib import Path

import numpy as np
import torch
from torch import nn
from torch_geometric.loader import DataLoader
from tqdm import tqdm

from pcattn.data.registry import build_dataset
from pcattn.devices import resolve_device
from pcattn.engine.checkpoint import load_checkpoint, save_checkpoint
from pcattn.engine.config import RunConfig, config_from_dict, save_config
from pcattn.engine.tasks import Task, task_for
from pcattn.engine.votes import vote_logits
from pcattn.models.registry import create_model


def seed_everything(seed: int) -> None:
    random.seed(seed)
    np.random.seed(seed)
    torch.manual_seed(seed)


def fresh_run_dir(out_dir: Path, name: str) -> Path:
    """``out_dir/name``, or ``name-2``, ``name-3``... if it already holds a run: a new run
    never overwrites an earlier run's checkpoint or metrics."""
    for i in range(1, 10_000):
        path = out_dir / (name if i == 1 else f"{name}-{i}")
        try:
            path.mkdir(parents=True)
            return path
        except FileExistsError:
            if not any(path.iterdir()):
                return path
    raise ValueError(f"{out_dir} holds 9999 runs named {name!r}; set train.run_name")


def build_model_for(run: RunConfig, train_set) -> nn.Module:
    """Create the model, filling ``num_classes``, ``num_categories`` and the feature
    width ``feature_channels`` (of ``data.x``) from the data."""
    x = getattr(train_set[0], "x", None)
    width = 0 if x is None else x.shape[1]
    wanted = {"num_classes": train_set.num_classes, "feature_channels": width,
              "num_categories": getattr(train_set, "num_categories", None)}
    wanted = {k: v for k, v in wanted.items() if v is not None}
    for key, value in wanted.items():
        if hasattr(run.model, key):
            setattr(run.model, key, value)
    return create_model(run.model_name, **vars(run.model))


def train(run: RunConfig, *, progress: bool = True) -> dict:
    """Train ``run``, evaluate on the test split and write the run folder.

    The folder ``<train.out_dir>/<train.run_name>/`` (``-2``, ``-3``... when taken) gets
    ``config.yaml`` (resolved), ``checkpoint.pt`` and ``metrics.json``. Returns the metrics,
    with ``"run_dir"``.
    """
    cfg = run.train
    seed_everything(cfg.seed)
    device = resolve_device(cfg.device, "train.device")
    train_set, test_set = build_dataset(run.data, "train"), build_dataset(run.data, "test")
    task = task_for(train_set, label_smoothing=cfg.label_smoothing)
    if (task.name == "part_segmentation") != run.model_name.endswith("_seg"):
        need = "a *_seg model" if task.name == "part_segmentation" else "a classifier"
        raise ValueError(f"data.name={run.data.name!r} is a {task.name} dataset and needs "
                         f"{need}, but model.name={run.model_name!r}; registered models: "
                         "see `pcattn models`")
    model = build_model_for(run, train_set).to(device)
    out = fresh_run_dir(Path(cfg.out_dir), cfg.run_name)
    save_config(run, out / "config.yaml")
    loader = DataLoader(train_set, batch_size=cfg.batch_size, shuffle=True, drop_last=True,
                        num_workers=cfg.num_workers,
                        generator=torch.Generator().manual_seed(cfg.seed))
    if len(loader) == 0:
        raise ValueError(f"the train split has {len(train_set)} clouds, fewer than "
                         f"train.batch_size={cfg.batch_size}")
    opt = torch.optim.AdamW(model.parameters(), lr=cfg.lr, weight_decay=cfg.weight_decay)
    total = cfg.epochs * len(loader)
    warmup = max(1, int(cfg.warmup_epochs * len(loader)))
    sched = torch.optim.lr_scheduler.LambdaLR(opt, lambda s: min(
        (s + 1) / warmup, 0.5 * (1 + math.cos(math.pi * min(1.0, s / total)))))
    history, seen, t0 = [], 0, time.perf_counter()
    for epoch in range(cfg.epochs):
        model.train()
        bar = tqdm(loader, desc=f"epoch {epoch + 1}/{cfg.epochs}", disable=not progress,
                   leave=False)
        running, count, state = 0.0, 0, task.new_state(device)
        for batch in bar:
            batch = batch.to(device)
            logits = model(batch)  # [B, num_classes] or [M, num_parts]
            loss = task.loss(logits, batch)
            opt.zero_grad(set_to_none=True)
            loss.backward()
            opt.step()
            sched.step()
            running += loss.item() * batch.num_graphs
            task.update(state, logits, batch)
            count += batch.num_graphs
            bar.set_postfix(loss=f"{running / count:.3f}")
        seen += count
        score = task.compute(state)[task.best_metric]
        history.append({"epoch": epoch + 1, "loss": running / count,
                        f"train_{task.best_metric}": score})
        tqdm.write(f"epoch {epoch + 1}: loss {running / count:.4f}, "
                   f"train {task.best_metric} {score:.4f}")
    train_time = time.perf_counter() - t0
    save_checkpoint(out / "checkpoint.pt", model, run.to_dict(), epoch=cfg.epochs,
                    dataset=dataset_info(train_set))
    test = evaluate(model, test_set, batch_size=cfg.batch_size, device=device, task=task)
    metrics = {
        "model": run.model_name, "dataset": run.data.name, "split": "test",
        "task": task.name, "best_metric": task.best_metric,
        **test, "train_history": history, "train_seconds": train_time,
        "train_clouds_per_second": seen / train_time,
        "parameters": sum(p.numel() for p in model.parameters()), "device": str(device),
        "run_dir": str(out),
    }
    (out / "metrics.json").write_text(json.dumps(metrics, indent=2))
    return metrics


def dataset_info(dataset) -> dict:
    """What prediction needs of the training data: class and category names, and the
    category -> parts mask of part-segmentation sets (those the dataset has)."""
    info = {key: list(getattr(dataset, key)) for key in ("classes", "categories")
            if getattr(dataset, key, None) is not None}
    if getattr(dataset, "part_mask", None) is not None:
        info["part_mask"] = dataset.part_mask
    return info


@torch.no_grad()
def evaluate(model: nn.Module, dataset, *, batch_size: int = 32, device="cpu",
             task: Task | None = None, votes: int = 1, vote_rotation: str = "none",
             seed: int = 0) -> dict:
    """Eval-mode metrics of the dataset's task on ``dataset``; ``votes > 1`` averages the
    logits of randomly scaled (and, with ``vote_rotation``, rotated) copies
    (:func:`pcattn.engine.votes.vote_logits`)."""
    task = task or task_for(dataset)
    model.eval()
    state = task.new_state(device)
    generator = torch.Generator().manual_seed(seed)
    for batch in DataLoader(dataset, batch_size=batch_size):
        batch = batch.to(device)
        logits = vote_logits(model, batch, votes, generator=generator, rotation=vote_rotation)
        task.update(state, logits, batch)
    return task.compute(state)


def load_model(path: str | Path, device: str = "auto") -> tuple[nn.Module, RunConfig, dict]:
    """The eval-mode model of a checkpoint, its run config and the checkpoint dict."""
    ckpt = load_checkpoint(path)
    run = config_from_dict(ckpt["config"])
    model = create_model(run.model_name, **vars(run.model))
    model.load_state_dict(ckpt["model"])
    return model.to(resolve_device(device)).eval(), run, ckpt


def evaluate_checkpoint(path: str | Path, *, split: str = "test", device: str = "auto",
                        votes: int = 1, vote_rotation: str = "none") -> dict:
    """Rebuild the model of a checkpoint and evaluate it on a split of its dataset."""
    model, run, _ = load_model(path, device)
    dataset = build_dataset(run.data, split)
    return evaluate(model, dataset, batch_size=run.train.batch_size,
                    device=next(model.parameters()).device, votes=votes,
                    vote_rotation=vote_rotation, seed=run.train.seed)
