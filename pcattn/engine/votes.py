"""Test-time voting: average the logits of several randomly transformed copies of a batch."""

from __future__ import annotations

import torch
from torch import Tensor, nn

from pcattn.data.transforms import axis_rotation_matrix, random_rotation_matrix


def augment_batch(batch, generator: torch.Generator, *, scale: tuple[float, float] = (0.8, 1.2),
                  rotation: str = "none"):
    """A copy of ``batch`` with each cloud scaled per axis by factors from ``U(*scale)`` (as
    PointNeXt's voting does) and, with ``rotation`` ``"x"``/``"y"``/``"z"`` (a random angle
    about that axis) or ``"so3"`` (uniform), rotated; ``x`` with 3 columns is taken to be the
    normals and follows (inverse-transpose scale, then rotation).

    Shape:
        batch.pos: [M, 3], batch.x: [M, F] or None, batch.batch: [M] -> the same
    """
    if rotation not in ("none", "x", "y", "z", "so3"):
        raise ValueError(f"rotation must be 'none', 'x', 'y', 'z' or 'so3', got {rotation!r}")
    out = batch.clone()
    num_clouds = int(batch.num_graphs)
    owner = batch.batch if getattr(batch, "batch", None) is not None else torch.zeros(
        batch.pos.shape[0], dtype=torch.long, device=batch.pos.device)
    low, high = scale
    s = (low + (high - low) * torch.rand(num_clouds, 3, generator=generator)).to(batch.pos)
    rot = torch.stack([
        torch.eye(3, dtype=torch.float64) if rotation == "none"
        else random_rotation_matrix(generator) if rotation == "so3"
        else axis_rotation_matrix(float(torch.rand(1, generator=generator)) * 2 * torch.pi,
                                  rotation)
        for _ in range(num_clouds)]).to(batch.pos)  # [B, 3, 3]
    out.pos = torch.einsum("mij,mj->mi", rot[owner], batch.pos * s[owner])  # [M, 3]
    x = getattr(batch, "x", None)
    if x is not None and x.dim() == 2 and x.shape[1] == 3:
        n = x / s[owner]
        n = n / n.norm(dim=1, keepdim=True).clamp_min(1e-12)
        out.x = torch.einsum("mij,mj->mi", rot[owner], n)  # [M, 3]
    return out


@torch.no_grad()
def vote_logits(model: nn.Module, batch, votes: int = 1, *,
                generator: torch.Generator | None = None, scale: tuple[float, float] = (0.8, 1.2),
                rotation: str = "none") -> Tensor:
    """Mean logits over ``votes`` copies: the batch as given, then ``votes - 1`` copies from
    :func:`augment_batch`. ``votes=1`` is the plain forward.

    Shape:
        -> [B, num_classes] or [M, num_parts], as the model returns
    """
    if votes < 1:
        raise ValueError(f"votes must be >= 1, got {votes}")
    generator = generator or torch.Generator().manual_seed(0)
    total = model(batch)
    for _ in range(votes - 1):
        total = total + model(augment_batch(batch, generator, scale=scale, rotation=rotation))
    return total / votes
