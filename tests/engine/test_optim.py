"""Optimisers, schedules against their formulas, gradient clipping, label smoothing, amp."""

from __future__ import annotations

import math

import pytest
import torch
from torch import nn
from torch_geometric.data import Batch, Data

from pcattn.engine.config import TrainConfig
from pcattn.engine.optim import build_optimizer, build_scheduler
from pcattn.engine.precision import autocast, check_amp, grad_scaler
from pcattn.engine.step import backward_step, forward_loss
from pcattn.engine.tasks import ClassificationTask


def lrs(cfg: TrainConfig, epochs: int, steps: int) -> list[float]:
    model = nn.Linear(2, 2)
    opt = build_optimizer(model, cfg)
    sched = build_scheduler(opt, cfg, epochs=epochs, steps_per_epoch=steps)
    out = []
    for _ in range(epochs * steps):
        out.append(opt.param_groups[0]["lr"])
        opt.step()
        sched.step()
    return out


def test_cosine_with_warmup_matches_the_formula():
    cfg = TrainConfig(lr=0.1, warmup_epochs=1, min_lr=0.01)
    got = lrs(cfg, epochs=5, steps=4)
    warm, total = 4, 20
    want = [0.1 * (s + 1) / warm if s < warm else
            0.01 + 0.09 * 0.5 * (1 + math.cos(math.pi * (s - warm) / (total - warm)))
            for s in range(total)]
    assert got == pytest.approx(want)


def test_step_schedule_decays_every_step_epochs():
    cfg = TrainConfig(lr=1.0, schedule="step", step_epochs=2, step_gamma=0.5, warmup_epochs=0)
    assert lrs(cfg, epochs=6, steps=3) == pytest.approx([1.0] * 6 + [0.5] * 6 + [0.25] * 6)


def test_optimizers_and_bad_names():
    model = nn.Linear(2, 2)
    sgd = build_optimizer(model, TrainConfig(optimizer="sgd", momentum=0.8, nesterov=True))
    assert isinstance(sgd, torch.optim.SGD)
    assert sgd.defaults["momentum"] == 0.8 and sgd.defaults["nesterov"]
    assert isinstance(build_optimizer(model, TrainConfig()), torch.optim.AdamW)
    with pytest.raises(ValueError, match=r"unknown train.optimizer 'adam'.*'adamw', 'sgd'"):
        TrainConfig(optimizer="adam")
    with pytest.raises(ValueError, match=r"unknown train.schedule.*'cosine', 'step'"):
        TrainConfig(schedule="poly")


class Linear(nn.Module):
    """logits = mean over a cloud's points of W [x, y, z] (a model on a Batch)."""

    def __init__(self) -> None:
        super().__init__()
        self.lin = nn.Linear(3, 4)

    def forward(self, batch):
        out = torch.zeros(batch.num_graphs, 4).index_add_(0, batch.batch, self.lin(batch.pos))
        return out / torch.bincount(batch.batch)[:, None]


def tiny_batch(scale: float = 1.0):
    g = torch.Generator().manual_seed(0)
    clouds = [Data(pos=torch.randn(5, 3, generator=g) * scale, y=torch.tensor([i % 4]))
              for i in range(6)]
    return Batch.from_data_list(clouds)


def test_grad_clip_bounds_the_update_of_plain_sgd():
    torch.manual_seed(0)
    model, batch = Linear(), tiny_batch(scale=50.0)
    task = ClassificationTask(4)
    before = [p.detach().clone() for p in model.parameters()]
    # reference: the unclipped gradient, clipped by hand to norm 0.5
    loss = task.loss(model(batch), batch)
    grads = torch.autograd.grad(loss, list(model.parameters()))
    norm = torch.sqrt(sum((g ** 2).sum() for g in grads))
    assert norm > 0.5
    opt = torch.optim.SGD(model.parameters(), lr=1.0)
    loss, _ = forward_loss(model, batch, task, amp="none", device=torch.device("cpu"))
    backward_step(loss, model, opt, grad_scaler("none", torch.device("cpu")), grad_clip=0.5)
    for p, b, g in zip(model.parameters(), before, grads):
        torch.testing.assert_close(p.detach(), b - g * 0.5 / norm)


def test_label_smoothing_loss_matches_its_formula():
    logits, y = torch.randn(6, 4), torch.tensor([0, 1, 2, 3, 0, 1])
    eps = 0.2
    target = torch.full((6, 4), eps / 4).scatter_add_(1, y[:, None], torch.full((6, 1), 1 - eps))
    want = -(target * logits.log_softmax(-1)).sum(-1).mean()
    got = ClassificationTask(4, label_smoothing=eps).loss(logits, Data(y=y))
    torch.testing.assert_close(got, want)


def test_amp_modes_on_the_cpu():
    cpu = torch.device("cpu")
    with pytest.raises(ValueError, match="fp16 needs a CUDA device.*bf16"):
        check_amp("fp16", cpu)
    check_amp("bf16", cpu)
    a, b = torch.randn(4, 4), torch.randn(4, 4)
    with autocast("bf16", cpu):
        assert (a @ b).dtype == torch.bfloat16
    with autocast("none", cpu):
        assert (a @ b).dtype == torch.float32
    assert not grad_scaler("bf16", cpu).is_enabled()


@pytest.mark.skipif(not torch.cuda.is_available(), reason="needs CUDA")
def test_fp16_step_on_cuda_uses_a_grad_scaler():
    dev = torch.device("cuda")
    model, batch = Linear().to(dev), tiny_batch().to(dev)
    scaler = grad_scaler("fp16", dev)
    assert scaler.is_enabled()
    opt = torch.optim.SGD(model.parameters(), lr=0.1)
    before = [p.detach().clone() for p in model.parameters()]
    loss, logits = forward_loss(model, batch, ClassificationTask(4), amp="fp16", device=dev)
    assert logits.dtype == torch.float32 and torch.isfinite(loss)
    backward_step(loss, model, opt, scaler)
    assert any(not torch.equal(p, b) for p, b in zip(model.parameters(), before))
