"""pcattn bench attention on a tiny cloud, in this process (the timings mean nothing here)."""

from __future__ import annotations

import math

import pytest

from pcattn.bench import attention as ba


@pytest.mark.parametrize("family", ba.FAMILIES)
def test_every_family_runs_forward_and_backward(family):
    pos, x = ba._inputs(300)
    x.requires_grad_(True)
    block, call = ba._case(family, pos)
    call(block, x).sum().backward()
    assert x.grad.abs().sum() > 0


def test_errors_against_full_attention():
    assert ba._error("full", 200) == 0.0  # the same block twice
    assert math.isnan(ba._error("linear", 200))  # other weights: no error to measure
    for family in ba.SAME_WEIGHTS - {"full"}:
        assert 0 < ba._error(family, 200) < 1.5, family


def test_writes_csv_table_and_chart(tmp_path):
    rows = [{"family": ba.LABELS[f], "n": n, "seconds": 0.01 * n, "peak_mb": n / 10,
             "rel_error": float("nan") if f == "linear" else 0.1}
            for f in ("full", "linear") for n in (100, 1000)]
    ba._write(rows, tmp_path)
    table = (tmp_path / "attention.md").read_text().splitlines()
    assert table[2] == "| full (SDPA) | 100 | 1.000 | 10 | 0.100 |"
    assert table[4].endswith("| 10 |  |")  # linear: no error
    assert (tmp_path / "attention.png").stat().st_size > 10_000
    assert len((tmp_path / "attention.csv").read_text().splitlines()) == 5


def test_unknown_family_is_an_error(tmp_path):
    with pytest.raises(ValueError, match="unknown families"):
        ba.run([100], families=["reformer"], out=tmp_path)
