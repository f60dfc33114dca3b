import json

import pytest

from pcattn.cli import main
from pcattn.data.info import describe, format_description, guess_name
from pcattn.data.modelnet import ModelNet

from datafixtures import REALDATA, needs_realdata


def test_describe_counts_per_split_and_class(modelnet_off, modelnet_h5, shapenet_normal):
    (e,) = describe(modelnet_off)
    assert (e["kind"], e["name"]) == ("modelnet_off", "modelnet40")
    assert e["splits"] == {"train": 3, "test": 3}
    assert e["per_class"]["train"] == {"chair": 2, "sofa": 1}
    (h,) = describe(modelnet_h5)
    assert h["splits"] == {"train": 5, "test": 2}
    assert h["per_class"]["train"] == {"airplane": 1, "chair": 2, "sofa": 1, "xbox": 1}
    (s,) = describe(shapenet_normal)
    assert s["name"] == "shapenetpart"
    assert s["splits"] == {"train": 3, "val": 1, "test": 2}
    assert s["per_class"]["train"] == {"Airplane": 2, "Mug": 1}


def test_cli_info_text_and_json(modelnet_normal, capsys):
    assert main(["data", "info", str(modelnet_normal)]) == 0
    out = capsys.readouterr().out
    assert "layout:  modelnet_normal  (data.name: modelnet40)" in out
    assert "splits:  train 4, test 2" in out and "3 with clouds" in out
    assert main(["data", "info", str(modelnet_normal), "--json"]) == 0
    (e,) = json.loads(capsys.readouterr().out)
    assert e["per_class"]["test"] == {"airplane": 1, "sofa": 1}


def test_cli_errors_are_one_clear_line_not_a_traceback(tmp_path, capsys):
    assert main(["data", "info", str(tmp_path / "missing")]) == 2
    err = capsys.readouterr().err
    assert err.startswith("pcattn data: error:") and "Looked for" in err
    assert main(["data", "prepare", str(tmp_path), "--set", "name=modelnet40"]) == 2
    assert "holds none of the known layouts" in capsys.readouterr().err


def test_cli_prepare_builds_the_cache_the_run_then_reads(modelnet_off, capsys, monkeypatch):
    assert main(["data", "prepare", str(modelnet_off), "--no-progress",
                 "--set", "num_points=48", "seed=3"]) == 0
    assert "cached: train 3 clouds, test 3 clouds" in capsys.readouterr().out
    caches = sorted((modelnet_off / "pcattn_cache").iterdir())
    assert len(caches) == 2
    import pcattn.data.modelnet as m

    monkeypatch.setattr(m, "read_off", lambda *a: pytest.fail("cache was not reused"))
    ds = ModelNet(modelnet_off, "train", num_points=48, seed=3, sampling="auto")
    assert ds.cache_path in caches and ds[0].pos.shape == (48, 3)
    (e,) = describe(modelnet_off)
    assert len(e["caches"]) == 2 and "caches:  2" in format_description([e])


def test_guess_name(modelnet_off, shapenet_h5, tmp_path):
    assert guess_name(modelnet_off) == "modelnet40"
    assert guess_name(shapenet_h5) == "shapenetpart"
    (tmp_path / "own" / "cup").mkdir(parents=True)
    (tmp_path / "own" / "cup" / "a.xyz").write_text("0 0 0\n1 1 1\n")
    assert guess_name(tmp_path / "own") == "folder"
    (e,) = describe(tmp_path / "own")
    assert e["kind"] == "folder" and e["classes"] == ["cup"]


@needs_realdata
def test_info_on_the_real_files():
    found = describe(REALDATA / "ModelNet_off")
    assert [(e["name"], e["splits"]) for e in found] == [
        ("modelnet10", {"train": 2, "test": 2}), ("modelnet40", {"train": 2, "test": 2})]
    (e,) = describe(REALDATA / "modelnet40_normal_resampled")
    assert e["splits"] == {"train": 6, "test": 4} and len(e["classes"]) == 40
