"""`pcattn bench scale` runs every case (on tiny clouds: a check that it runs, not a
measurement) and writes its table and plot."""

from __future__ import annotations

import csv

import pytest

from pcattn.bench import scale as bench_scale


@pytest.mark.parametrize("case", bench_scale.CASES)
def test_every_case_measures_in_process(case):
    out = bench_scale.child(case, 300, 16)
    assert out["seconds"] > 0 and out["peak_mb"] == out["peak_mb"]


def test_run_spawns_fresh_processes_and_writes_csv_md_png(tmp_path):
    rows = bench_scale.run([200], cases=["serialized"], patch_size=16, out=tmp_path,
                           timeout=300)
    assert len(rows) == 1 and rows[0]["seconds"] > 0
    with open(tmp_path / "scale.csv") as f:
        assert [r["case"] for r in csv.DictReader(f)] == ["SerializedAttention (grid CPE)"]
    assert "| SerializedAttention (grid CPE) | 200 |" in (tmp_path / "scale.md").read_text()
    assert (tmp_path / "scale.png").stat().st_size > 0


def test_unknown_cases_are_named():
    with pytest.raises(ValueError, match="unknown cases"):
        bench_scale.run([100], cases=["flash"])
