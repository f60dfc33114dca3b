"""Every shipped real-data classification config learns from its first steps on real shapes.

A few hundred optimiser steps of each ``configs/*_modelnet40.yaml`` at its shipped model
size and recipe (lr, warm-up, schedule, optimiser), on the real ModelNet10 training grids
(``../shared/realdata``; fewer points per cloud to keep it to minutes): the training loss
must fall and the eval-mode predictions on held-out clouds must not collapse to one class.
Slow (tens of minutes in all on 2 cores): ``pytest -m slow tests/engine/test_shipped_configs_learn.py``.
"""

from __future__ import annotations

from pathlib import Path

import pytest
import torch
from datafixtures import REALDATA, needs_realdata

CONFIGS = sorted(p for p in (Path(__file__).resolve().parents[2] / "configs").glob(
    "*_modelnet40.yaml"))
STEPS, WINDOW = 240, 40


@pytest.mark.slow
@needs_realdata
@pytest.mark.parametrize("config", CONFIGS, ids=[p.stem for p in CONFIGS])
def test_shipped_config_learns_on_real_shapes(config, tmp_path):
    from torch_geometric.loader import DataLoader

    from pcattn.data.registry import build_dataset
    from pcattn.engine.build import build_model, fill_model_config
    from pcattn.engine.config import load_config
    from pcattn.engine.optim import build_optimizer, build_scheduler
    from pcattn.engine.tasks import task_for

    overrides = [f"data.root={REALDATA}", "data.name=modelnet10", "data.skip_bad=true",
                 "data.num_points=256", "data.graph=''", f"data.cache_dir={tmp_path}"]
    run = load_config(config, overrides)
    torch.manual_seed(0)
    train_set = build_dataset(run.data, "train")
    val_set = build_dataset(run.data, "val")
    task = task_for(train_set)
    fill_model_config(run, train_set)
    model = build_model(run, task)
    loader = DataLoader(train_set, batch_size=run.train.batch_size, shuffle=True, drop_last=True,
                        generator=torch.Generator().manual_seed(0))
    opt = build_optimizer(model, run.train)
    epochs = -(-STEPS // len(loader))
    sched = build_scheduler(opt, run.train, epochs=max(epochs, 4), steps_per_epoch=len(loader))
    losses: list[float] = []
    model.train()
    while len(losses) < STEPS:
        for batch in loader:
            loss = task.loss(model(batch), batch)
            opt.zero_grad()
            loss.backward()
            opt.step()
            sched.step()
            losses.append(float(loss.detach()))
            if len(losses) == STEPS:
                break
    first, last = sum(losses[:WINDOW]) / WINDOW, sum(losses[-WINDOW:]) / WINDOW
    model.eval()
    with torch.no_grad():
        preds = torch.cat([model(b).argmax(-1) for b in DataLoader(val_set, batch_size=32)])
    assert last < 0.85 * first, f"{config.name}: training loss {first:.3f} -> {last:.3f}"
    assert preds.unique().numel() >= 3, (
        f"{config.name}: eval-mode predictions collapse to {preds.unique().tolist()}")
