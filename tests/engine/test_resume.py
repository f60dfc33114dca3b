"""Resume: a 4-epoch run stopped after epoch 2 (or by SIGTERM mid-epoch) and resumed ends
with exactly the weights of the uninterrupted run; what may and may not change on resume."""

from __future__ import annotations

import os
import signal

import pytest
import torch
from enginefixtures import tiny_run

from pcattn.engine import TrainingInterrupted, resume_config, train
from pcattn.engine.checkpoint import load_checkpoint


@pytest.fixture(scope="module")
def straight(tmp_path_factory, data_root):
    """The uninterrupted 4-epoch run (dropout and augmentation on: every RNG matters). All runs
    here compute on one thread: with ``threads: auto`` the count follows the other trainings
    on the machine (a parallel test run), and another count rounds sums differently."""
    tmp = tmp_path_factory.mktemp("straight")
    metrics = train(tiny_run(tmp, data_root, threads=1), progress=False)
    return load_checkpoint(tmp / "runs" / "tiny" / "last.pt"), metrics


def assert_same_weights(a: dict, b: dict) -> None:
    assert a.keys() == b.keys()
    for key in a:
        assert torch.equal(a[key], b[key]), key


def no_times(history: list[dict]) -> list[dict]:
    """Epoch rows without the timings (metrics, losses and lrs must match exactly)."""
    return [{k: v for k, v in r.items() if "second" not in k} for r in history]


def test_stop_after_2_then_resume_is_bit_exact(tmp_path, data_root, straight):
    first = train(tiny_run(tmp_path, data_root, stop_after=2, threads=1), progress=False)
    assert first["stopped"] == "stop_after" and first["epochs"] == 2
    run_dir = tmp_path / "runs" / "tiny"
    assert load_checkpoint(run_dir / "last.pt")["epoch"] == 2
    run, ckpt = resume_config(run_dir)  # the run's own config, stop_after=2 included
    done = train(run, progress=False, resume=ckpt)
    assert done["finished"] and done["epochs"] == 4
    last = load_checkpoint(run_dir / "last.pt")
    assert_same_weights(last["model"], straight[0]["model"])
    assert_same_weights(last["optimizer"]["state"][0], straight[0]["optimizer"]["state"][0])
    assert no_times(done["history"]) == no_times(straight[1]["history"])


def test_sigterm_mid_epoch_saves_and_resumes_bit_exactly(tmp_path, data_root, straight,
                                                         monkeypatch):
    import pcattn.engine.loop as loop

    calls = {"n": 0}
    real = loop.forward_loss

    def forward_then_signal(*args, **kwargs):
        calls["n"] += 1
        if calls["n"] == 7:  # epoch 2 (5 steps per epoch), step 2
            os.kill(os.getpid(), signal.SIGTERM)
        return real(*args, **kwargs)

    monkeypatch.setattr(loop, "forward_loss", forward_then_signal)
    with pytest.raises(TrainingInterrupted) as stop:
        train(tiny_run(tmp_path, data_root, threads=1), progress=False)
    assert stop.value.exit_code == 128 + signal.SIGTERM
    assert "pcattn train --resume" in str(stop.value)
    run_dir = tmp_path / "runs" / "tiny"
    ckpt = load_checkpoint(run_dir / "last.pt")
    assert (ckpt["epoch"], ckpt["step"]) == (1, 2)  # the signalled step was finished
    monkeypatch.setattr(loop, "forward_loss", real)
    run, path = resume_config(run_dir)
    done = train(run, progress=False, resume=path)
    assert_same_weights(load_checkpoint(run_dir / "last.pt")["model"], straight[0]["model"])
    assert no_times(done["history"]) == no_times(straight[1]["history"])


def test_resume_errors_and_extension(tmp_path, data_root):
    run_dir = tmp_path / "runs" / "tiny"
    train(tiny_run(tmp_path, data_root, epochs=1), progress=False)
    with pytest.raises(ValueError, match=r"train\.lr.*model\.k|model\.k.*train\.lr"):
        resume_config(run_dir, overrides=["train.lr=0.1", "model.k=4"])
    with pytest.raises(ValueError, match="finished run.*train.epochs"):
        train(*resume_config(run_dir)[:1], progress=False, resume=run_dir / "last.pt")
    (tmp_path / "empty").mkdir()
    (tmp_path / "empty" / "notes.txt").write_text("x")
    with pytest.raises(FileNotFoundError, match="no last.pt.*notes.txt"):
        resume_config(tmp_path / "empty")
    # a run saved before a config key existed resumes with that key's default
    from pcattn.engine.checkpoint import save_checkpoint

    ckpt = load_checkpoint(run_dir / "last.pt")
    del ckpt["config"]["data"]["val_fraction"]
    save_checkpoint(run_dir / "last.pt", ckpt)
    run, path = resume_config(run_dir, overrides=["train.epochs=2"])
    assert run.data.val_fraction == 0.0
    done = train(run, progress=False, resume=path)
    assert done["epochs"] == 2 and done["finished"] and len(done["history"]) == 2


def test_resume_with_a_val_split_is_bit_exact(tmp_path, data_root):
    from enginefixtures import tiny_config

    from pcattn.engine.config import config_from_dict

    def run(out, **train_section):
        raw = tiny_config(out, data_root, epochs=2, eval_split="val", threads=1,
                           **train_section)
        raw["data"]["val_fraction"] = 0.25
        return config_from_dict(raw)

    straight = train(run(tmp_path / "a"), progress=False)
    first = train(run(tmp_path / "b", stop_after=1), progress=False)
    assert first["test"] is None and "stop_after" in first["test_missing"]
    run_dir = tmp_path / "b" / "runs" / "tiny"
    split = (run_dir / "split.json").read_text()
    resumed, path = resume_config(run_dir)
    assert resumed.data.val_fraction == 0.25 and resumed.train.eval_split == "val"
    done = train(resumed, progress=False, resume=path)
    assert (run_dir / "split.json").read_text() == split
    assert split == (tmp_path / "a" / "runs" / "tiny" / "split.json").read_text()
    assert_same_weights(load_checkpoint(run_dir / "last.pt")["model"],
                        load_checkpoint(tmp_path / "a" / "runs" / "tiny" / "last.pt")["model"])
    assert no_times(done["history"]) == no_times(straight["history"])
    assert "val/overall_accuracy" in done["history"][0]
    assert done["best"] == straight["best"] and done["test"] == straight["test"]
    assert done["test"]["num_samples"] == 10
