import shutil

import pytest

from pcattn.data.errors import DatasetNotFoundError
from pcattn.data.layouts import MODELNET_KINDS, choose_layout, find_layouts, kinds_in


def test_each_layout_is_recognised(modelnet_off, modelnet_normal, modelnet_h5, shapenet_normal,
                                   shapenet_h5):
    assert kinds_in(modelnet_off) == ["modelnet_off"]
    assert kinds_in(modelnet_normal) == ["modelnet_normal"]
    assert kinds_in(modelnet_h5) == ["modelnet_h5"]
    assert kinds_in(shapenet_normal) == ["shapenetpart_normal"]
    assert kinds_in(shapenet_h5) == ["shapenetpart_h5"]
    assert kinds_in(modelnet_off.parent) == []


def test_search_goes_two_levels_down_and_prefers_the_named_folder(modelnet_off, tmp_path):
    deep = tmp_path / "data" / "modelnet" / "raw"
    shutil.copytree(modelnet_off, deep)
    shutil.copytree(modelnet_off, tmp_path / "data" / "modelnet" / "ModelNet10")
    found = find_layouts(tmp_path / "data")
    assert [(f.kind, f.path.name) for f in found] == [("modelnet_off", "ModelNet10"),
                                                       ("modelnet_off", "raw")]
    assert choose_layout(tmp_path / "data", MODELNET_KINDS).path.name == "ModelNet10"
    assert choose_layout(tmp_path / "data", MODELNET_KINDS, prefer="raw").path == deep
    assert find_layouts(tmp_path / "data" / "nothing") == []


def test_an_explicit_layout_must_be_there(modelnet_off):
    with pytest.raises(DatasetNotFoundError, match="modelnet_h5"):
        choose_layout(modelnet_off, MODELNET_KINDS, layout="modelnet_h5")
    with pytest.raises(ValueError, match="does not hold this dataset"):
        choose_layout(modelnet_off, MODELNET_KINDS, layout="shapenetpart_h5")


def test_a_missing_root_names_each_public_release_where_to_put_it_and_the_folder_layout(
        tmp_path):
    root = tmp_path / "modelnet40"
    with pytest.raises(DatasetNotFoundError) as err:
        choose_layout(root, MODELNET_KINDS)
    msg = str(err.value)
    assert msg.startswith(f"{root} does not exist.")
    for release in ("modelnet40_normal_resampled.zip (PointNet++ release)",
                    "modelnet40_ply_hdf5_2048.zip (PointNet release)",
                    "ModelNet40.zip or ModelNet10.zip from modelnet.cs.princeton.edu"):
        assert f"from the public release {release}" in msg
    assert "pcattn never downloads data" in msg and f"unzip it into {root}/" in msg
    assert "data.name: folder with <root>/<class>/<file>" in msg
    assert "not possible here" not in msg
