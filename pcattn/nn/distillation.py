"""Self-attention distillation between the stages of a point network (Hou et al., 2019)."""

from __future__ import annotations

from typing import Sequence

import torch
from torch import Tensor

from pcattn.ops.batching import batch_size
from pcattn.ops.interpolate import interpolate
from pcattn.ops.softmax import segment_softmax


def activation_map(x: Tensor, batch: Tensor, num_clouds: int | None = None) -> Tensor:
    r"""SAD's attention map of one stage: :math:`\Psi = \operatorname{softmax}_i
    \big(\tfrac1C \sum_c x_{ic}^2\big)` over the nodes of each cloud, times the cloud's
    node count (so each cloud's map averages 1, at any ``N``).

    Shape:
        x: [M, C], batch: [M] -> [M]
    """
    b = batch_size(batch) if num_clouds is None else num_clouds
    n = torch.bincount(batch, minlength=b).to(x.dtype)[batch]  # [M]
    return segment_softmax(x.square().mean(-1), batch, b) * n  # [M]


def attention_distillation_loss(stages: Sequence[dict], *, k: int = 3) -> Tensor:
    r"""Self-attention distillation (SAD) loss over consecutive stages, teacher-free.

    From "Learning Lightweight Lane Detection CNNs by Self Attention Distillation" (Hou,
    Ma, Liu, Loy, ICCV 2019): each stage's activation-based attention map learns to match
    the next deeper stage's, which serves as its (detached) target:

    .. math::
        \mathcal L = \sum_{m} \frac{1}{M_m} \big\lVert \Psi(A_m) -
        \Psi\big(\mathcal I_{m+1 \to m}(A_{m+1})\big) \big\rVert_2^2

    with :func:`activation_map` :math:`\Psi` (per-cloud softmax of the mean squared
    activation, scaled by the node count: SAD's maps on images are softmaxes over pixels,
    whose squared differences shrink as ``1/N^2``) and, on points, the deeper stage's
    mean squared activation brought to stage ``m``'s nodes by inverse-distance
    interpolation from its ``k`` nearest nodes (the interpolation of transitions up;
    SAD resizes bilinearly) before the softmax. Stages at the same nodes need none.

    Args:
        stages: a model's stages in forward order, each a dict with ``x [M_m, C_m]``,
            ``pos [M_m, 3]`` and ``batch [M_m]`` (what ``forward_features(data)["stages"]``
            of the stage models returns).
        k: nodes of the deeper stage interpolated from.

    Shape:
        stages[m]: x [M_m, C_m], pos [M_m, 3], batch [M_m] -> scalar
    """
    if len(stages) < 2:
        raise ValueError(f"self-attention distillation needs at least two stages, got "
                         f"{len(stages)}")
    loss = stages[0]["x"].new_zeros(())
    b = batch_size(stages[0]["batch"])
    for low, high in zip(stages[:-1], stages[1:]):
        target = high["x"].detach().square().mean(-1, keepdim=True)  # [M_hi, 1]
        if high["pos"].shape != low["pos"].shape or not torch.equal(high["pos"], low["pos"]):
            target = interpolate(target, high["pos"], high["batch"], query=low["pos"],
                                 query_batch=low["batch"], k=k)  # [M_lo, 1]
        n = torch.bincount(low["batch"], minlength=b).to(target.dtype)[low["batch"]]
        teacher = segment_softmax(target[:, 0], low["batch"], b) * n  # [M_lo]
        student = activation_map(low["x"], low["batch"], b)  # [M_lo]
        loss = loss + (student - teacher).square().mean()
    return loss
