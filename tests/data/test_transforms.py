import math

import pytest
import torch
from torch_geometric.data import Data

import pcattn.data.transforms as T
from pcattn.ops import farthest_point_sample


def cloud(n=64, seg=False, seed=0):
    g = torch.Generator().manual_seed(seed)
    pos = torch.randn(n, 3, generator=g) * torch.tensor([3.0, 1.0, 0.5]) + 2.0
    nrm = torch.nn.functional.normalize(torch.randn(n, 3, generator=g), dim=1)
    y = torch.arange(n) if seg else torch.tensor([7])
    extra = {"category": torch.tensor([3])} if seg else {}
    return Data(pos=pos, x=nrm, y=y, **extra)


def test_normalize_unit_sphere():
    d = T.NormalizeUnitSphere()(cloud())
    assert d.pos.mean(0).abs().max() < 1e-5
    assert d.pos.norm(dim=1).max().item() == pytest.approx(1.0)


def test_scale_within_range_and_normals_stay_unit_and_perpendicular():
    # points on the plane x + y + z = 0 with its normal; after scaling the normal must
    # stay perpendicular to the (scaled) plane
    g = torch.Generator().manual_seed(0)
    a, b = torch.randn(50, 1, generator=g), torch.randn(50, 1, generator=g)
    pos = a * torch.tensor([1.0, -1.0, 0.0]) + b * torch.tensor([1.0, 1.0, -2.0])
    nrm = torch.full((50, 3), 1 / math.sqrt(3))
    d = T.RandomScale(0.5, 2.0, generator=1)(Data(pos=pos.clone(), x=nrm.clone()))
    s = d.pos[0] / pos[0]
    assert ((s >= 0.5) & (s <= 2.0)).all() and not torch.allclose(s, s[0].expand(3))
    assert torch.allclose(d.pos, pos * s, atol=1e-5)
    assert torch.allclose(d.x.norm(dim=1), torch.ones(50), atol=1e-5)
    assert (d.pos @ d.x[0]).abs().max() < 1e-4
    iso = T.RandomScale(0.5, 2.0, anisotropic=False, generator=1)(cloud())
    ratio = iso.pos / cloud().pos
    assert torch.allclose(ratio, ratio[0, 0].expand_as(ratio), atol=1e-5)


def test_translate_is_a_bounded_shift():
    d = T.RandomTranslate(0.2, generator=0)(cloud())
    shift = d.pos - cloud().pos
    assert torch.allclose(shift, shift[0].expand_as(shift), atol=1e-6)
    assert shift.abs().max() <= 0.2 and shift.abs().max() > 0


@pytest.mark.parametrize("axis", ["x", "y", "z", None])
def test_rotation_is_rigid_and_turns_normals(axis):
    src = cloud()
    d = T.RandomRotate(axis, generator=5)(cloud())
    dist = lambda p: torch.cdist(p, p, compute_mode="donot_use_mm_for_euclid_dist")  # noqa: E731
    assert torch.allclose(dist(d.pos), dist(src.pos), atol=1e-4)
    # the same rotation acts on positions and normals: dot products are kept
    assert torch.allclose(d.pos @ d.x.T, src.pos @ src.x.T, atol=1e-4)
    rot = torch.linalg.lstsq(src.pos.double(), d.pos.double()).solution.T  # [3, 3]
    assert torch.det(rot).item() == pytest.approx(1.0, abs=1e-4)
    if axis is not None:
        k = "xyz".index(axis)
        assert torch.allclose(d.pos[:, k], src.pos[:, k], atol=1e-5)  # the axis is fixed
        assert not torch.allclose(d.pos, src.pos, atol=1e-3)


def test_so3_rotations_cover_the_sphere():
    g = torch.Generator().manual_seed(0)
    mats = torch.stack([T.random_rotation_matrix(g) for _ in range(400)])
    eye = torch.eye(3, dtype=torch.float64).expand(400, 3, 3)
    assert torch.allclose(mats @ mats.transpose(1, 2), eye, atol=1e-10)
    assert torch.allclose(torch.det(mats), torch.ones(400, dtype=torch.float64))
    # uniform on SO(3): the image of a fixed vector has mean 0 and E[z^2] = 1/3 (3-sigma bounds)
    v = mats[:, :, 2]
    assert v.mean(0).abs().max() < 0.1 and (v[:, 2] ** 2).mean() == pytest.approx(1 / 3, abs=0.05)


def test_jitter_is_clipped():
    d = T.Jitter(sigma=1.0, clip=0.05, generator=0)(cloud())
    diff = d.pos - cloud().pos
    assert diff.abs().max() <= 0.05 + 1e-6 and (diff != 0).all()
    assert (diff.abs() > 0.049).float().mean() > 0.5  # sigma >> clip: most hit the clip


def test_dropout_and_shuffle_keep_per_point_labels_aligned():
    src = cloud(seg=True)
    for t in (T.RandomDropout(0.8, generator=2), T.Shuffle(generator=2)):
        d = t(cloud(seg=True))
        assert torch.equal(d.pos, src.pos[d.y]) and torch.equal(d.x, src.x[d.y])
        assert d.category.tolist() == [3]
    dropped = T.RandomDropout(0.8, generator=2)(cloud(seg=True))
    assert 0 < dropped.num_nodes < 64
    shuffled = T.Shuffle(generator=2)(cloud(seg=True))
    assert sorted(shuffled.y.tolist()) == list(range(64)) and shuffled.y.tolist() != list(range(64))
    kept = T.RandomDropout(0.8, keep_size=True, generator=2)(cloud())
    assert kept.num_nodes == 64 and kept.y.tolist() == [7]


def test_resample_random_and_fps():
    src = cloud(seg=True)
    r = T.Resample(20, generator=0)(cloud(seg=True))
    assert r.num_nodes == 20 and len(set(r.y.tolist())) == 20
    assert torch.equal(r.pos, src.pos[r.y])
    up = T.Resample(100, generator=0)(cloud(seg=True))
    assert up.num_nodes == 100 and set(up.y.tolist()) == set(range(64))
    g = torch.Generator().manual_seed(4)
    f = T.Resample(16, "fps")(cloud(seg=True), torch.Generator().manual_seed(4))
    ref = farthest_point_sample(src.pos, num=16, random_start=True, generator=g)
    assert f.y.tolist() == ref.tolist()
    with pytest.raises(ValueError, match="method"):
        T.Resample(4, "grid")


def test_seeded_transforms_repeat_and_generators_override():
    t = T.Compose([T.RandomRotate(None), T.Jitter(), T.Shuffle()], generator=11)
    u = T.Compose([T.RandomRotate(None), T.Jitter(), T.Shuffle()], generator=11)
    a1, a2 = t(cloud()), t(cloud())
    assert torch.equal(a1.pos, u(cloud()).pos) and torch.equal(a2.pos, u(cloud()).pos)
    assert not torch.equal(a1.pos, a2.pos)  # a stream, not the same draw each call
    g1, g2 = torch.Generator().manual_seed(3), torch.Generator().manual_seed(3)
    assert torch.equal(t(cloud(), g1).pos, u(cloud(), g2).pos)


def test_seeded_transforms_differ_between_dataloader_workers(monkeypatch):
    class Info:
        def __init__(self, seed):
            self.seed = seed

    t = T.RandomTranslate(1.0, generator=0)
    draws = {}
    for wseed in (100, 101, 100):
        monkeypatch.setattr(torch.utils.data, "get_worker_info", lambda s=wseed: Info(s))
        fresh = T.RandomTranslate(1.0, generator=0)
        draws.setdefault(wseed, []).append(fresh(cloud()).pos[0])
    assert not torch.equal(draws[100][0], draws[101][0])
    assert torch.equal(draws[100][0], draws[100][1])  # reproducible per worker seed
    monkeypatch.setattr(torch.utils.data, "get_worker_info", lambda: None)
    assert not torch.equal(t(cloud()).pos[0], draws[100][0])


@pytest.mark.parametrize("name", sorted(T.PRESETS))
def test_presets(name):
    train = T.preset(name, "train", generator=0)
    d = train(cloud(seg=True))
    assert d.pos.shape == (64, 3) and not torch.equal(d.pos, cloud(seg=True).pos)
    test = T.preset(name, "test", generator=0)
    e = test(cloud())
    if name == "modelnet_so3":
        assert not torch.equal(e.pos, cloud().pos)
    else:
        assert torch.equal(e.pos, cloud().pos)
    with pytest.raises(ValueError, match="available"):
        T.preset("pointnet9")


def test_the_preset_names_a_config_checks_are_the_presets():
    from pcattn.data.options import PRESET_NAMES
    from pcattn.data.transforms import PRESETS

    assert sorted(PRESET_NAMES) == sorted(PRESETS)
