"""Optimisers (AdamW, SGD with momentum / Nesterov) and learning-rate schedules with warm-up."""

from __future__ import annotations

import math

import torch
from torch import nn

from pcattn.engine.config import TrainConfig


def build_optimizer(model: nn.Module, cfg: TrainConfig) -> torch.optim.Optimizer:
    """``train.optimizer`` over the model's parameters."""
    params = [p for p in model.parameters() if p.requires_grad]
    if cfg.optimizer == "adamw":
        return torch.optim.AdamW(params, lr=cfg.lr, weight_decay=cfg.weight_decay)
    return torch.optim.SGD(params, lr=cfg.lr, momentum=cfg.momentum, nesterov=cfg.nesterov,
                           weight_decay=cfg.weight_decay)


class LrSchedule:
    """The factor of the base lr at optimiser step ``s``: linear warm-up over ``warmup``
    steps, then cosine from 1 to ``min_factor`` at ``total`` steps, or ``gamma`` to the power
    of completed ``step_every`` blocks of steps.

    Its attributes are plain numbers, so ``LambdaLR.state_dict()`` saves them and a resumed
    run (or one whose ``total`` a time budget shortened) gets the same schedule back.
    """

    def __init__(self, *, kind: str, total: int, warmup: int, min_factor: float = 0.0,
                 step_every: int = 1, gamma: float = 0.1) -> None:
        self.kind, self.total, self.warmup = kind, total, warmup
        self.min_factor, self.step_every, self.gamma = min_factor, step_every, gamma

    def __call__(self, s: int) -> float:
        if s < self.warmup:
            return (s + 1) / self.warmup
        if self.kind == "step":
            return self.gamma ** (s // self.step_every)
        t = min(1.0, (s - self.warmup) / max(1, self.total - self.warmup))
        return self.min_factor + (1 - self.min_factor) * 0.5 * (1 + math.cos(math.pi * t))


def build_scheduler(optimizer: torch.optim.Optimizer, cfg: TrainConfig, *, epochs: int,
                    steps_per_epoch: int) -> torch.optim.lr_scheduler.LambdaLR:
    """``train.schedule`` stepped once per optimiser step over ``epochs`` epochs."""
    schedule = LrSchedule(kind=cfg.schedule, total=epochs * steps_per_epoch,
                          warmup=int(cfg.warmup_epochs * steps_per_epoch),
                          min_factor=cfg.min_lr / cfg.lr,
                          step_every=cfg.step_epochs * steps_per_epoch, gamma=cfg.step_gamma)
    return torch.optim.lr_scheduler.LambdaLR(optimizer, schedule)


def set_schedule_length(scheduler: torch.optim.lr_scheduler.LambdaLR, epochs: int,
                        steps_per_epoch: int, last_steps: int | None = None) -> None:
    """Lay the schedule out over ``epochs`` (a time budget's estimate, an extended run), the
    last of them ``last_steps`` long (default a whole epoch)."""
    last = steps_per_epoch if last_steps is None else last_steps
    scheduler.lr_lambdas[0].total = (epochs - 1) * steps_per_epoch + last


def plan_budget(budget: float, per_epoch: float, done: int, max_epochs: int, steps: int
                ) -> tuple[int, int]:
    """``(epochs, steps of the last one)`` that fit ``budget`` seconds at ``per_epoch``
    seconds an epoch, after ``done`` epochs, at most ``max_epochs``: the whole epochs that
    fit and a last, shorter one for the time left (when it is worth a tenth of an epoch)."""
    fits = budget / per_epoch
    whole = int(fits)
    part = int((fits - whole) * steps)
    if whole >= max_epochs or part < max(1, steps // 10):
        return max(done, min(max_epochs, whole)), steps
    if whole + 1 <= done:
        return done, steps
    return whole + 1, part
