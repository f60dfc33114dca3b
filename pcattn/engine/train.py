"""Training and evaluation loops for classification."""

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
from pcattn.engine.metrics import classification_metrics
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
    """Create the model, filling ``num_classes`` / ``in_channels`` from the data."""
    wanted = {"num_classes": train_set.num_classes,
              "in_channels": 3 if run.data.use_normals else 0}
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
    if len(train_set) and train_set[0].y.numel() != 1:
        raise ValueError(f"data.name={run.data.name!r} has a label per point (segmentation); "
                         "the training loop does classification only so far: choose a "
                         "classification dataset (synthetic_shapes, modelnet40, modelnet10, "
                         "folder)")
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
    loss_fn = nn.CrossEntropyLoss(label_smoothing=cfg.label_smoothing)
    history, seen, t0 = [], 0, time.perf_counter()
    for epoch in range(cfg.epochs):
        model.train()
        bar = tqdm(loader, desc=f"epoch {epoch + 1}/{cfg.epochs}", disable=not progress,
                   leave=False)
        running, correct, count = 0.0, 0, 0
        for batch in bar:
            batch = batch.to(device)
            logits = model(batch)  # [B, num_classes]
            loss = loss_fn(logits, batch.y)
            opt.zero_grad(set_to_none=True)
            loss.backward()
            opt.step()
            sched.step()
            running += loss.item() * batch.num_graphs
            correct += int((logits.argmax(-1) == batch.y).sum())
            count += batch.num_graphs
            bar.set_postfix(loss=f"{running / count:.3f}", acc=f"{correct / count:.3f}")
        seen += count
        history.append({"epoch": epoch + 1, "loss": running / count, "train_acc": correct / count})
        tqdm.write(f"epoch {epoch + 1}: loss {running / count:.4f}, "
                   f"train acc {correct / count:.4f}")
    train_time = time.perf_counter() - t0
    save_checkpoint(out / "checkpoint.pt", model, run.to_dict(), epoch=cfg.epochs)
    test = evaluate(model, test_set, batch_size=cfg.batch_size, device=device)
    metrics = {
        "model": run.model_name, "dataset": run.data.name, "split": "test",
        **test, "train_history": history, "train_seconds": train_time,
        "train_clouds_per_second": seen / train_time,
        "parameters": sum(p.numel() for p in model.parameters()), "device": str(device),
        "run_dir": str(out),
    }
    (out / "metrics.json").write_text(json.dumps(metrics, indent=2))
    return metrics


@torch.no_grad()
def evaluate(model: nn.Module, dataset, *, batch_size: int = 32, device="cpu") -> dict:
    """Eval-mode predictions on ``dataset``: overall / mean-class accuracy and per class."""
    model.eval()
    preds, targets = [], []
    for batch in DataLoader(dataset, batch_size=batch_size):
        batch = batch.to(device)
        preds.append(model(batch).argmax(-1).cpu())
        targets.append(batch.y.cpu())
    return classification_metrics(torch.cat(preds), torch.cat(targets), dataset.num_classes)


def evaluate_checkpoint(path: str | Path, *, split: str = "test", device: str = "auto") -> dict:
    """Rebuild the model of a checkpoint and evaluate it on a split of its dataset."""
    ckpt = load_checkpoint(path)
    run = config_from_dict(ckpt["config"])
    dev = resolve_device(device)
    dataset = build_dataset(run.data, split)
    model = create_model(run.model_name, **vars(run.model))
    model.load_state_dict(ckpt["model"])
    return evaluate(model.to(dev), dataset, batch_size=run.train.batch_size, device=dev)
