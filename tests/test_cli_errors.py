"""User errors on the command line: exit status 2 and one line on stderr, no traceback;
Ctrl-C is 130 and one line; a closed pipe is quiet."""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

import pytest
import torch

import pcattn.cli
from pcattn.cli import main

ROOT = Path(__file__).resolve().parents[1]
GOOD = ("model:\n  name: point_transformer_cls\n  channels: [8]\n  blocks: [1]\n"
        "data:\n  name: synthetic_shapes\n  root: {root}\n  num_points: 32\n  per_class: 2\n"
        "train:\n  epochs: 1\n  batch_size: 2\n  out_dir: {root}/runs\n")


def _one_line_error(capsys, code: int, *needles: str) -> str:
    err = capsys.readouterr().err.strip()
    assert code == 2, err
    assert len(err.splitlines()) == 1, err
    for needle in needles:
        assert needle in err, err
    return err


def _config(tmp_path, text: str | None = None) -> Path:
    p = tmp_path / "run.yaml"
    p.write_text(text if text is not None else GOOD.format(root=tmp_path))
    return p


def test_yaml_syntax_error_names_file_line_and_column(tmp_path, capsys):
    bad = _config(tmp_path, "model:\n  name: point_transformer_cls\n  k: [8, 16\ntrain: {}\n")
    _one_line_error(capsys, main(["train", "--config", str(bad)]), str(bad), "line 4, column 6",
                    "YAML syntax error")
    good = _config(tmp_path)
    code = main(["train", "--config", str(good), "--set", "model.channels=[8, 16"])
    _one_line_error(capsys, code, "--set model.channels=[8, 16", "YAML syntax error")


@pytest.mark.parametrize("device, needle", [
    ("gpu", "train.device must be 'auto', 'cpu', 'cuda', 'cuda:N' or 'mps', got 'gpu'"),
    ("banana", "got 'banana'"),
    ("cuda:x", "got 'cuda:x'"),
])
def test_a_device_name_that_does_not_exist_lists_the_valid_forms(tmp_path, capsys, device,
                                                                  needle):
    code = main(["train", "--config", str(_config(tmp_path)), "--set", f"train.device={device}"])
    _one_line_error(capsys, code, needle)


def test_a_device_this_machine_lacks_lists_the_ones_it_has(tmp_path, capsys):
    have_mps = getattr(torch.backends, "mps", None) and torch.backends.mps.is_available()
    missing = "cuda:7" if have_mps else "mps"
    code = main(["train", "--config", str(_config(tmp_path)), "--set", f"train.device={missing}"])
    _one_line_error(capsys, code, f"train.device={missing!r} is not available on this machine; "
                    "available: auto, cpu")
    assert not (tmp_path / "runs").exists()


@pytest.mark.parametrize("argv, want", [
    (["eval", "x.pt", "--device", "gpu"],
     "pcattn eval: error: argument --device: --device must be 'auto', 'cpu', 'cuda', 'cuda:N' "
     "or 'mps', got 'gpu' (see 'pcattn eval --help')"),
    (["bench", "nope"], "pcattn bench: error: argument what: invalid choice: 'nope'"),
    ([], "pcattn: error: the following arguments are required: command (see 'pcattn --help')"),
    (["data", "info"], "pcattn data info: error: the following arguments are required: root "
                       "(see 'pcattn data info --help')"),
    (["train", "--epochs", "3"], "pcattn: error: unrecognized arguments: --epochs 3"),
])
def test_argument_errors_are_one_line_without_the_usage_block(argv, want, capsys):
    with pytest.raises(SystemExit) as stop:
        main(argv)
    assert stop.value.code == 2
    err = capsys.readouterr().err
    assert err.startswith(want) and len(err.strip().splitlines()) == 1, err


class _Payload:
    def __init__(self, marker: Path) -> None:
        self.marker = marker

    def __reduce__(self):
        return (Path.touch, (self.marker,))


def test_eval_refuses_non_checkpoints_and_never_runs_a_pickle_payload(tmp_path, capsys):
    text = tmp_path / "notes.pt"
    text.write_text("not a checkpoint\n")
    _one_line_error(capsys, main(["eval", str(text)]), f"{text} is not a pcattn checkpoint")
    whole = tmp_path / "whole.pt"
    torch.save({"model": {"w": torch.ones(3)}, "config": {"model": {}}}, whole)
    cut = tmp_path / "cut.pt"
    cut.write_bytes(whole.read_bytes()[:200])
    _one_line_error(capsys, main(["eval", str(cut)]), "is not a pcattn checkpoint, or a truncated")
    marker = tmp_path / "payload-ran"
    evil = tmp_path / "evil.pt"
    torch.save({"model": {}, "config": {}, "extra": _Payload(marker)}, evil)
    assert not marker.exists()
    _one_line_error(capsys, main(["eval", str(evil)]), "holds objects other than tensors",
                    "can run code")
    assert not marker.exists(), "loading the checkpoint ran its payload"


def test_ctrl_c_is_one_line_and_exit_130(monkeypatch, capsys):
    def interrupted(args):
        raise KeyboardInterrupt

    monkeypatch.setattr(pcattn.cli, "_run", interrupted)
    assert main(["models"]) == 130
    assert capsys.readouterr().err.strip() == "pcattn models: interrupted"


def _pcattn(*args: str, **kw) -> subprocess.Popen:
    env = {**os.environ, "PYTHONPATH": str(ROOT), "OMP_NUM_THREADS": "1"}
    return subprocess.Popen([sys.executable, "-m", "pcattn", *args], cwd=ROOT, env=env,
                            stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True, **kw)


def test_a_closed_pipe_exits_quietly_and_errors_have_no_traceback(tmp_path):
    proc = _pcattn("models")
    proc.stdout.close()  # the reader (`| head`) is gone before the first line is written
    err = proc.stderr.read()
    assert proc.wait(timeout=120) == 141 and err == "", err
    bad = _config(tmp_path, "model: [1\n")
    proc = _pcattn("train", "--config", str(bad))
    out, err = proc.communicate(timeout=120)
    assert proc.returncode == 2 and "Traceback" not in err and len(err.splitlines()) == 1, err


def _cloud_file(tmp_path) -> Path:
    import numpy as np

    p = np.random.default_rng(0).normal(size=(64, 3))
    p /= np.linalg.norm(p, axis=1, keepdims=True)
    path = tmp_path / "c.xyzn"
    np.savetxt(path, np.hstack([p, p]))
    return path


@pytest.fixture(scope="module")
def runs(tmp_path_factory):
    """Untrained classifier and segmenter run folders (no training)."""
    from enginefixtures import untrained_run

    tmp = tmp_path_factory.mktemp("runs")
    data = {"num_points": 64, "per_class": 2, "rotation": "z"}
    cls = untrained_run(tmp / "cls", {"name": "point_transformer_cls", "channels": [8],
                                      "blocks": [1], "k": 8},
                        {"name": "synthetic_shapes", "root": str(tmp / "d1"), **data})
    seg = untrained_run(tmp / "seg", {"name": "point_transformer_seg", "channels": [8, 16],
                                      "blocks": [1, 1], "k": 8},
                        {"name": "synthetic_parts", "root": str(tmp / "d2"), **data})
    return cls, seg


@pytest.mark.parametrize("out, needle", [
    ("afile", "--out {tmp}/afile is a file, not a folder"),
    ("afile/sub", "--out {tmp}/afile/sub: cannot create this folder ({tmp}/afile is a file)"),
    ("afile/sub/deeper", "cannot create this folder ({tmp}/afile is a file)"),
])
def test_visualize_out_that_cannot_be_a_folder(tmp_path, runs, capsys, out, needle):
    (tmp_path / "afile").write_text("keep me\n")
    code = main(["visualize", str(runs[0]), "--sample", "test:0", "--out",
                 str(tmp_path / out)])
    _one_line_error(capsys, code, needle.format(tmp=tmp_path))
    assert (tmp_path / "afile").read_text() == "keep me\n"


@pytest.mark.parametrize("out, needle", [
    ("folder", "--out {tmp}/folder is a folder; give the .ply file to write"),
    ("parts.txt", "--out {tmp}/parts.txt: give a .ply file"),
    ("afile/parts.ply", "--out {tmp}/afile/parts.ply: its folder {tmp}/afile is a file"),
    ("afile/x/parts.ply", "cannot create this folder ({tmp}/afile is a file)"),
])
def test_predict_out_that_cannot_be_written(tmp_path, runs, capsys, out, needle):
    (tmp_path / "afile").write_text("keep me\n")
    (tmp_path / "folder").mkdir()
    code = main(["predict", str(runs[1]), str(_cloud_file(tmp_path)), "--category", "0",
                 "--out", str(tmp_path / out)])
    _one_line_error(capsys, code, needle.format(tmp=tmp_path))
    assert (tmp_path / "afile").read_text() == "keep me\n"


@pytest.mark.parametrize("out_dir, needle", [
    ("afile", "train.out_dir {tmp}/afile is a file, not a folder"),
    ("afile/runs", "train.out_dir {tmp}/afile/runs: cannot create this folder ({tmp}/afile "
                   "is a file)"),
])
def test_train_out_dir_that_cannot_be_a_folder(tmp_path, capsys, out_dir, needle):
    (tmp_path / "afile").write_text("keep me\n")
    code = main(["train", "--config", str(_config(tmp_path)), "--set",
                 f"train.out_dir={tmp_path / out_dir}"])
    _one_line_error(capsys, code, needle.format(tmp=tmp_path))
    assert (tmp_path / "afile").read_text() == "keep me\n"


@pytest.mark.parametrize("name", ["modelnet40", "modelnet10", "shapenetpart", "folder"])
def test_data_root_that_is_a_file(tmp_path, capsys, name):
    root = tmp_path / "data.zip"
    root.write_bytes(b"PK")
    code = main(["train", "--config", str(_config(tmp_path)), "--set", f"data.name={name}",
                 f"data.root={root}"])
    _one_line_error(capsys, code, f"{root} is a file, not a folder", f"set it to {tmp_path}")
    _one_line_error(capsys, main(["data", "info", str(root)]), "is a file, not a folder")


def test_data_prepare_on_an_empty_folder_says_what_each_name_expects(tmp_path, capsys):
    (tmp_path / "empty").mkdir()
    code = main(["data", "prepare", str(tmp_path / "empty")])
    err = _one_line_error(capsys, code, "is empty; data.name says what it should hold",
                          "modelnet40 / modelnet10: a ModelNet release", "shapenetpart:",
                          "folder: your own clouds", "synthetic_shapes", "--set name=NAME")
    (tmp_path / "empty" / "notes.md").write_text("x")
    code = main(["data", "prepare", str(tmp_path / "empty")])
    _one_line_error(capsys, code, "holds no dataset pcattn knows; data.name says")
    code = main(["data", "prepare", str(tmp_path / "empty"), "--set", "name=shapenetpart"])
    err = capsys.readouterr().err
    assert code == 2 and "shapenetpart_normal" in err and "modelnet_off" not in err, err


@pytest.mark.parametrize("argv, needle", [
    (["bench", "budget", "--budget", "nan"], "argument --budget: expected a finite number"),
    (["bench", "budget", "--budget", "inf"], "expected a finite number, got 'inf'"),
    (["bench", "train", "--points", "0"], "argument --points: expected a whole number >= 1"),
    (["bench", "train", "--batch", "-2"], "argument --batch: expected a whole number >= 1"),
    (["bench", "train", "--workers", "-1"], "argument --workers: expected a whole number"),
    (["eval", "x.pt", "--votes", "0"], "argument --votes: expected a whole number >= 1"),
    (["eval", "x.pt", "--votes", "nan"], "argument --votes: expected a whole number >= 1"),
])
def test_every_parsed_number_is_finite_and_in_range(argv, needle, capsys):
    with pytest.raises(SystemExit) as stop:
        main(argv)
    err = capsys.readouterr().err
    assert stop.value.code == 2 and needle in err and len(err.strip().splitlines()) == 1, err
