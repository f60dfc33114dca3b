"""One loader for eval, predict and visualize: the same checkpoint of a run folder (best.pt,
else last.pt, else checkpoint.pt, said when not best.pt), the same normals rule and the same
category lookup in every command."""

from __future__ import annotations

import shutil
import warnings

import numpy as np
import pytest

from pcattn.cli import main
from pcattn.engine.run_folder import load_model
from pcattn.engine.user_cloud import category_index


def _folder_with(tmp_path, source, names):
    folder = tmp_path / "run"
    folder.mkdir()
    shutil.copy(source / "config.yaml", folder / "config.yaml")
    for name in names:
        shutil.copy(source / "best.pt", folder / name)
    return folder


@pytest.mark.parametrize("names, used", [
    (("best.pt", "last.pt", "checkpoint.pt"), "best.pt"),
    (("last.pt", "checkpoint.pt"), "last.pt"),
    (("checkpoint.pt",), "checkpoint.pt"),
])
def test_a_run_folder_gives_its_best_then_last_then_checkpoint(tmp_path, classifier_run, names,
                                                               used):
    folder = _folder_with(tmp_path, classifier_run, names)
    with warnings.catch_warnings(record=True) as caught:
        warnings.simplefilter("always")
        model, run, ckpt = load_model(folder, "cpu")
    assert ckpt["path"] == str(folder / used) and not model.training
    said = [str(w.message) for w in caught]
    assert said == ([] if used == "best.pt" else [f"{folder} has no best.pt; using {used}"])


def test_a_folder_without_checkpoints_names_what_it_holds(tmp_path):
    (tmp_path / "notes.txt").write_text("x")
    with pytest.raises(FileNotFoundError, match=r"has no best.pt or last.pt or checkpoint.pt "
                                                r"\(it holds: notes.txt\)"):
        load_model(tmp_path, "cpu")


def _xyz(path, with_normals):
    p = np.random.default_rng(0).normal(size=(64, 3))
    p /= np.linalg.norm(p, axis=1, keepdims=True)
    np.savetxt(path, np.hstack([p, p]) if with_normals else p)
    return path


def test_eval_predict_and_visualize_read_the_same_fallback(tmp_path, classifier_run, capsys):
    folder = _folder_with(tmp_path, classifier_run, ("last.pt",))
    cloud = _xyz(tmp_path / "c.xyz", with_normals=True)
    commands = (["eval", str(folder)], ["predict", str(folder), str(cloud)],
                ["visualize", str(folder), "--file", str(cloud), "--format", "png", "--out",
                 str(tmp_path / "figs")])
    for argv in commands:
        assert main(argv) == 0, argv
        assert "has no best.pt; using last.pt" in capsys.readouterr().err, argv


def test_predict_and_visualize_refuse_a_cloud_without_the_normals_alike(tmp_path,
                                                                      classifier_run, capsys):
    cloud = _xyz(tmp_path / "bare.xyz", with_normals=False)
    errors = []
    for argv in (["predict", str(classifier_run), str(cloud)],
                 ["visualize", str(classifier_run), "--file", str(cloud), "--out",
                  str(tmp_path / "figs")]):
        assert main(argv) == 2, argv
        errors.append(capsys.readouterr().err.strip().splitlines()[-1].split(": ", 1)[1])
    assert errors[0] == errors[1] and "the model reads normals" in errors[0], errors
    assert not (tmp_path / "figs").exists()


def test_predict_and_visualize_look_categories_up_alike(tmp_path, segmenter_run, capsys):
    cloud = _xyz(tmp_path / "lamp.xyz", with_normals=True)
    errors = []
    for argv in (["predict", str(segmenter_run), str(cloud), "--out", str(tmp_path / "p.ply")],
                 ["visualize", str(segmenter_run), "--file", str(cloud), "--format", "png",
                  "--out", str(tmp_path / "figs")]):
        assert main([*argv, "--category", "no_such_thing"]) == 2
        errors.append(capsys.readouterr().err.strip().splitlines()[-1].split(": ", 1)[1])
        assert main([*argv, "--category", "0"]) == 0, argv
        capsys.readouterr()
    assert errors[0] == errors[1] and "unknown category 'no_such_thing'" in errors[0]


def test_category_index_by_name_any_case_or_by_index():
    names = ["Airplane", "lamp", "Mug"]
    assert category_index("lamp", names, 3) == 1
    assert category_index("AIRPLANE", names, 3) == 0
    assert category_index("2", names, 3) == 2 and category_index(1, None, 2) == 1
    with pytest.raises(ValueError, match=r"unknown category '3'; the model knows"):
        category_index("3", names, 3)
    with pytest.raises(ValueError, match=r"over 3 object categories .*pass --category NAME"):
        category_index(None, names, 3)
