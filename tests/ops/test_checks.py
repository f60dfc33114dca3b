"""Bad inputs to the ops: each is one clear error naming the argument, never a wrong answer."""

from __future__ import annotations

import pytest
import torch

from pcattn import ops
from pcattn.ops.batching import check_neighbors
from pcattn.ops.checks import check_count, check_index_range, check_points
from helpers import points

BACKENDS = ["torch", "open3d"]


def _with_bad_point(value: float) -> torch.Tensor:
    pos, _ = points([30])
    pos[7, 1] = value
    return pos


@pytest.mark.parametrize("backend", BACKENDS)
@pytest.mark.parametrize("value", [float("nan"), float("inf")])
def test_non_finite_points_are_refused_by_knn_ball_query_and_fps(backend, value):
    pos = _with_bad_point(value)
    msg = r"pos holds NaN or infinite coordinates \(first at row 7"
    with pytest.raises(ValueError, match=msg):
        ops.knn(pos, 4, backend=backend)
    with pytest.raises(ValueError, match=msg):
        ops.ball_query(pos, 0.2, 4, backend=backend)
    with pytest.raises(ValueError, match=msg):
        ops.farthest_point_sample(pos, num=5, backend=backend)
    good, _ = points([30])
    with pytest.raises(ValueError, match=r"query holds NaN .* row 7"):
        ops.knn(good, 4, query=pos, backend=backend)


@pytest.mark.parametrize("call, error, needle", [
    (lambda p: ops.knn(p, 2.5), TypeError, "k must be an integer >= 1, got 2.5"),
    (lambda p: ops.knn(p, "4"), TypeError, "k must be an integer >= 1, got '4'"),
    (lambda p: ops.knn(p, True), TypeError, "k must be an integer >= 1, got True"),
    (lambda p: ops.knn(p, 0), ValueError, "k must be an integer >= 1, got 0"),
    (lambda p: ops.knn(p, 4, dilation=0), ValueError, "dilation must be an integer >= 1, got 0"),
    (lambda p: ops.knn(p, 4, dilation=1.5), TypeError, "dilation must be an integer"),
    (lambda p: ops.knn(p.long(), 4), TypeError, "pos must be floating point .* torch.int64"),
    (lambda p: ops.knn(p, 4, query=p[:, :2]), ValueError, r"query must be \[M, 3\].*\(30, 2\)"),
    (lambda p: ops.knn(p, 4, torch.full((30,), -1)), ValueError, "cloud id -1; ids count from 0"),
    (lambda p: ops.knn(p, 4, torch.zeros(30)), TypeError, "batch must hold integer cloud ids"),
    (lambda p: ops.ball_query(p, 0.0, 4), ValueError, "radius must be a finite number > 0"),
    (lambda p: ops.ball_query(p, "0.1", 4), ValueError, "radius must be a finite number > 0"),
    (lambda p: ops.farthest_point_sample(p.long(), num=4), TypeError, "pos must be floating"),
    (lambda p: ops.farthest_point_sample(p, num=2.5), TypeError, "num must be an integer"),
    (lambda p: ops.farthest_point_sample(p[:, :2], num=4), ValueError, r"pos must be \[M, 3\]"),
    (lambda p: ops.farthest_point_sample(p, torch.full((30,), -2), num=4), ValueError,
     "cloud id -2"),
])
def test_bad_arguments_are_one_clear_error(call, error, needle):
    pos, _ = points([30])
    with pytest.raises(error, match=needle):
        call(pos)


@pytest.mark.parametrize("bad", [30, 31, -2, -7])
def test_gather_and_check_neighbors_allow_only_minus_one_as_padding(bad):
    x = torch.randn(30, 4)
    idx = ops.knn(points([30])[0], 5)
    assert torch.equal(ops.gather(x, idx)[:, 0], x)
    idx[3, 2] = bad
    with pytest.raises(ValueError, match=f"idx holds {bad}, outside \\[0, 30\\).*only -1"):
        ops.gather(x, idx)
    with pytest.raises(ValueError, match=f"idx holds {bad}"):
        check_neighbors(idx, 30)
    idx[3, 2] = -1
    assert (ops.gather(x, idx)[3, 2] == 0).all()


@pytest.mark.parametrize("dtype", [torch.float16, torch.bfloat16])
def test_low_precision_knn_finds_the_float64_neighbours(dtype):
    pos, batch = points([600, 400], seed=5)
    low = pos.to(dtype)
    exact = low.double()  # the same points, distances in float64
    k = 8
    idx = ops.knn(low, k, batch, backend="torch")
    d = torch.cdist(exact, exact) ** 2
    d[batch[:, None] != batch[None, :]] = float("inf")
    ref_val, ref_idx = d.topk(k, largest=False)
    got_val = d.gather(1, idx)
    # equal distances (ties on the coarse grid of the low-precision values) may swap
    torch.testing.assert_close(got_val.sort(1).values, ref_val, rtol=1e-5, atol=1e-7)
    same = (idx.sort(1).values == ref_idx.sort(1).values).all(1).float().mean()
    assert same > 0.99, f"only {same:.1%} of rows have the float64 neighbour set"
    _, dist = ops.knn_with_distance(low, k, batch, backend="torch")
    assert dist.dtype == torch.float32


@pytest.mark.parametrize("call, error, message", [
    (lambda: check_count("4", "k"), TypeError, "k must be an integer >= 1, got '4' (str)"),
    (lambda: check_count(None, "num"), TypeError,
     "num must be an integer >= 1, got None (NoneType)"),
    (lambda: check_count(2.0, "dilation"), TypeError,
     "dilation must be an integer >= 1, got 2.0"),
    (lambda: check_count(-3, "k"), ValueError, "k must be an integer >= 1, got -3"),
    (lambda: check_points([[0.0, 0.0, 0.0]]), TypeError,
     "pos must be a torch.Tensor [M, 3], got list"),
    (lambda: check_points(torch.zeros(2, 2)), ValueError,
     "pos must be [M, 3] (x, y, z per point), got (2, 2)"),
    (lambda: check_points(torch.zeros(2, 3, dtype=torch.long), "query"), TypeError,
     "query must be floating point (float32 or float64), got torch.int64; "
     "cast it with query.float()"),
    (lambda: check_points(torch.tensor([[0.0, 0, 0], [1, float("nan"), 2]])), ValueError,
     "pos holds NaN or infinite coordinates (first at row 1: [1.0, nan, 2.0]); "
     "remove or repair those points"),
    (lambda: check_index_range(torch.tensor([[-1, 5], [0, 1]]), 5), ValueError,
     "idx holds 5, outside [0, 5) for 5 nodes; only -1 marks padding"),
    (lambda: check_index_range(torch.tensor([[-3, 4]]), 5, "edge"), ValueError,
     "edge holds -3, outside [0, 5) for 5 nodes; only -1 marks padding"),
    (lambda: check_index_range(torch.tensor([7]), 5), ValueError,
     "idx holds 7, outside [0, 5) for 5 nodes; only -1 marks padding"),
])
def test_check_messages_in_full(call, error, message):
    """The whole text: argument (default name ``pos`` / ``idx``), what it got, the fix; a
    padded index row reports the out-of-range entry, not the -1; one entry is checked too."""
    with pytest.raises(error) as err:
        call()
    assert str(err.value) == message


def test_checks_accept_valid_input():
    assert check_count(torch.tensor(3), "k") == 3
    pos = torch.rand(4, 3, dtype=torch.float64)
    assert check_points(pos) is pos
    assert check_index_range(torch.tensor([[-1, 4], [0, 2]]), 5) is None
    assert check_index_range(torch.tensor([-1]), 1) is None
    assert check_index_range(torch.zeros(0, 3, dtype=torch.long), 0) is None
