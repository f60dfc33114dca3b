"""A run folder whose config.yaml was edited: the checkpoint is the truth. eval, predict and
visualize say which keys disagree; train --resume refuses until they agree or --set says so."""

from __future__ import annotations

import shutil

import numpy as np
import pytest
import yaml

from pcattn.cli import main
from pcattn.engine import resume_config


@pytest.fixture
def run_copy(tmp_path, classifier_run):
    """A copy of the untrained classifier's run folder, to edit."""
    return shutil.copytree(classifier_run, tmp_path / "run")


def edit(run_dir, **changes):
    """Set ``section.key`` values (``model__k`` for model.k) in the folder's config.yaml."""
    cfg = yaml.safe_load((run_dir / "config.yaml").read_text())
    for key, value in changes.items():
        section, name = key.split("__")
        cfg[section][name] = value
    (run_dir / "config.yaml").write_text(yaml.safe_dump(cfg))


def cloud(tmp_path):
    p = np.random.default_rng(0).normal(size=(64, 3))
    p /= np.linalg.norm(p, axis=1, keepdims=True)
    path = tmp_path / "c.xyzn"
    np.savetxt(path, np.hstack([p, p]))
    return path


EDITS = [
    ({"model__name": "pointnet_cls"}, "model.name"),
    ({"model__num_classes": 40}, "model.num_classes"),
    ({"model__k": 16, "data__num_points": 1024}, "data.num_points, model.k"),
    ({"data__use_normals": False}, "data.use_normals"),
    ({"train__lr": 0.1}, "train.lr"),
]


@pytest.mark.parametrize("changes, keys", EDITS)
def test_predict_and_eval_name_the_keys_that_disagree(tmp_path, run_copy, capsys, changes,
                                                      keys):
    edit(run_copy, **changes)
    assert main(["predict", str(run_copy), str(cloud(tmp_path))]) == 0
    err = capsys.readouterr().err.strip()
    assert len(err.splitlines()) == 1, err
    assert f"warning: {run_copy / 'config.yaml'} differs from best.pt in {keys};" in err, err
    assert "using the checkpoint's config" in err
    assert main(["eval", str(run_copy / "last.pt")]) == 0
    err = capsys.readouterr().err
    assert f"differs from last.pt in {keys}" in err, err


def test_agreeing_folders_and_schedule_keys_give_no_warning(tmp_path, run_copy, capsys):
    src = str(cloud(tmp_path))
    assert main(["predict", str(run_copy), src]) == 0
    assert capsys.readouterr().err == ""
    edit(run_copy, train__epochs=99, train__device="cpu")  # how long, where: not what
    assert main(["predict", str(run_copy), src]) == 0
    assert capsys.readouterr().err == ""
    (run_copy / "config.yaml").unlink()
    assert main(["predict", str(run_copy), src]) == 0
    assert capsys.readouterr().err == ""


def test_an_unreadable_config_yaml_is_named(tmp_path, run_copy, capsys):
    (run_copy / "config.yaml").write_text("model: [1\n")
    assert main(["predict", str(run_copy), str(cloud(tmp_path))]) == 0
    err = capsys.readouterr().err
    assert "config.yaml it cannot be read (" in err, err


def test_visualize_names_them_too(tmp_path, run_copy, capsys):
    edit(run_copy, model__num_classes=3)
    assert main(["visualize", str(run_copy), "--sample", "test:0", "--out",
                 str(tmp_path / "viz")]) == 0
    assert "differs from best.pt in model.num_classes" in capsys.readouterr().err


@pytest.mark.parametrize("changes, keys", EDITS + [({"train__epochs": 12}, "train.epochs")])
def test_resume_refuses_until_they_agree(run_copy, changes, keys):
    edit(run_copy, **changes)
    with pytest.raises(ValueError) as err:
        resume_config(run_copy)
    text = str(err.value)
    assert f"config.yaml differs from last.pt in {keys};" in text
    assert "--set" in text and "\n" not in text


def test_resume_accepts_the_change_given_with_set(run_copy):
    edit(run_copy, train__epochs=12)
    run, _ = resume_config(run_copy, overrides=["train.epochs=12"])
    assert run.train.epochs == 12
    edit(run_copy, train__lr=0.1)  # may not change on resume: the usual refusal
    with pytest.raises(ValueError, match=r"only train.epochs"):
        resume_config(run_copy, overrides=["train.epochs=12", "train.lr=0.1"])


def test_train_resume_on_the_command_line(run_copy, capsys):
    edit(run_copy, model__num_classes=40)
    assert main(["train", "--resume", str(run_copy)]) == 2
    err = capsys.readouterr().err.strip()
    assert "cannot resume" in err and "model.num_classes" in err and len(err.splitlines()) == 1


def _with_threads(run_dir, setting, recorded):
    """Set the run's train.threads (config and checkpoint) and the count last.pt records."""
    from pcattn.engine.checkpoint import load_checkpoint, save_checkpoint

    ckpt = load_checkpoint(run_dir / "last.pt")
    ckpt["config"]["train"]["threads"] = setting
    if recorded is not None:
        ckpt["threads"] = recorded
    save_checkpoint(run_dir / "last.pt", ckpt)
    edit(run_dir, train__threads=setting)


@pytest.mark.parametrize("setting, recorded, overrides, want", [
    ("auto", 3, [], 3),  # auto: the count the run computed with
    ("auto", 1, [], 1),
    ("auto", 3, ["train.threads=2"], 2),  # asked for: another count
    ("auto", 3, ["train.threads=auto"], "auto"),
    ("auto", None, [], "auto"),  # nothing recorded (an older checkpoint)
    (4, 4, [], 4),  # a fixed count stays
    (4, 4, ["train.epochs=9"], 4),
])
def test_resume_computes_with_the_recorded_thread_count(run_copy, setting, recorded,
                                                        overrides, want):
    _with_threads(run_copy, setting, recorded)
    run, _ = resume_config(run_copy, overrides=overrides)
    assert run.train.threads == want
