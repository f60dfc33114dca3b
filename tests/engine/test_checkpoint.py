"""Checkpoints: only pcattn checkpoints load (weights_only), and kill -9 in the middle of a
save leaves the previous file loadable."""

from __future__ import annotations

import signal
import subprocess
import sys
import time

import pytest
import torch

from pcattn.engine.checkpoint import checkpoint_path, load_checkpoint, save_checkpoint


def test_round_trip_and_non_checkpoints(tmp_path):
    path = tmp_path / "last.pt"
    save_checkpoint(path, {"model": {"w": torch.arange(3.0)}, "epoch": 2})
    ckpt = load_checkpoint(path)
    assert ckpt["epoch"] == 2 and torch.equal(ckpt["model"]["w"], torch.arange(3.0))
    (tmp_path / "notes.pt").write_text("not a checkpoint")
    with pytest.raises(ValueError, match="not a pcattn checkpoint"):
        load_checkpoint(tmp_path / "notes.pt")
    torch.save({"model": {}, "config": {}}, tmp_path / "plain.pt")  # no format tag
    with pytest.raises(ValueError, match="not a pcattn checkpoint"):
        load_checkpoint(tmp_path / "plain.pt")


class Payload:  # an arbitrary object: weights_only must refuse to unpickle it
    pass


def test_code_in_a_checkpoint_is_refused(tmp_path):
    torch.save({"format": "pcattn-checkpoint-1", "x": Payload()}, tmp_path / "evil.pt")
    with pytest.raises(ValueError, match="other than tensors and plain data"):
        load_checkpoint(tmp_path / "evil.pt")


def test_checkpoint_path_of_a_folder(tmp_path):
    save_checkpoint(tmp_path / "best.pt", {"epoch": 1})
    assert checkpoint_path(tmp_path, "best.pt") == tmp_path / "best.pt"
    with pytest.raises(FileNotFoundError, match="no last.pt.*best.pt"):
        checkpoint_path(tmp_path, "last.pt")


# the child writes what save_checkpoint writes, through the same atomic_save, without
# importing the whole engine (start-up time); each save takes a while (20k small tensors)
CHILD = """
import sys, torch
from pcattn.fileio import atomic_save
model = {f"w{j}": torch.full((4,), float(j)) for j in range(20_000)}
for i in range(1, 10_000):
    print(i, flush=True)
    atomic_save({"format": "pcattn-checkpoint-1", "epoch": i, "model": model}, sys.argv[1])
"""


def test_kill_9_mid_save_leaves_a_loadable_checkpoint(tmp_path):
    path = tmp_path / "last.pt"
    for attempt in range(3):
        child = subprocess.Popen([sys.executable, "-c", CHILD, str(path)],
                                 stdout=subprocess.PIPE, text=True)
        for _ in range(2 + attempt):  # it is about to write file number 2 + attempt,
            child.stdout.readline()
        time.sleep(0.2)  # which takes about a second here
        child.send_signal(signal.SIGKILL)
        child.wait()
        ckpt = load_checkpoint(path)  # the previous complete file
        assert ckpt["epoch"] >= 1 and len(ckpt["model"]) == 20_000
        assert torch.equal(ckpt["model"]["w19999"], torch.full((4,), 19999.0))
        if list(tmp_path.glob(".last.pt.*.tmp")):  # killed while writing: the half file
            return  # is a temporary one, last.pt was untouched
    pytest.fail("no kill landed during a save in 3 attempts")


def test_a_checkpoint_whose_head_disagrees_with_the_dataset(tmp_path, data_root):
    from enginefixtures import tiny_run

    from pcattn.engine import evaluate_checkpoint, train

    train(tiny_run(tmp_path, data_root, epochs=1), progress=False)
    ckpt = load_checkpoint(tmp_path / "runs" / "tiny" / "last.pt")
    ckpt["config"]["model"]["num_classes"] = 5
    save_checkpoint(tmp_path / "torn.pt", ckpt)  # config and weights disagree
    with pytest.raises(ValueError, match=r"torn.pt: its weights do not fit the model its config "
                                         r"describes \(size mismatch for head"):
        evaluate_checkpoint(tmp_path / "torn.pt")
    from pcattn.engine.config import config_from_dict
    from pcattn.models import create_model

    run = config_from_dict(ckpt["config"])
    ckpt["model"] = create_model(run.model_name, run.model).state_dict()  # a 5-class head
    save_checkpoint(tmp_path / "five.pt", ckpt)
    with pytest.raises(ValueError, match="head for 5 classes.*has 10"):
        evaluate_checkpoint(tmp_path / "five.pt")
