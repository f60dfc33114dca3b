"""Test-time voting: the augmentations by hand, and that one vote is the plain forward."""

from __future__ import annotations

import math

import pytest
import torch
from torch_geometric.data import Batch, Data

from pcattn.engine.votes import augment_batch, vote_logits


def two_clouds():
    g = torch.Generator().manual_seed(0)
    normal = torch.tensor([1.0, 1.0, 0.0]) / math.sqrt(2)  # of the planes x + y = const
    return Batch.from_data_list([Data(pos=torch.randn(n, 3, generator=g),
                                      x=normal.expand(n, 3).clone()) for n in (5, 7)])


def test_each_cloud_gets_its_own_anisotropic_scale_and_normals_follow():
    batch = two_clouds()
    out = augment_batch(batch, torch.Generator().manual_seed(1))
    ratio = out.pos / batch.pos  # [M, 3]: the scale of the point's cloud, per axis
    first, second = ratio[:5], ratio[5:]
    assert torch.allclose(first, first[0].expand_as(first), atol=1e-5)
    assert torch.allclose(second, second[0].expand_as(second), atol=1e-5)
    assert not torch.allclose(first[0], second[0])
    assert ((ratio >= 0.8) & (ratio <= 1.2)).all()
    # scaling x, y by a, b maps the plane x + y = c to x/a + y/b = c: normal ~ (1/a, 1/b, 0)
    for s, n in ((first[0], out.x[0]), (second[0], out.x[5])):
        by_hand = torch.tensor([1 / s[0], 1 / s[1], 0.0])
        torch.testing.assert_close(n, by_hand / by_hand.norm())


def test_rotation_keeps_distances_within_a_cloud():
    batch = two_clouds()
    out = augment_batch(batch, torch.Generator().manual_seed(2), scale=(1.0, 1.0),
                        rotation="so3")
    for sl in (slice(0, 5), slice(5, 12)):
        torch.testing.assert_close(torch.cdist(out.pos[sl], out.pos[sl]),
                                   torch.cdist(batch.pos[sl], batch.pos[sl]))
    assert not torch.allclose(out.pos, batch.pos)
    z = augment_batch(batch, torch.Generator().manual_seed(2), scale=(1.0, 1.0), rotation="z")
    torch.testing.assert_close(z.pos[:, 2], batch.pos[:, 2])


def test_one_vote_is_the_plain_forward_and_more_average():
    batch = two_clouds()
    model = lambda b: b.pos.sum(-1, keepdim=True) * torch.ones(1, 4)  # noqa: E731  [M, 4]
    torch.testing.assert_close(vote_logits(model, batch, 1), model(batch))
    g1, g2 = torch.Generator().manual_seed(3), torch.Generator().manual_seed(3)
    copies = [model(batch)] + [model(augment_batch(batch, g1)) for _ in range(2)]
    torch.testing.assert_close(vote_logits(model, batch, 3, generator=g2),
                               sum(copies) / 3)
    with pytest.raises(ValueError, match="votes"):
        vote_logits(model, batch, 0)
