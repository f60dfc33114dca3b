"""The table ``pcattn models`` prints (pcattn/catalog.py, plain data so that listing
imports no model) is the registry: same names, tasks and parameter counts."""

from __future__ import annotations

from pcattn.catalog import MODELS, format_table
from pcattn.models import create_model, list_models


def _registry_rows() -> list[tuple[str, str, int]]:
    rows = []
    for name in list_models():
        task = "part_segmentation" if "_seg" in name else "classification"
        params = sum(p.numel() for p in create_model(name).parameters())
        rows.append((name, task, params))
    return rows


def test_the_catalog_is_the_registry():
    have = [row[:3] for row in MODELS]
    want = _registry_rows()
    assert have == want, ("pcattn/catalog.py is out of date; its rows should be "
                          f"(name, task, parameters, paper) for: {want}")


def test_the_table_has_a_line_per_model():
    lines = format_table().splitlines()
    assert lines[0].split() == ["name", "task", "params", "paper"]
    assert [line.split()[0] for line in lines[1:]] == list_models()
    assert "0.23M" in lines[1 + list_models().index("point_transformer_cls")]
    assert all(row[3] for row in MODELS)  # every model names its paper
