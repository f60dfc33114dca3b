"""One optimisation step, split so that a test can compare gradients before the update."""

from __future__ import annotations

import torch
from torch import Tensor, nn

from pcattn.engine.precision import autocast
from pcattn.engine.tasks import Task


def forward_loss(model: nn.Module, batch, task: Task, *, amp: str, device: torch.device
                 ) -> tuple[Tensor, Tensor]:
    """``(loss, logits)`` of one batch, under ``amp``'s autocast; logits in float32. A
    model that returns ``(logits, extra)`` (:class:`~pcattn.engine.sad.WithDistillation`)
    adds ``extra`` (``None``: nothing) to the task's loss."""
    with autocast(amp, device):
        out = model(batch)
        logits, extra = out if isinstance(out, tuple) else (out, None)
        loss = task.loss(logits.float(), batch)
        return (loss if extra is None else loss + extra.float()), logits.float()


def backward_step(loss: Tensor, model: nn.Module, optimizer: torch.optim.Optimizer,
                  scaler: torch.amp.GradScaler, *, grad_clip: float = 0.0) -> None:
    """Backward (scaled for fp16; DDP averages the gradients here), optional clipping of the
    global gradient norm, optimiser step."""
    optimizer.zero_grad(set_to_none=True)
    scaler.scale(loss).backward()
    if grad_clip > 0:
        scaler.unscale_(optimizer)
        nn.utils.clip_grad_norm_(model.parameters(), grad_clip)
    scaler.step(optimizer)
    scaler.update()
