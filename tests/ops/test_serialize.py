"""Serialization against references written bit by bit on Python ints, at the bit limits,
on non-contiguous input, and for locality."""

from __future__ import annotations

import math

import pytest
import torch

from pcattn.ops import ORDERS, encode, grid_coords, serialize
from pcattn.ops.serialize import available_bits, inverse_permutation
from pcattn.ops.serialize_neighbors import OFFSETS, grid_neighbors


def morton_ref(x: int, y: int, z: int, bits: int) -> int:
    """Bit level ``i`` of x, y, z lands at bits ``3i+2, 3i+1, 3i``."""
    code = 0
    for i in range(bits):
        code |= ((x >> i) & 1) << (3 * i + 2)
        code |= ((y >> i) & 1) << (3 * i + 1)
        code |= ((z >> i) & 1) << (3 * i)
    return code


def hilbert_ref(x: int, y: int, z: int, bits: int) -> int:
    """Skilling's AxestoTranspose on one point, then the index read off bit by bit."""
    a = [x, y, z]
    q = 1 << (bits - 1)
    while q > 1:
        p = q - 1
        for i in range(3):
            if a[i] & q:
                a[0] ^= p
            else:
                t = (a[0] ^ a[i]) & p
                a[0] ^= t
                a[i] ^= t
        q >>= 1
    for i in (1, 2):
        a[i] ^= a[i - 1]
    t, q = 0, 1 << (bits - 1)
    while q > 1:
        if a[2] & q:
            t ^= q - 1
        q >>= 1
    a = [v ^ t for v in a]
    index = 0
    for level in reversed(range(bits)):  # most significant level first, axis 0 first
        for v in a:
            index = (index << 1) | ((v >> level) & 1)
    return index


def reference(coords, batch, order, bits):
    fn = morton_ref if order.startswith("z") else hilbert_ref
    out = []
    for (x, y, z), b in zip(coords.tolist(), batch.tolist()):
        if order.endswith("-trans"):
            x, y = y, x
        out.append((b << (3 * bits)) | fn(x, y, z, bits))
    return torch.tensor(out)


def cube(bits):
    n = 1 << bits
    return torch.stack(torch.meshgrid(*[torch.arange(n)] * 3, indexing="ij"), -1).reshape(-1, 3)


@pytest.mark.parametrize("order", ORDERS)
@pytest.mark.parametrize("bits", [1, 2, 5, 20, 21])
def test_codes_match_the_bit_by_bit_reference(order, bits):
    g = torch.Generator().manual_seed(bits)
    num = 2 if bits < 21 else 1  # 21 bits per axis leave no bit for a second cloud
    coords = torch.randint(0, 1 << bits, (300, 3), generator=g)
    coords[0] = (1 << bits) - 1  # the far corner: every bit set
    coords[1] = 0
    batch = torch.arange(300) * num // 300
    got = encode(coords, batch, order=order, bits=bits)
    assert torch.equal(got, reference(coords, batch, order, bits))
    assert int(got.min()) >= 0  # the sign bit is never touched


@pytest.mark.parametrize("order", ["hilbert", "hilbert-trans"])
@pytest.mark.parametrize("bits", [1, 2, 3, 4])
def test_hilbert_visits_every_cell_once_in_unit_steps_and_sub_cubes_contiguously(order, bits):
    cells = cube(bits)
    code = encode(cells, order=order, bits=bits)
    assert sorted(code.tolist()) == list(range(8 ** bits))
    path = cells[code.argsort()]
    assert torch.equal((path[1:] - path[:-1]).abs().sum(1), torch.ones(8 ** bits - 1).long())
    for level in range(1, bits):  # every aligned sub-cube of side 2**level is one run
        block = path >> level  # [N, 3] sub-cube of each step
        changes = (block[1:] != block[:-1]).any(1).sum()
        assert int(changes) == 8 ** (bits - level) - 1


@pytest.mark.parametrize("order", ["hilbert", "hilbert-trans"])
def test_hilbert_locality_bound_on_the_full_grid(order):
    """Cells i and j apart along the curve are at most 2.85 |i - j|^(1/3) apart in space
    (measured exhaustively on 16^3 cells: 2.842); Morton order has no such bound."""
    cells = cube(4)
    path = cells[encode(cells, order=order, bits=4).argsort()].double()
    step = torch.arange(path.shape[0]).double()
    gap = (step[:, None] - step[None]).abs().fill_diagonal_(1)
    assert float((torch.cdist(path, path) / gap ** (1 / 3)).max()) <= 2.85
    morton = cells[encode(cells, order="z", bits=4).argsort()].double()
    assert float((torch.cdist(morton, morton) / gap ** (1 / 3)).max()) > 4


@pytest.mark.parametrize("order", ORDERS)
def test_neighbours_in_the_order_are_near_in_space(order):
    """On 4096 uniform points: consecutive points are < 2.2 median nearest-neighbour
    distances apart (measured 1.7-1.9; a random order gives 18), and the mean box diagonal
    of a patch of 64 is < 1.7 that of a cube holding 64 points' volume (measured 1.2-1.5)."""
    g = torch.Generator().manual_seed(0)
    pos = torch.rand(4096, 3, generator=g)
    s = serialize(pos, orders=order)
    nearest = torch.cdist(pos, pos).fill_diagonal_(math.inf).min(1).values.median()
    path = pos[s.order[0]]
    assert float((path[1:] - path[:-1]).norm(dim=1).median()) < 2.2 * float(nearest)
    patches = path.view(-1, 64, 3)
    diagonal = (patches.amax(1) - patches.amin(1)).norm(dim=1).mean()
    assert float(diagonal) < 1.7 * math.sqrt(3) * (64 / 4096) ** (1 / 3)


def test_serialize_sorts_by_cloud_then_code_and_inverts():
    g = torch.Generator().manual_seed(1)
    pos = torch.rand(90, 3, generator=g)
    batch = torch.repeat_interleave(torch.arange(3), torch.tensor([40, 30, 20]))
    s = serialize(pos, batch)
    assert s.orders == ORDERS and s.code.shape == s.order.shape == (4, 90)
    for o in range(4):
        assert torch.equal(batch[s.order[o]], batch)  # clouds stay in place, in id order
        assert (s.code[o][s.order[o]].diff() >= 0).all()
        assert torch.equal(s.order[o][s.inverse[o]], torch.arange(90))
    assert torch.equal(inverse_permutation(s.inverse), s.order)


def test_each_cloud_is_quantized_from_its_own_corner():
    g = torch.Generator().manual_seed(2)
    a = torch.rand(50, 3, generator=g, dtype=torch.float64)
    pos = torch.cat([a, a + 1000.0])  # the same shape, far away (float64: exact copies)
    batch = torch.repeat_interleave(torch.arange(2), 50)
    coords, size, bits = grid_coords(pos, batch, grid_size=0.01)
    assert torch.equal(coords[:50], coords[50:]) and bits == available_bits(2) == 20
    assert int(coords.max()) <= 100
    auto, size, _ = grid_coords(pos, batch)  # finest grid that fits, per cloud
    assert torch.equal(auto[:50], auto[50:]) and int(auto.max()) == (1 << 20) - 1


@pytest.mark.parametrize("scale", [1e-30, 1.0, 1e30])
def test_the_chosen_grid_fits_any_extent(scale):
    pos = torch.rand(200, 3, dtype=torch.float64) * scale + 3 * scale
    coords, size, bits = grid_coords(pos)
    assert bits == 21 and int(coords.max()) == (1 << 21) - 1 and int(coords.min()) == 0
    assert len(set(map(tuple, coords.tolist()))) == 200


def test_non_contiguous_input_gives_the_same_codes():
    g = torch.Generator().manual_seed(3)
    wide = torch.rand(3, 400, generator=g)
    pos = wide.t()[::2]  # [200, 3], strides (2, 400)
    assert not pos.is_contiguous()
    s, s_c = serialize(pos), serialize(pos.contiguous())
    assert torch.equal(s.code, s_c.code) and torch.equal(s.order, s_c.order)
    coords = s.coords.t().contiguous().t()  # column-major
    for order in ORDERS:
        assert torch.equal(encode(coords, order=order, bits=s.bits),
                           encode(s.coords, order=order, bits=s.bits))


def test_bit_limits_are_clear_errors_not_asserts():
    pos = torch.rand(10, 3) * 100
    with pytest.raises(ValueError, match=r"grid_size >= .* or grid_size=None"):
        grid_coords(pos, grid_size=1e-5)
    with pytest.raises(ValueError, match="pass bits=20 or fewer"):
        grid_coords(pos, torch.tensor([0] * 5 + [1] * 5), bits=21)
    with pytest.raises(ValueError, match=r"outside \[0, 2\*\*4\)"):
        encode(torch.tensor([[16, 0, 0]]), bits=4)
    with pytest.raises(TypeError, match="grid_coords"):
        encode(pos)
    with pytest.raises(ValueError, match="order must be one of"):
        encode(torch.zeros(1, 3, dtype=torch.long), order="peano")
    with pytest.raises(ValueError, match="NaN"):
        serialize(torch.tensor([[0.0, math.nan, 0.0]]))
    assert available_bits(2 ** 20) == 14  # a million clouds still leave 14 bits each


def test_grid_neighbors_match_a_dictionary_of_cells():
    g = torch.Generator().manual_seed(4)
    coords = torch.randint(0, 6, (150, 3), generator=g)  # many shared cells
    batch = torch.repeat_interleave(torch.arange(2), 75)
    cell, neighbors = grid_neighbors(coords, batch, bits=3)
    assert torch.equal(neighbors[cell, 13], cell)
    by_key = {}
    for i, (c, b) in enumerate(zip(coords.tolist(), batch.tolist())):
        by_key.setdefault((b, *c), int(cell[i]))
    assert len(by_key) == neighbors.shape[0]
    for (b, *c), v in by_key.items():
        for o, off in enumerate(OFFSETS.tolist()):
            want = by_key.get((b, *(ci + oi for ci, oi in zip(c, off))), -1)
            assert int(neighbors[v, o]) == want


def test_random_permutations_keep_the_codes_of_each_point():
    g = torch.Generator().manual_seed(5)
    pos = torch.rand(300, 3, generator=g)
    perm = torch.randperm(300, generator=g)
    s, s_p = serialize(pos, grid_size=0.001), serialize(pos[perm], grid_size=0.001)
    assert torch.equal(s_p.code, s.code[:, perm])
    assert torch.equal(perm[s_p.order], s.order)  # distinct cells: the same sequence


def test_points_sharing_a_cell_follow_a_permutation_too():
    g = torch.Generator().manual_seed(6)
    pos = torch.rand(300, 3, generator=g)
    perm = torch.randperm(300, generator=g)
    s, s_p = serialize(pos, grid_size=0.2), serialize(pos[perm], grid_size=0.2)
    assert s.code.unique().numel() < 300  # many points per cell
    assert torch.equal(perm[s_p.order], s.order)


@pytest.mark.parametrize("patch_size", [1, 4, 7, 64])
def test_patches_cut_each_cloud_alone_and_pad_its_last(patch_size):
    from pcattn.ops.serialize import patches

    g = torch.Generator().manual_seed(7)
    sizes = [13, 0, 4, 9]
    batch = torch.repeat_interleave(torch.arange(4), torch.tensor(sizes))
    s = serialize(torch.rand(26, 3, generator=g), batch)
    idx, slot = patches(s.order[2], batch, patch_size)
    assert idx.shape == (sum(-(-n // patch_size) for n in sizes), patch_size)
    assert torch.equal(idx.view(-1)[slot], torch.arange(26))
    real = idx[idx >= 0]
    assert torch.equal(real, s.order[2])  # the order, run through patch by patch
    for row in idx:  # one cloud per patch, padding only at its end
        ids = row[row >= 0]
        assert batch[ids].unique().numel() == 1
        assert (row[: ids.numel()] >= 0).all()
