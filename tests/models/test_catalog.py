"""The table ``pcattn models`` prints (pcattn/catalog.py, plain data so that listing
imports no model) is the registry's: same names, tasks, parameter counts and papers."""

from __future__ import annotations

from pcattn.catalog import MODELS, format_table
from pcattn.models import list_models
from pcattn.models.registry import model_info


def test_the_catalog_is_the_registry():
    want = [tuple(model_info(name)[k] for k in ("name", "task", "parameters", "paper"))
            for name in list_models()]
    assert list(MODELS) == want, ("pcattn/catalog.py is out of date; its rows should be "
                                  f"(name, task, parameters, paper): {want}")


def test_the_table_has_a_line_per_model():
    lines = format_table().splitlines()
    assert lines[0].split() == ["name", "task", "params", "paper"]
    assert [line.split()[0] for line in lines[1:]] == list_models()
    assert "0.23M" in lines[1 + list_models().index("point_transformer_cls")]
